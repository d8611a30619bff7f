"""Multi-needle byte search for the egress gate and the audit (Hyperscan, one pass per block).

Each needle (a text value with a label) is searched for in several encodings: UTF-8, UTF-16LE,
UTF-16BE, hexadecimal of the UTF-8 bytes (of the value, its lower and its upper case; hex
digits of either case) and the JSON-escaped forms (`\\uXXXX` escapes and raw UTF-8). Keys,
documents and short texts (`find`) are matched ASCII case-insensitively (Hyperscan's caseless
literals: no lowercased copy of the haystack). Bulk binary data (`scan_stream`, `scan_file`
of a non-document: image chunks, copies) is matched case-sensitively for the value, its lower
and its upper case: any case mix of a 4-letter needle would match the random-looking bytes of
a large compressed image about once per 250 MB. Identical patterns are searched once and
report every label they stand for. The patterns of a matcher are compiled once into one
Hyperscan database (SIMD literal matching, GB/s per core whatever the number of needles);
`cached` reuses a matcher across the slides of a process.

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
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import hyperscan

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
    return {v.lower() for v in _encodings(value)}


def exact_variants(value: str) -> set[bytes]:
    """Every encoding of `value`, of its lower and of its upper case, as they are (the
    case-sensitive search of bulk binary data; see `Matcher.scan_stream`)."""
    forms = {value, value.lower(), value.upper()}
    out = set().union(*(_encodings(f) for f in forms))
    # hex digits of either case
    out |= {v.upper() for v in out if _HEX.fullmatch(v)} | {
        v.lower() for v in out if _HEX.fullmatch(v)
    }
    return out


_HEX = re.compile(rb"[0-9a-fA-F]+")


def _encodings(value: str) -> set[bytes]:
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
    return {v for v in out if v}


_FLAGS = hyperscan.HS_FLAG_SINGLEMATCH


def _expression(pattern: bytes) -> bytes:
    """A literal byte string as a Hyperscan expression (every byte escaped: NUL included)."""
    h = pattern.hex()
    return ("\\x" + "\\x".join(h[i : i + 2] for i in range(0, len(h), 2))).encode("ascii")


def _database(patterns: list[bytes], caseless: bool) -> Any:
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    flags = _FLAGS | (hyperscan.HS_FLAG_CASELESS if caseless else 0)
    db.compile(
        expressions=[_expression(p) for p in patterns],
        ids=list(range(len(patterns))),
        elements=len(patterns),
        flags=[flags] * len(patterns),
    )
    return db


def _text(value: str | bytes) -> str:
    if isinstance(value, str):
        return value
    return value.decode("utf-8", "surrogateescape")


class Matcher:
    """Compiled needles: `(label, value)` pairs. Reusable and thread-safe for searching (one
    Hyperscan scratch space per thread)."""

    def __init__(self, needles: Iterable[tuple[str, str | bytes]]) -> None:
        by_pattern: dict[bytes, set[str]] = {}
        self._texts: list[tuple[str, str]] = []
        skipped = 0
        for label, value in needles:
            text = _text(value).strip()[:MAX_CHARS]
            if len(text) < MIN_CHARS:
                skipped += 1
                continue
            self._texts.append((label, text))
            for v in variants(text):
                by_pattern.setdefault(v, set()).add(label)
        self.skipped = skipped
        self._patterns = sorted(by_pattern)
        self._labels = [frozenset(by_pattern[p]) for p in self._patterns]
        self.labels = frozenset().union(*self._labels) if self._labels else frozenset()
        self.longest = max((len(p) for p in self._patterns), default=0)
        self._setup()

    def _setup(self) -> None:
        self._db = _database(self._patterns, caseless=True) if self._patterns else None
        self._exact: Matcher._Exact | None = None
        self._lock = threading.Lock()
        self._local = threading.local()

    class _Exact:
        """The case-sensitive database of bulk binary data (compiled on first use)."""

        def __init__(self, texts: list[tuple[str, str]]) -> None:
            by_pattern: dict[bytes, set[str]] = {}
            for label, text in texts:
                for v in exact_variants(text):
                    by_pattern.setdefault(v, set()).add(label)
            self.patterns = sorted(by_pattern)
            self.labels = [frozenset(by_pattern[p]) for p in self.patterns]
            self.db = _database(self.patterns, caseless=False) if self.patterns else None

    def _exact_db(self) -> Matcher._Exact:
        with self._lock:
            if self._exact is None:
                self._exact = Matcher._Exact(self._texts)
            return self._exact

    def __getstate__(self) -> dict[str, Any]:  # the databases are compiled again where unpickled
        skip = ("_db", "_exact", "_lock", "_local")
        return {k: v for k, v in self.__dict__.items() if k not in skip}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._setup()

    def __len__(self) -> int:
        """Number of distinct patterns searched for (all encodings)."""
        return len(self._patterns)

    def _ids(self, data: bytes | memoryview, exact: bool = False) -> set[int]:
        """Indexes of the patterns (of the exact database if `exact`) occurring in `data`."""
        found: set[int] = set()
        db = self._exact_db().db if exact else self._db
        if db is None or not len(data):
            return found
        name = "exact" if exact else "caseless"
        scratch = getattr(self._local, name, None)
        if scratch is None:
            scratch = hyperscan.Scratch(db)
            setattr(self._local, name, scratch)

        def hit(idx: int, _start: int, _end: int, _flags: int, _ctx: object) -> None:
            found.add(idx)

        db.scan(data, match_event_handler=hit, scratch=scratch)
        return found

    def _matches(self, data: bytes) -> list[tuple[int, int, int]]:
        """(pattern index, start, stop) of every occurrence (for spans: short texts)."""
        low = data.lower()
        out = []
        for idx in self._ids(data):
            pattern = self._patterns[idx]
            at = low.find(pattern)
            while at >= 0:
                out.append((idx, at, at + len(pattern)))
                at = low.find(pattern, at + 1)
        return out

    def find(self, data: bytes) -> set[str]:
        """Labels of every needle in `data` (any encoding, any case), overlaps included."""
        found: set[str] = set()
        for idx in self._ids(data):
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
        """Search bulk binary data block by block (bounded memory, overlap between blocks),
        case-sensitively for the value, its lower and its upper case: a short needle in any
        case mix would match random bytes of a large image far too often."""
        if self._db is None:
            return set()
        exact = self._exact_db()
        overlap = max((len(p) for p in exact.patterns), default=1) - 1
        found: set[str] = set()
        tail = b""
        while block := fh.read(block_size):
            data = tail + block if tail else block
            for idx in self._ids(data, exact=True):
                found |= exact.labels[idx]
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


#: matchers kept per process by `cached` (a worker serves slides of a few releases at a time)
CACHE_SIZE = 4
_cache: OrderedDict[tuple[tuple[str, str | bytes], ...], Matcher] = OrderedDict()
_cache_lock = threading.Lock()


def cached(needles: Iterable[tuple[str, str | bytes]]) -> Matcher:
    """The matcher of `needles`, compiled once per process and reused (the needles every slide
    of a release shares: canaries, cohort identifiers, source names), so a slide's search
    costs the same whatever the size of its cohort."""
    key = tuple(needles)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    matcher = Matcher(key)
    matcher._exact_db()  # both databases now: shared needles search bulk binary data too
    with _cache_lock:
        _cache[key] = matcher
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return matcher


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
