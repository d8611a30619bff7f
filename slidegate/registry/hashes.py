"""The hashes the registry compares between runs: spec, policies, a slide's source, plan and
staged output. Hex sha256 of canonical JSON; none of them carries a value."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

#: bytes read from each end of every source file for its fingerprint
EDGE = 1 << 16


def _plain(obj: Any) -> Any:
    if hasattr(obj, "model_dump"):
        return _plain(obj.model_dump(mode="json"))
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, list | tuple | set | frozenset):
        items = [_plain(v) for v in obj]
        return sorted(items, key=json.dumps) if isinstance(obj, set | frozenset) else items
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, int | float | str | bool) or obj is None:
        return obj
    return str(obj)


def digest(obj: Any) -> str:
    text = json.dumps(_plain(obj), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def spec_hash(resolved: Any) -> str:
    """The spec's meaning: its fields, the resolved target and source, the cohort table's and
    the canaries file's bytes."""
    return digest(
        {
            "spec": resolved.spec,
            "source": str(resolved.source_root),
            "target": resolved.target,
            "cohort": file_sha256(resolved.cohort_path),
            "canaries": (
                file_sha256(resolved.canaries_path) if resolved.canaries_path is not None else None
            ),
        }
    )


def policy_hash(policies: Any) -> str:
    return digest(policies)


def source_fingerprint(path: Any) -> str | None:
    """A local source (file or folder: MRXS, DICOM series): every file's relative name, size,
    modification time and its first and last 64 KiB. None for sources on S3 (not resumed)."""
    if not isinstance(path, Path):
        return None
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    if path.suffix.lower() == ".mrxs":  # its data folder beside it
        folder = path.with_suffix("")
        files += sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f.relative_to(path.parent)}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
        with f.open("rb") as fh:
            h.update(fh.read(EDGE))
            if st.st_size > EDGE:
                fh.seek(max(EDGE, st.st_size - EDGE))
                h.update(fh.read(EDGE))
    return h.hexdigest()


def tree_listing(path: Path) -> str | None:
    """Digest of a staged output's listing (relative names, sizes, modification times): what
    the audit saw is still there, unchanged. None if it is gone."""
    if not path.exists():
        return None
    if path.is_file():
        st = path.stat()
        return digest([[path.name, st.st_size, st.st_mtime_ns]])
    rows = []
    for root, _dirs, names in os.walk(path):
        for name in names:
            p = Path(root) / name
            st = p.stat()
            rows.append([p.relative_to(path).as_posix(), st.st_size, st.st_mtime_ns])
    return digest(sorted(rows))
