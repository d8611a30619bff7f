"""The release flow's side of the steward registry: its key from a Prefect Secret block, the
checks and the target lock before any work, the result of a rerun of a complete release."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pydantic import SecretStr

from slidegate.errors import SpecError
from slidegate.publish.stores import open_store
from slidegate.registry import Registry
from slidegate.registry.guard import Preflight, begin, preflight, target_id
from slidegate.registry.importing import import_releases
from slidegate.registry.locks import TargetLock
from slidegate.settings import Settings
from slidegate.stages.context import ReleaseContext


def resolve_registry_key(settings: Settings) -> Settings:
    """Settings with `registry_key` from the named Prefect Secret block (unchanged without)."""
    name = settings.registry_key_block
    if not name or settings.registry_key is not None:
        return settings
    from prefect.blocks.system import Secret

    try:
        secret: Secret[Any] = Secret.load(name, _sync=True)  # type: ignore[assignment,call-arg]
    except (ValueError, LookupError):
        raise SpecError(
            f"registry key block {name!r} not found on the Prefect server; create a Secret "
            "block with the key (64 hex digits) or unset SLIDEGATE_REGISTRY_KEY_BLOCK",
            reason="registry key block missing",
        ) from None
    return replace(settings, registry_key=SecretStr(str(secret.get())))


def registry_of(ctx: ReleaseContext) -> Registry:
    return Registry.open(ctx.settings)


def begin_release(ctx: ReleaseContext, new_registry: bool) -> tuple[Preflight, TargetLock | None]:
    """Under the target's lock: unknown releases in the target stop the release, a complete
    release from this spec is verified (no lock returned), else the run is recorded."""
    store = open_store(ctx.target, ctx.settings)
    registry = registry_of(ctx)
    name = target_id(ctx.target, ctx.settings)
    return begin(
        registry,
        store,
        release=ctx.release,
        target=name,
        spec_hash=ctx.spec_hash,
        policy_hash=ctx.policy_hash,
        key_id=ctx.key_id,
        new_registry=new_registry,
        wait_s=ctx.settings.registry_lock_wait_s,
        importer=lambda: import_releases(registry, store, name, ctx.target, ctx.settings),
    )


def check_release(resolved: Any, settings: Settings, new_registry: bool) -> Preflight:
    """The CLI's check before a server or a flow run: the same preflight, without the lock."""
    from slidegate.registry.hashes import spec_hash

    store = open_store(resolved.target, settings)
    registry = Registry.open(settings)
    if not settings.registry_key_block:  # else the flow resolves it from the Prefect block
        registry.require_key()
    name = target_id(resolved.target, settings)
    return preflight(
        registry,
        store,
        release=resolved.spec.release,
        target=name,
        spec_hash=spec_hash(resolved),
        new_registry=new_registry,
        importer=lambda: import_releases(registry, store, name, resolved.target, settings),
    )


def complete_result(ctx: ReleaseContext, pre: Preflight) -> dict[str, Any]:
    record = registry_of(ctx).release(ctx.release) or {}
    import json

    decisions = json.loads(record.get("decisions") or "{}")
    counts = {
        st: sum(v == st for v in decisions.values())
        for st in ("approved", "withheld", "quarantined")
    }
    return {
        "release": ctx.release,
        "published": True,
        "complete": True,
        "target": open_store(ctx.target, ctx.settings).describe(),
        "objects": pre.objects,
        "counts": counts,
    }


def import_target(target: str, settings: Settings) -> int:
    """`slidegate registry import TARGET`: record the target's releases (ids, key ids, the
    published slides' ledger fingerprints)."""
    store = open_store(target, settings)
    registry = Registry.open(settings)
    added = import_releases(registry, store, target_id(target, settings), target, settings)
    for release in added:
        print(f"imported {release}")
    print(
        f"{store.describe()}: {len(added)} release(s) newly recorded in {registry.describe()} "
        "(release ids, key ids and the published slides' fingerprints for the ledger)"
    )
    return 0
