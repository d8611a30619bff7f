"""What the registry decides before a release does any work, and records at its end.

- A target holding releases the registry does not know stops the release (the ledger cannot
  protect against what it has not seen): import them, or say `--new-registry`.
- A rerun of a spec whose release is already in the target (same spec, same target) verifies
  it and reports it complete; a different spec under that release id is refused.
- Releases into one target run one at a time (`locks.TargetLock`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slidegate.errors import SpecError
from slidegate.registry.locks import TargetLock
from slidegate.registry.store import Registry

#: releases named in a message, at most
SHOWN = 10


def target_id(target: str, settings: Any) -> str:
    """A target as the registry names it: an absolute folder, or endpoint + s3 URL."""
    if target.startswith("s3://"):
        return f"{settings.s3_endpoint_url or 'aws'} {target.rstrip('/')}"
    return str(Path(target).resolve())


def target_releases(store: Any) -> dict[str, str]:
    """Complete releases in the target (those with a manifest) -> their key id."""
    from slidegate.publish.release import list_releases, load_manifest

    found = {}
    for release in list_releases(store):
        info = manifest_info(load_manifest(store, release) or {})
        found[release] = str(info.get("key_id", ""))
    return found


def manifest_info(manifest: dict[str, Any]) -> dict[str, Any]:
    """The release's own facts in its manifest (`info`: key id, slides, counts)."""
    info = manifest.get("info")
    return info if isinstance(info, dict) else {}


@dataclass(frozen=True)
class Preflight:
    target: str  # the registry's name of the target
    complete: bool  # the release is already in the target, verified
    objects: int = 0


def preflight(
    registry: Registry,
    store: Any,
    *,
    release: str,
    target: str,
    spec_hash: str,
    new_registry: bool = False,
    importer: Any = None,
) -> Preflight:
    """The checks that need the target and the registry but no lock (the CLI runs them before a
    flow run exists; the flow again, under the lock)."""
    from slidegate.publish.release import verify_release

    found = target_releases(store)
    known = registry.known_releases(target)
    record = registry.release(release)
    mine = record is not None and record["spec_hash"] == spec_hash and record["target"] == target
    unknown = sorted(set(found) - known - ({release} if mine else set()))
    if unknown and new_registry and importer is not None:
        importer()  # the target's releases with their slides' fingerprints
    elif unknown and new_registry:
        registry.import_releases(target, {r: found[r] for r in unknown})
    elif unknown:
        more = len(unknown) - SHOWN
        shown = ", ".join(unknown[:SHOWN]) + (f" and {more} more" if more > 0 else "")
        raise SpecError(
            f"target {store.describe()} already holds {len(unknown)} release(s) the registry "
            f"({registry.describe()}) does not know: {shown}. The cross-release ledger cannot "
            "check this release against them. Import them with `slidegate registry import "
            f"{store.describe()}` (or the registry they were made with: SLIDEGATE_REGISTRY_URL), "
            "or run again with `--new-registry` to record them and go on",
            reason="target holds unknown releases",
        )
    if release not in found:
        return Preflight(target, complete=False)
    if not mine:
        raise SpecError(
            f"release {release!r} already exists at {store.describe()} and is immutable; it was "
            "made from another spec: choose a new release id"
        )
    problems = verify_release(store, release)
    if problems:
        raise SpecError(
            f"release {release!r} at {store.describe()} was published from this spec but does "
            f"not verify ({len(problems)} problem(s), e.g. {problems[0]}); check the target "
            f"with `slidegate verify {store.describe()}/{release}`"
        )
    from slidegate.publish.release import load_manifest

    manifest = load_manifest(store, release) or {}
    registry.set_status(
        release, "complete", manifest_sha256=store.head_sha256(f"{release}/manifest.json")
    )
    return Preflight(target, complete=True, objects=len(manifest.get("objects", [])))


def begin(
    registry: Registry,
    store: Any,
    *,
    release: str,
    target: str,
    spec_hash: str,
    policy_hash: str,
    key_id: str,
    new_registry: bool = False,
    wait_s: float = 0,
    importer: Any = None,
) -> tuple[Preflight, TargetLock | None]:
    """Take the target's lock, run the preflight under it, record the run. Returns the lock
    (to release at the end) or None when the release is already complete."""
    lock = TargetLock(registry, target, release).acquire(wait_s)
    try:
        pre = preflight(
            registry,
            store,
            release=release,
            target=target,
            spec_hash=spec_hash,
            new_registry=new_registry,
            importer=importer,
        )
        if pre.complete:
            lock.release_lock()
            return pre, None
        registry.start_release(release, target, spec_hash, policy_hash, key_id)
    except BaseException:
        lock.release_lock()
        raise
    return pre, lock
