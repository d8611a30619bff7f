"""Raw byte search of an output tree for known PHI values (needles).

Every file under the root is streamed in blocks with an overlap of (longest needle - 1) bytes,
so memory stays bounded and a value split across two blocks is still found. All needles are
compiled into one trie-shaped regular expression (a shared prefix is tested once; the regex
engine skips ahead on the set of first bytes); after each hit the search restarts one byte later,
so overlapping and nested needles are all reported.

Variants searched for each needle: the UTF-8 bytes, the UTF-16LE encoding and, in text files
(JSON, CSV, Markdown, text, SHA256SUMS), a JSON-escaped form, case-insensitively (ASCII case
folding: the block and the needles are lowercased).
Relative paths of the files are searched too (a file or folder named after a PHI value).

A `Finding` names the needle's label and the file; never the value. If a path itself carries a
needle, the matching part of the path is replaced by "[REDACTED]".
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from slidegate.models import Finding

BLOCK_SIZE = 4 * 1024 * 1024
TEXT_SUFFIXES = frozenset({".json", ".csv", ".md", ".txt", ".zattrs", ".zgroup", ".zarray"})
TEXT_NAMES = frozenset({"SHA256SUMS"})
REDACTED = "[REDACTED]"


def is_text_file(path: Path) -> bool:
    return path.suffix.lower() in TEXT_SUFFIXES or path.name in TEXT_NAMES


@dataclass(frozen=True)
class _Matcher:
    """One compiled pattern and how to map a matched byte string back to labels."""

    pattern: re.Pattern[bytes]
    labels: Mapping[bytes, frozenset[str]]  # variant (lowercased if folding) -> labels
    fold: bool
    longest: int

    def find(self, data: bytes) -> set[str]:
        """Labels of every needle occurring in data, overlapping and nested ones included."""
        if self.fold:
            data = data.lower()
        found: set[str] = set()
        search = self.pattern.search
        m = search(data)
        while m is not None:
            found |= self.labels[m.group()]
            # restart one byte after the match start: needles overlapping this one are found
            m = search(data, m.start() + 1)
        return found

    def spans(self, data: bytes) -> list[tuple[int, int]]:
        if self.fold:
            data = data.lower()
        out = []
        m = self.pattern.search(data)
        while m is not None:
            out.append(m.span())
            m = self.pattern.search(data, m.start() + 1)
        return out


def _variants(value: bytes, text: bool) -> set[bytes]:
    out = {value}
    try:
        decoded = value.decode("utf-8")
    except UnicodeDecodeError:
        return out
    out.add(decoded.encode("utf-16-le"))
    if text:
        out.add(json.dumps(decoded)[1:-1].encode("ascii"))
        out.add(json.dumps(decoded, ensure_ascii=False)[1:-1].encode("utf-8"))
    return out


def _trie_regex(words: Iterable[bytes]) -> bytes:
    """A regex source that matches any of `words`, shaped as a trie (longest first)."""
    trie: dict[int, dict] = {}
    end = -1  # key marking the end of a word
    for w in words:
        node = trie
        for b in w:
            node = node.setdefault(b, {})
        node[end] = {}

    def emit(node: dict[int, dict]) -> bytes:
        optional = end in node
        branches = [chain(b, child) for b, child in node.items() if b != end]
        if not branches:
            return b""
        body = branches[0] if len(branches) == 1 else b"(?:" + b"|".join(branches) + b")"
        if optional:
            return b"(?:" + body + b")?"
        return body

    def chain(first: int, node: dict[int, dict]) -> bytes:
        # follow single-child runs iteratively: long needles do not deepen the recursion
        run = bytearray([first])
        while len(node) == 1 and end not in node:
            ((b, node),) = node.items()
            run.append(b)
        return re.escape(bytes(run)) + emit(node)

    return emit(trie)


def _compile(needles: Mapping[str, bytes], text: bool) -> _Matcher | None:
    labels: dict[bytes, set[str]] = {}
    for label, value in needles.items():
        if not value:
            continue
        for v in _variants(value, text):
            key = v.lower() if text else v
            labels.setdefault(key, set()).add(label)
    if not labels:
        return None
    # A needle that is a prefix of a longer one at the same position is reported with it.
    words = sorted(labels)
    lengths = sorted({len(w) for w in words})  # few distinct lengths: no per-byte prefix walk
    full: dict[bytes, frozenset[str]] = {}
    for w in words:
        acc = set(labels[w])
        for n in lengths:
            if n >= len(w):
                break
            acc |= labels.get(w[:n], set())
        full[w] = frozenset(acc)
    # text files are lowercased before the search (fast), instead of re.IGNORECASE (slow)
    pattern = re.compile(_trie_regex(words), re.DOTALL)
    return _Matcher(pattern, full, text, max(len(w) for w in words))


class Scanner:
    """Compiled needles; reusable across trees and files."""

    def __init__(self, needles: Mapping[str, bytes]) -> None:
        self.binary = _compile(needles, text=False)
        self.text = _compile(needles, text=True)

    def scan_file(self, path: Path, block_size: int = BLOCK_SIZE) -> set[str]:
        matcher = self.text if is_text_file(path) else self.binary
        if matcher is None:
            return set()
        overlap = matcher.longest - 1
        found: set[str] = set()
        tail = b""
        with path.open("rb") as fh:
            while True:
                block = fh.read(block_size)
                if not block:
                    break
                data = tail + block if tail else block
                found |= matcher.find(data)
                tail = data[-overlap:] if overlap > 0 else b""
        return found

    def scan_name(self, relpath: str) -> set[str]:
        if self.text is None:
            return set()
        return self.text.find(relpath.encode("utf-8"))

    def redact(self, relpath: str) -> str:
        """The path with every part that matches a needle replaced by [REDACTED]."""
        if self.text is None:
            return relpath
        raw = relpath.encode("utf-8")
        merged: list[list[int]] = []
        for start, stop in sorted(self.text.spans(raw)):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], stop)
            else:
                merged.append([start, stop])
        out, pos = [], 0
        for start, stop in merged:
            out.append(raw[pos:start].decode("utf-8", "replace"))
            out.append(REDACTED)
            pos = stop
        out.append(raw[pos:].decode("utf-8", "replace"))
        return "".join(out)


def iter_files(root: Path) -> Iterator[Path]:
    """Every regular file under root, any depth, in a stable order (symlinks not followed)."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if p.is_file() and not p.is_symlink():
                yield p


def scan_tree(
    root: Path, needles: Mapping[str, bytes], *, block_size: int = BLOCK_SIZE
) -> tuple[Finding, ...]:
    """Search every byte of every file under `root` (and every relative path) for `needles`.

    `needles` maps a label (a field name or canary id) to the bytes to look for. Returns one
    Finding per (label, file), sorted; empty when nothing was found.
    """
    scanner = Scanner(needles)
    findings: set[tuple[str, str]] = set()
    root = Path(root)
    if root.is_file():
        files: Iterable[Path] = [root]
        base = root.parent
    else:
        files = iter_files(root)
        base = root
    for path in files:
        rel = path.relative_to(base).as_posix()
        labels = scanner.scan_file(path, block_size) | scanner.scan_name(rel)
        if labels:
            shown = scanner.redact(rel)
            findings.update((label, shown) for label in labels)
    return tuple(Finding(field=f, file=p) for f, p in sorted(findings))
