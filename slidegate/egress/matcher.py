"""Multi-needle byte search for the egress gate (Aho-Corasick, one pass per block).

Each needle (a text value with a label) is searched for in several encodings: UTF-8, UTF-16LE,
UTF-16BE, hexadecimal of the UTF-8 bytes (of the value, its lower and its upper case;
hex digits of either case) and the JSON-escaped forms
(`\\uXXXX` escapes and raw UTF-8). Matching is case-insensitive: the needles and each block of
the haystack are ASCII-lowercased (so upper-case hex folds onto lower-case hex). Identical
patterns are searched once and report every label they stand for.

Files are streamed in blocks with an overlap of (longest pattern - 1) bytes, so a needle split
across two blocks is still found. Text documents (JSON, CSV, HTML, Markdown, SHA256SUMS) are
also searched inside their base64-looking strings, decoded (and nested base64 inside those, up
to `MAX_DEPTH` levels).

Needles shorter than `MIN_CHARS` characters are not searched (too many false alarms); they are
counted in `skipped`. A finding is a set of labels, never a value: labels are rule ids.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import ahocorasick_rs

BLOCK_SIZE = 4 * 1024 * 1024
MIN_CHARS = 4
#: a longer value (an XML document, a long free text) is searched by its first characters: any
#: copy of the whole value contains them
MAX_CHARS = 512
#: base64 inside base64 inside ...: how deep the decoder follows
MAX_DEPTH = 4
#: a run of base64 alphabet this long (or longer) is decoded and searched
MIN_BASE64 = 8
DOCUMENT_SUFFIXES = frozenset({".json", ".csv", ".html", ".htm", ".md", ".txt", ".xml", ".js"})
DOCUMENT_NAMES = frozenset({"SHA256SUMS", "zarr.json", ".zattrs", ".zgroup", ".zarray"})
REDACTED = "[REDACTED]"

_BASE64_RUN = re.compile(rb"[A-Za-z0-9+/_-]{%d,}={0,2}" % MIN_BASE64)
_URLSAFE = bytes.maketrans(b"-_", b"+/")


def is_document(name: str) -> bool:
    """A text document whose base64 strings are decoded and searched too."""
    base = name.rsplit("/", 1)[-1]
    suffix = base[base.rfind(".") :].lower() if "." in base else ""
    return base in DOCUMENT_NAMES or suffix in DOCUMENT_SUFFIXES


def variants(value: str) -> set[bytes]:
    """Every encoding of `value` searched for, ASCII-lowercased."""
    raw = value.encode("utf-8")
    out = {
        raw,
        value.encode("utf-16-le"),
        value.encode("utf-16-be"),
        raw.hex().encode("ascii"),
        value.lower().encode("utf-8").hex().encode("ascii"),
        value.upper().encode("utf-8").hex().encode("ascii"),
        json.dumps(value)[1:-1].encode("ascii"),
        json.dumps(value, ensure_ascii=False)[1:-1].encode("utf-8"),
    }
    return {v.lower() for v in out if v}


class Matcher:
    """Compiled needles: `(label, value)` pairs. Reusable and thread-safe for searching."""

    def __init__(self, needles: Iterable[tuple[str, str]]) -> None:
        by_pattern: dict[bytes, set[str]] = {}
        skipped = 0
        for label, value in needles:
            text = value.strip()[:MAX_CHARS]
            if len(text) < MIN_CHARS:
                skipped += 1
                continue
            for v in variants(text):
                by_pattern.setdefault(v, set()).add(label)
        self.skipped = skipped
        self._patterns = sorted(by_pattern)
        self._labels = [frozenset(by_pattern[p]) for p in self._patterns]
        self.labels = frozenset().union(*self._labels) if self._labels else frozenset()
        self.longest = max((len(p) for p in self._patterns), default=0)
        self._ac = ahocorasick_rs.BytesAhoCorasick(self._patterns) if self._patterns else None

    def __len__(self) -> int:
        """Number of distinct patterns searched for (all encodings)."""
        return len(self._patterns)

    def _matches(self, data: bytes) -> list[tuple[int, int, int]]:
        if self._ac is None or not data:
            return []
        return self._ac.find_matches_as_indexes(data.lower(), overlapping=True)

    def find(self, data: bytes) -> set[str]:
        """Labels of every needle in `data` (any encoding, any case), overlaps included."""
        found: set[str] = set()
        for idx, _, _ in self._matches(data):
            found |= self._labels[idx]
        return found

    def spans(self, data: bytes) -> list[tuple[int, int]]:
        """Merged (start, stop) byte ranges of `data` that a needle covers."""
        merged: list[list[int]] = []
        for start, stop in sorted((s, e) for _, s, e in self._matches(data)):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], stop)
            else:
                merged.append([start, stop])
        return [(a, b) for a, b in merged]

    def redact(self, text: str) -> str:
        """`text` with every part that matches a needle replaced by [REDACTED]."""
        raw = text.encode("utf-8")
        out, pos = [], 0
        for start, stop in self.spans(raw):
            out.append(raw[pos:start].decode("utf-8", "replace"))
            out.append(REDACTED)
            pos = stop
        out.append(raw[pos:].decode("utf-8", "replace"))
        return "".join(out)

    def scan_stream(self, fh: BinaryIO, block_size: int = BLOCK_SIZE) -> set[str]:
        """Search a stream block by block (bounded memory, overlap between blocks)."""
        if self._ac is None:
            return set()
        overlap = self.longest - 1
        found: set[str] = set()
        tail = b""
        while block := fh.read(block_size):
            data = tail + block if tail else block
            found |= self.find(data)
            tail = data[-overlap:] if overlap > 0 else b""
        return found

    def scan_document(self, data: bytes) -> set[str]:
        """A text document: its bytes, and every base64 string in it, decoded (nested)."""
        found = self.find(data)
        for layer in base64_layers(data):
            found |= self.find(layer)
        return found

    def scan_bytes(self, name: str, data: bytes) -> set[str]:
        return self.scan_document(data) if is_document(name) else self.find(data)

    def scan_file(self, path: Path, name: str | None = None) -> set[str]:
        """Every byte of the file at `path`; documents also inside their base64 strings."""
        path = Path(path)
        if is_document(name or path.name):
            return self.scan_document(path.read_bytes())
        with path.open("rb") as fh:
            return self.scan_stream(fh)


def _decode(run: bytes) -> Iterator[bytes]:
    """A base64 run decoded at each of the 4 alignments (a run may start mid-word)."""
    run = run.rstrip(b"=").translate(_URLSAFE)
    for start in range(min(4, len(run) - MIN_BASE64 + 1)):
        part = run[start:]
        if len(part) % 4 == 1:  # a stray character at the end: not base64 there
            part = part[:-1]
        try:
            yield base64.b64decode(part + b"=" * (-len(part) % 4), validate=True)
        except (binascii.Error, ValueError):
            continue


def _unescape(data: bytes) -> bytes:
    """JSON escapes that split a base64 run ("\\/" and line breaks) removed."""
    return data.replace(b"\\/", b"/").replace(b"\\n", b"").replace(b"\\r", b"")


def base64_layers(data: bytes, depth: int = 1) -> Iterator[bytes]:
    """Every decoded base64 run in `data`, and the runs inside those, up to MAX_DEPTH."""
    if depth > MAX_DEPTH:
        return
    text = _unescape(data)
    if b"\n" in text:
        text = text + b"\n" + text.replace(b"\r", b"").replace(b"\n", b"")
    for m in _BASE64_RUN.finditer(text):
        for decoded in _decode(m.group()):
            yield decoded
            yield from base64_layers(decoded, depth + 1)
