"""Record a target's releases in the registry: release ids, key ids and, read back from the
published OME-Zarr, each slide's ledger fingerprints (level-0 tile hash, perceptual hash of the
lowest level), so the ledger flags a re-release of them. The source patient is not known from a
release: imported rows carry no patient fingerprint."""

from __future__ import annotations

import logging
from typing import Any

from slidegate.registry.store import Registry

log = logging.getLogger("slidegate.registry")


def slide_fingerprints(location: str, settings: Any) -> dict[str, str] | None:
    """The ledger fingerprints of a published slide (a folder or an s3:// prefix)."""
    from slidegate.risk.images import perceptual_hash, zarr_lowest_level, zarr_tile_hash
    from slidegate.staging import open_staged

    try:
        group = open_staged(location, settings)
        return {
            "tile_sha256": zarr_tile_hash(group),
            "phash": perceptual_hash(zarr_lowest_level(group)),
        }
    except Exception as exc:  # a damaged or foreign object: recorded without fingerprints
        log.warning("import: a slide could not be read back (%s)", type(exc).__name__)
        return None


def import_releases(
    registry: Registry, store: Any, target: str, target_url: str, settings: Any
) -> list[str]:
    """Record the complete releases in `store` (at `target_url`, named `target` in the
    registry) that the registry does not know; returns those added."""
    from slidegate.publish.release import load_manifest
    from slidegate.registry.guard import manifest_info, target_releases

    found = target_releases(store)
    added = registry.import_releases(target, found)
    base = target_url.rstrip("/")
    for release in added:
        rows = []
        for slide in manifest_info(load_manifest(store, release) or {}).get("slides", []):
            if not isinstance(slide, dict) or "slide" not in slide or "path" not in slide:
                continue
            prints = slide_fingerprints(f"{base}/{release}/{slide['path']}", settings)
            if prints is not None:
                rows.append({"slide": str(slide["slide"]), "patient_fp": "", **prints})
        registry.record_published(release, found[release], rows, "imported")
        log.info("import: release %s, %d slide fingerprint(s)", release, len(rows))
    return added
