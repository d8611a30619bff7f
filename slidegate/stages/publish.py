"""Publish stages: check the target first, upload approved slides, then the manifest last.

Every write goes through the egress gate (slidegate/stages/gate.py): a slide's objects only
if the gate admitted them after the audit; the release-level files are all searched before
the first of them is written, and a finding stops the release before the manifest."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from slidegate import __version__
from slidegate.errors import SpecError, TransientIOError
from slidegate.formats.original_copy import copy_suffix
from slidegate.ledger import record_release
from slidegate.models import SlideReport
from slidegate.publish.readme import README, write_release_readme
from slidegate.publish.release import (
    ObjectRecord,
    publish_files,
    publish_tree,
    write_manifest,
)
from slidegate.publish.s3 import S3Store
from slidegate.publish.stores import Store, check_writable, open_store
from slidegate.sources import is_s3
from slidegate.stages.cohort import CohortOutcome
from slidegate.stages.context import ReleaseContext
from slidegate.stages.gate import release_gate, slide_gate
from slidegate.staging import publish_staged

log = logging.getLogger("slidegate.stages")


def _store(ctx: ReleaseContext) -> Store:
    """The target, with the profile's Object Lock and encryption settings for every put."""
    return open_store(ctx.target, ctx.settings, ctx.policies.profile.publish)


def check_target(ctx: ReleaseContext) -> str:
    """Before any conversion: the target is reachable, writable, the release is new, and the
    bucket has Object Lock enabled when the profile asks for retention."""
    store = _store(ctx)
    lock = ctx.policies.profile.publish.object_lock
    if lock is not None and isinstance(store, S3Store) and not store.object_lock_enabled():
        raise SpecError(
            f"profile {ctx.profile!r} asks for Object Lock ({lock.mode}), but bucket "
            f"{store.bucket!r} does not have Object Lock enabled: create the bucket with Object "
            "Lock enabled (e.g. `aws s3api create-bucket --object-lock-enabled-for-bucket`) or "
            "remove `publish.object_lock` from the profile",
            reason="bucket without Object Lock",
        )
    if store.head_sha256(f"{ctx.release}/manifest.json") is not None or (
        f"{ctx.release}/manifest.json" in store.list_keys(f"{ctx.release}/manifest.json")
    ):
        raise SpecError(
            f"release {ctx.release!r} already exists at {store.describe()} and is immutable; "
            "choose a new release id"
        )
    check_writable(store, ctx.release)
    return store.describe()


def publish_slide(ctx: ReleaseContext, report: SlideReport) -> list[ObjectRecord]:
    if report.status != "approved" or report.output_path is None:
        raise ValueError(f"slide {report.pseudonym} is not approved; it must not be published")
    gate = slide_gate(ctx, _store(ctx), report)  # admitted objects only
    dest = f"slides/{report.pseudonym}.ome.zarr"
    workers = ctx.settings.upload_concurrency
    if is_s3(report.output_path):  # staged on S3: copied from the staging prefix
        records = publish_staged(gate, ctx.release, report.output_path, dest, ctx.settings)
    else:
        records = publish_tree(
            gate, ctx.release, Path(report.output_path), dest, concurrency=workers,
            admitted_only=True,
        )  # fmt: skip
    copy = Path(report.copy_path) if report.copy_path is not None else None
    if report.copy_path is not None and is_s3(report.copy_path):  # staged: <p>.copy/<p>.svs
        records += publish_staged(gate, ctx.release, report.copy_path, "slides", ctx.settings)
    elif copy is not None and copy.is_dir():  # DICOM: a folder of instances
        records += publish_tree(
            gate, ctx.release, copy, copy_key(report), concurrency=workers, admitted_only=True
        )
    elif copy is not None:
        records += publish_files(gate, ctx.release, {copy_key(report): copy}, admitted_only=True)
    log.info("slide %s published: %d objects", report.pseudonym, len(records))
    return records


def publish_slides(ctx: ReleaseContext, reports: Sequence[SlideReport]) -> list[ObjectRecord]:
    """Several approved slides in one call (one orchestrator task per batch), each exactly as
    `publish_slide`. A storage hiccup on one slide does not stop the others: the first one is
    raised after every slide was tried, so a retry of the batch uploads only what is missing
    (objects already in the target with the right checksum are skipped: per-object resume).
    Any other error (a gate finding, a slide not approved) stops the batch at once."""
    records: list[ObjectRecord] = []
    failed: list[TransientIOError] = []
    for report in reports:
        try:
            records += publish_slide(ctx, report)
        except TransientIOError as exc:
            log.warning("slide %s: upload failed (%s); the batch goes on", report.pseudonym,
                        exc.reason)  # fmt: skip
            failed.append(exc)
    if failed:
        raise failed[0]
    return records


def copy_key(report: SlideReport) -> str:
    """Release key of a slide's original-format copy: `slides/<pseudonym>.svs` etc."""
    suffix = copy_suffix(report.format or "")
    assert report.copy_path is not None and suffix is not None
    return f"slides/{report.pseudonym}{suffix}"


def finalize(
    ctx: ReleaseContext, outcome: CohortOutcome, slide_records: Sequence[ObjectRecord]
) -> dict[str, object]:
    """Search every release-level file and every key through the egress gate, then upload
    cohort.csv and reports, then SHA256SUMS and manifest.json, last. A finding raises
    EgressBlocked before any of these is written."""
    gate = release_gate(ctx, _store(ctx), outcome.slides, Path(outcome.cohort_csv))
    files = {"cohort.csv": Path(outcome.cohort_csv)}
    files[README] = write_release_readme(ctx, outcome, copy_key)  # issue 14: release README
    reports = Path(outcome.reports_dir)
    for path in sorted(reports.rglob("*")):  # incl. data-docs/ (GX Data Docs HTML)
        if path.is_file():
            files[f"reports/{path.relative_to(reports).as_posix()}"] = path
    for record in slide_records:
        gate.check_key(f"{ctx.release}/{record.key}")
    for key, path in files.items():
        gate.check_file(f"{ctx.release}/{key}", path)
    counts = {
        status: sum(s.status == status for s in outcome.slides)
        for status in ("approved", "withheld", "quarantined")
    }
    info: dict[str, object] = {
        "profile": ctx.profile,
        "access": ctx.policies.profile.access,
        "slidegate_version": __version__,
        "key_id": ctx.key_id,
        "counts": counts,
        "slides": [
            {
                "slide": s.pseudonym,
                "path": f"slides/{s.pseudonym}.ome.zarr",
                "levels": s.levels,
                **({"copy": copy_key(s)} if s.copy_path is not None else {}),
            }
            for s in outcome.approved
        ],
        "risk": outcome.figures,
    }
    gate.check_bytes(f"{ctx.release}/manifest.json", json.dumps(info, sort_keys=True).encode())
    records = list(slide_records) + publish_files(gate, ctx.release, files)
    manifest = write_manifest(gate, ctx.release, records, info)
    recorded = record_release(ctx.settings, ctx.work, ctx.release, ctx.key_id)
    log.info("ledger: %d published slide(s) recorded", recorded)
    log.info("release %s complete at %s", ctx.release, gate.store.describe())
    return manifest
