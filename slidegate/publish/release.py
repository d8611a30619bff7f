"""The release layout (DESIGN.md section 5) and its guarantees.

```
<target>/<release>/
  slides/<pseudonym>.ome.zarr/...   approved slides
  cohort.csv, reports/...           de-identified tables and reports
  SHA256SUMS                        every object, `sha256sum -c` compatible
  manifest.json                     written last: the release exists when this exists
```
Every write goes through the egress gate (slidegate/egress/gate.py): keys and bytes are
searched for the release's needles before the target sees them. Objects first, manifest
last. A release with a manifest is immutable: publishing different objects into it is
refused; an identical rerun is a no-op. Uploads skip objects already present
with the same sha256, so an interrupted publish resumes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import slidegate
from slidegate.errors import SpecError
from slidegate.publish.stores import Store, check_key, sha256_file

if TYPE_CHECKING:
    from slidegate.egress.gate import Gate

MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
RESERVED = frozenset({MANIFEST, SUMS})

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class ObjectRecord:
    """One published object. `key` is relative to the release folder."""

    key: str
    size: int
    sha256: str
    uploaded: bool = False  # False when it was already present with the same sha256

    def entry(self) -> dict[str, Any]:
        return {"path": self.key, "size": self.size, "sha256": self.sha256}


def _pmap(fn: Callable[[T], R], items: Sequence[T], concurrency: int) -> list[R]:
    if concurrency <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(fn, items))


def load_manifest(store: Store, release: str) -> dict[str, Any] | None:
    key = f"{check_key(release)}/{MANIFEST}"
    if store.head_sha256(key) is None:
        return None
    try:
        data = json.loads(store.get_bytes(key))
    except ValueError as exc:
        raise SpecError(f"release {release!r} has an unreadable {MANIFEST}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("objects"), list):
        raise SpecError(f"release {release!r} has a {MANIFEST} without an object list")
    return data


def _immutable(release: str) -> SpecError:
    return SpecError(
        f"release {release!r} already exists and is immutable; choose a new release id (its "
        f"{MANIFEST} lists other objects)",
        reason="release exists",
    )


def publish_files(
    gate: Gate,
    release: str,
    files: Mapping[str, Path],
    *,
    concurrency: int = 4,
    admitted_only: bool = False,
) -> list[ObjectRecord]:
    """Upload `files` (key relative to the release -> local path) through `gate`. Objects
    already present with the same sha256 are skipped. Refuses to change a release that has a
    manifest. `admitted_only`: only objects the gate admitted (slide outputs) may pass."""
    store = gate.store
    check_key(release)
    items = sorted((check_key(k), Path(p)) for k, p in files.items())
    for key, _ in items:
        if key in RESERVED:
            raise SpecError(f"{key} is written by slidegate itself; rename the file")
    hashes = _pmap(lambda kp: sha256_file(kp[1]), items, concurrency)

    existing = load_manifest(store, release)
    if existing is not None:
        listed = {o.get("path"): o.get("sha256") for o in existing["objects"]}
        if any(listed.get(k) != h for (k, _), h in zip(items, hashes, strict=True)):
            raise _immutable(release)

    def upload(job: tuple[tuple[str, Path], str]) -> ObjectRecord:
        (key, path), sha = job
        full = f"{release}/{key}"
        size = path.stat().st_size
        if store.head_sha256(full) == sha:
            gate.check_key(full)  # already there (a resumed run): its key is checked again
            return ObjectRecord(key, size, sha, uploaded=False)
        gate.write_file(full, path, sha, admitted_only=admitted_only)
        return ObjectRecord(key, size, sha, uploaded=True)

    return _pmap(upload, list(zip(items, hashes, strict=True)), concurrency)


def publish_tree(
    gate: Gate,
    release: str,
    local_dir: Path,
    dest: str,
    *,
    concurrency: int = 4,
    admitted_only: bool = False,
) -> list[ObjectRecord]:
    """Upload every file under `local_dir` to `<release>/<dest>/...` (see publish_files)."""
    local_dir = Path(local_dir)
    if not local_dir.is_dir():
        raise SpecError(f"nothing to publish: {local_dir} is not a folder")
    dest = check_key(dest.strip("/"))
    files = {
        f"{dest}/{p.relative_to(local_dir).as_posix()}": p
        for p in sorted(local_dir.rglob("*"))
        if p.is_file()
    }
    return publish_files(gate, release, files, concurrency=concurrency, admitted_only=admitted_only)


def sha256sums(records: Sequence[ObjectRecord]) -> str:
    """`sha256sum -c` compatible text: '<hex>  <path>' lines, sorted by path."""
    return "".join(f"{r.sha256}  {r.key}\n" for r in sorted(records, key=lambda r: r.key))


def write_manifest(
    gate: Gate, release: str, records: Sequence[ObjectRecord], info: Mapping[str, object]
) -> dict[str, Any]:
    """Write SHA256SUMS, then manifest.json (last: its presence makes the release exist).

    A release that already has a manifest is left alone when the object list is the same,
    and refused when it differs. Before the first manifest, objects under the release that
    `records` does not list (left by an interrupted earlier run) are deleted."""
    store = gate.store
    check_key(release)
    for r in records:  # every key of the release, slide objects included, once more
        gate.check_key(f"{release}/{r.key}")
    objects = [r.entry() for r in sorted(records, key=lambda r: r.key)]
    paths = [o["path"] for o in objects]
    if len(set(paths)) != len(paths):
        raise SpecError(f"release {release!r}: the same object path is listed twice")
    existing = load_manifest(store, release)
    if existing is not None:
        if existing["objects"] == objects:
            return existing
        raise _immutable(release)

    # Not released yet: every listed object must be there, and objects left by an earlier,
    # interrupted run that are not listed (e.g. a slide withheld since) are removed.
    present = {k[len(release) + 1 :] for k in store.list_keys(release)}
    missing = sorted(set(paths) - present)
    if missing:
        raise SpecError(
            f"release {release!r}: {len(missing)} listed object(s) were not uploaded (first: "
            f"{missing[0]}); publish them before writing the manifest"
        )
    for stale in sorted(present - set(paths) - RESERVED):
        store.delete(f"{release}/{stale}")

    sums = sha256sums(records).encode("utf-8")
    sums_sha = hashlib.sha256(sums).hexdigest()
    gate.write_bytes(f"{release}/{SUMS}", sums)
    manifest: dict[str, Any] = {
        "release": release,
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "slidegate_version": slidegate.__version__,
        "info": dict(info),
        "objects": objects,
        "sha256sums": sums_sha,
    }
    data = json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8")
    gate.write_bytes(f"{release}/{MANIFEST}", data)
    return manifest


def verify_release(store: Store, release: str, *, concurrency: int = 4) -> list[str]:
    """Re-read a published release: manifest present, every listed object present with the
    right sha256 (downloaded and hashed), SHA256SUMS consistent, nothing else under the
    release. Returns the problems (empty = good); they name object paths, never contents."""
    manifest = load_manifest(store, release)
    if manifest is None:
        return [f"release {release!r} has no {MANIFEST}"]
    objects = {str(o["path"]): str(o["sha256"]) for o in manifest["objects"]}
    present = {k[len(release) + 1 :] for k in store.list_keys(release)}
    problems = [f"missing object: {p}" for p in sorted(set(objects) - present)]
    problems += [f"unexpected object: {p}" for p in sorted(present - set(objects) - RESERVED)]

    to_hash = sorted(set(objects) & present)
    hashes = _pmap(lambda p: store.hash_object(f"{release}/{p}"), to_hash, concurrency)
    problems += [
        f"checksum mismatch: {p}"
        for p, h in zip(to_hash, hashes, strict=True)
        if h is not None and h != objects[p]
    ]
    problems += [f"missing object: {p}" for p, h in zip(to_hash, hashes, strict=True) if h is None]

    if SUMS not in present:
        problems.append(f"missing object: {SUMS}")
    else:
        sums = store.get_bytes(f"{release}/{SUMS}")
        expected = "".join(f"{objects[p]}  {p}\n" for p in sorted(objects)).encode("utf-8")
        if hashlib.sha256(sums).hexdigest() != manifest.get("sha256sums") or sums != expected:
            problems.append(f"{SUMS} does not match {MANIFEST}")
    return problems


def list_releases(store: Store) -> list[str]:
    """Releases under the store root that have a manifest (readers trust only those)."""
    return [r for r in store.list_children("") if store.head_sha256(f"{r}/{MANIFEST}") is not None]
