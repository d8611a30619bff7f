"""An independent leak search for tests: is a secret anywhere in a tree of files, in any encoding?

Written apart from slidegate's own scanner (slidegate/audit/scan.py) on purpose: a test that
checks a privacy claim with the code that makes the claim proves nothing. Searched, in every
file's bytes and in every relative path (object key):

- UTF-8, UTF-16 LE and UTF-16 BE, each case-insensitively (ASCII case folding of the haystack
  and the needle: lower, upper and mixed case of the secret are all found);
- the hex digits of the UTF-8 bytes (lower or upper case);
- inside JSON documents (any file that parses as JSON): every key and string value, and every
  string that decodes as base64 (standard or URL-safe alphabet) is searched again in its
  decoded bytes, recursively (base64 inside JSON inside base64...).

`find_leaks(root, {"label": "secret"})` returns (label, relative path, how) triples; empty means
clean. Secrets shorter than 4 characters are refused (they would match by chance).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

_B64 = re.compile(rb"^[A-Za-z0-9+/_-]{8,}={0,2}$")


def variants(secret: str) -> dict[str, bytes]:
    """Encodings of `secret` searched in a case-folded haystack (all lower case)."""
    if len(secret) < 4:
        raise ValueError("a secret shorter than 4 characters matches by chance")
    low = secret.lower()
    raw = secret.encode("utf-8")
    return {
        "utf-8": low.encode("utf-8"),
        "utf-16-le": low.encode("utf-16-le"),
        "utf-16-be": low.encode("utf-16-be"),
        "hex": raw.hex().encode("ascii"),
    }


def _hits(data: bytes, secrets: Mapping[str, str]) -> Iterator[tuple[str, str]]:
    folded = data.lower()
    for label, secret in secrets.items():
        for how, needle in variants(secret).items():
            if needle in folded:
                yield label, how


def _b64_decode(text: str) -> bytes | None:
    raw = text.strip().encode("ascii", "ignore")
    if not _B64.match(raw):
        return None
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            return decode(raw + b"=" * (-len(raw) % 4))
        except (binascii.Error, ValueError):
            continue
    return None


def _json_strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield str(k)
            yield from _json_strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _json_strings(v)
    elif isinstance(node, str):
        yield node


def _search_bytes(
    data: bytes, secrets: Mapping[str, str], depth: int = 0
) -> Iterator[tuple[str, str]]:
    yield from _hits(data, secrets)
    if depth > 3:
        return
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        doc = None
    if doc is not None:
        for s in _json_strings(doc):
            yield from ((label, f"json:{how}") for label, how in _hits(s.encode(), secrets))
            decoded = _b64_decode(s)
            if decoded is not None:
                for label, how in _search_bytes(decoded, secrets, depth + 1):
                    yield label, f"base64:{how}"
    elif depth > 0:  # decoded base64 that is not JSON may still hold base64 text
        for m in re.finditer(rb"[A-Za-z0-9+/_-]{12,}={0,2}", data):
            decoded = _b64_decode(m.group().decode("ascii"))
            if decoded is not None:
                for label, how in _hits(decoded, secrets):
                    yield label, f"base64:{how}"


def find_leaks(root: Path, secrets: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """Every (label, relative path, encoding) where a secret occurs under `root`, in a file's
    bytes or in its relative path (the object key)."""
    root = Path(root)
    found: set[tuple[str, str, str]] = set()
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for path in files:
        rel = path.name if path == root else path.relative_to(root).as_posix()
        for label, how in _hits(rel.encode("utf-8"), secrets):
            found.add((label, rel, f"key:{how}"))
        for label, how in _search_bytes(path.read_bytes(), secrets):
            found.add((label, rel, how))
    return sorted(found)


def find_leaks_in_bytes(data: bytes, secrets: Mapping[str, str]) -> list[tuple[str, str]]:
    """The same search on one object's bytes: (label, encoding) pairs."""
    return sorted(set(_search_bytes(data, secrets)))
