"""Keyed pseudonyms: HMAC-SHA256 of the source identifier under a secret key.

A fresh random key per release by default, so two releases cannot be joined on pseudonyms.
The key file stays in the private work area; it is never logged or published. `key_id` (a hash
of the key) is public and lets a ledger tell which key made a pseudonym.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from slidegate.errors import PolicyError

#: every pseudonym is `<kind>-<16 hex>`; kinds: s(lide), p(atient), b(lock), x (specimen)
PSEUDONYM_RE = re.compile(r"^[a-z]-[0-9a-f]{16}$")
KINDS = frozenset({"s", "p", "b", "x"})


@dataclass(frozen=True)
class Pseudonymizer:
    key: bytes

    def __repr__(self) -> str:  # never show the key
        return f"Pseudonymizer(key_id={self.key_id})"

    @property
    def key_id(self) -> str:
        return hashlib.sha256(b"slidegate-key-id:" + self.key).hexdigest()[:12]

    def __call__(self, kind: str, value: str) -> str:
        if kind not in KINDS:
            raise ValueError(f"unknown pseudonym kind {kind!r}; use one of {sorted(KINDS)}")
        digest = hmac.new(self.key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
        return f"{kind}-{digest[:16]}"


def load_or_create_key(path: Path) -> Pseudonymizer:
    """Read the key at `path`, or create a new random one (mode 0600) if there is none."""
    if path.exists():
        text = path.read_text(encoding="ascii").strip()
        if not re.fullmatch(r"[0-9a-f]{64}", text):
            raise PolicyError(
                f"pseudonym key file {path} is malformed; restore it from backup or delete it "
                "to start a new release key (pseudonyms will change)"
            )
        return Pseudonymizer(bytes.fromhex(text))
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key.hex() + "\n")
    return Pseudonymizer(key)
