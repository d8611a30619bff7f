"""Keys at rest: AES-256-GCM under the registry key, the row's name as associated data (a
ciphertext copied to another row does not open)."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from slidegate.errors import PolicyError, SpecError


def parse_key(text: str, origin: str) -> bytes:
    text = text.strip()
    if not re.fullmatch(r"[0-9a-fA-F]{64}", text):
        raise SpecError(
            f"the registry key from {origin} must be 64 hex digits (32 bytes), e.g. from "
            "`python -c 'import secrets; print(secrets.token_hex(32))'`"
        )
    return bytes.fromhex(text)


def key_file(path: Path) -> bytes:
    """The embedded registry's key file beside the database, created (0600) on first use."""
    if path.exists():
        return parse_key(path.read_text(encoding="ascii"), str(path))
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first
        return parse_key(path.read_text(encoding="ascii"), str(path))
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key.hex() + "\n")
    return key


def seal(master: bytes, name: str, secret: bytes) -> tuple[bytes, bytes]:
    nonce = secrets.token_bytes(12)
    return nonce, AESGCM(master).encrypt(nonce, secret, b"slidegate-registry:" + name.encode())


def unseal(master: bytes, name: str, nonce: bytes, ciphertext: bytes) -> bytes:
    try:
        return AESGCM(master).decrypt(nonce, ciphertext, b"slidegate-registry:" + name.encode())
    except InvalidTag:
        raise PolicyError(
            f"registry key {name!r} does not decrypt with the registry key given: the key "
            "(SLIDEGATE_REGISTRY_KEY or the registry's key file) is not the one it was stored "
            "with; restore the right key"
        ) from None
