"""Raw byte search of an output tree for known PHI values (needles), with the egress matcher.

Every file under the root is streamed in blocks with an overlap of (longest pattern - 1)
bytes, so memory stays bounded and a value split across two blocks is still found. The search
is the egress gate's (slidegate.egress.matcher: one Hyperscan database, UTF-8, UTF-16 LE/BE,
hex and JSON-escaped forms, ASCII case-insensitive, base64 strings of text documents decoded),
so the audit finds what the gate would. Relative paths of the files are searched too (a file
or folder named after a PHI value).

A `Finding` names the needle's label and the file; never the value. If a path itself carries a
needle, the matching part of the path is replaced by "[REDACTED]".
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from slidegate.egress.matcher import BLOCK_SIZE, REDACTED, Matcher, cached, is_document
from slidegate.models import Finding

__all__ = ["BLOCK_SIZE", "REDACTED", "Scanner", "iter_files", "scan_tree"]


class Scanner:
    """Compiled needles (label -> bytes) plus shared ones compiled once per process (the
    release's canaries: the same for every slide); reusable across trees and files."""

    def __init__(
        self, needles: Mapping[str, bytes], shared: Mapping[str, bytes] | None = None
    ) -> None:
        self.matchers = [Matcher(needles.items())]
        if shared:
            self.matchers.append(cached(tuple(sorted(shared.items()))))

    def scan_file(self, path: Path, block_size: int = BLOCK_SIZE) -> set[str]:
        found: set[str] = set()
        for m in self.matchers:
            if is_document(path.name):
                found |= m.scan_document(path.read_bytes())
            else:
                with path.open("rb") as fh:
                    found |= m.scan_stream(fh, block_size)
        return found

    def scan_name(self, relpath: str) -> set[str]:
        raw = relpath.encode("utf-8")
        return set().union(*(m.find(raw) for m in self.matchers))

    def redact(self, relpath: str) -> str:
        """The path with every part that matches a needle replaced by [REDACTED]."""
        for m in self.matchers:
            relpath = m.redact(relpath)
        return relpath


def iter_files(root: Path) -> Iterator[Path]:
    """Every regular file under root, any depth, in a stable order (symlinks not followed)."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if p.is_file() and not p.is_symlink():
                yield p


def scan_tree(
    root: Path,
    needles: Mapping[str, bytes],
    *,
    shared: Mapping[str, bytes] | None = None,
    block_size: int = BLOCK_SIZE,
) -> tuple[Finding, ...]:
    """Search every byte of every file under `root` (and every relative path) for `needles`
    and `shared` (needles every slide of a release shares, compiled once per process).

    Each maps a label (a field name or canary id) to the bytes to look for. Returns one
    Finding per (label, file), sorted; empty when nothing was found.
    """
    scanner = Scanner(needles, shared)
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
