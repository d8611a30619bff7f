"""Per-slide stages: inventory, de-identify + convert, audit."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from slidegate.audit import AuditResult, audit_output, phi_needles, scan_tree
from slidegate.audit.copy_check import check_copy, copy_needles
from slidegate.bounded import Bound, run_bounded
from slidegate.burnin.gate import burn_in_gate
from slidegate.convert.ome_zarr import ConvertOptions, write_ome_zarr
from slidegate.deid.plan import plan_deid, summarize
from slidegate.egress.wording import FieldIds
from slidegate.errors import (
    CorruptSlideError,
    PolicyError,
    PolicyViolation,
    SlidegateError,
    SlideLimitError,
    TransientIOError,
    UnsupportedSlideError,
)
from slidegate.formats import read_facts
from slidegate.formats.original_copy import copy_suffix, write_original_copy
from slidegate.formats.tiff_copy import CopyNotPossible
from slidegate.models import DeidPlan, Finding, SlideFacts, SlideReport
from slidegate.profile import Conversion
from slidegate.risk.signature import sign_output
from slidegate.settings import slide_threads
from slidegate.sources import S3Ref, SourceRef, slide_source
from slidegate.spec import CohortSlide
from slidegate.stages.context import ReleaseContext
from slidegate.stages.gate import admit_slide
from slidegate.staging import stage_out

log = logging.getLogger("slidegate.stages")

#: errors that quarantine one slide while the rest of the cohort goes on
SLIDE_ERRORS = (
    CorruptSlideError,
    UnsupportedSlideError,
    PolicyViolation,
    PolicyError,
    SlideLimitError,
)


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), where the slide is converted."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def quarantine(report: SlideReport, stage: str, reason: str) -> SlideReport:
    return report.model_copy(update={"stage": stage, "status": "quarantined", "reason": reason})


def inventory(ctx: ReleaseContext, slide: CohortSlide) -> SlideReport:
    pseudonym = ctx.pseudonyms[slide.slide_id]
    report = SlideReport(
        slide_id=slide.slide_id, pseudonym=pseudonym, stage="inventory", status="ok"
    )
    try:
        with slide_source(slide.path, ctx.settings, ctx.work) as src:  # bounded: slidegate.bounded
            facts = run_bounded(Bound.of(ctx.settings), pseudonym, read_facts, src, slide.slide_id)
    except SLIDE_ERRORS as exc:
        log.warning("slide %s quarantined at inventory: %s", pseudonym, exc.reason)
        return quarantine(report, "inventory", exc.reason)
    if isinstance(slide.path, S3Ref):  # facts name the object, not a scratch copy
        facts = facts.model_copy(update={"source_path": str(slide.path)})
    path = ctx.facts_path(pseudonym)
    facts.save(path)
    return report.model_copy(
        update={
            "format": facts.format,
            "facts_path": str(path),
            "levels": len(facts.levels),
            "size": facts.size,
            "detail": {"fields": len(facts.fields), "associated_images": len(facts.associated)},
        }
    )


def deidentify(ctx: ReleaseContext, report: SlideReport) -> SlideReport:
    """Plan (pure, from facts + policy), then write the OME-Zarr into private staging."""
    if report.status != "ok" or report.facts_path is None:
        return report
    facts = SlideFacts.load(Path(report.facts_path))
    out = ctx.staging_path(report.pseudonym)
    conv = ctx.policies.profile.conversion
    suffix = copy_suffix(facts.format) if conv.original_copy else None
    copy = out.with_name(report.pseudonym + suffix) if suffix else None
    copied: dict[str, int] = {"original_copy_unsupported": 1} if conv.original_copy else {}
    try:
        plan = plan_deid(facts, ctx.policies.deid_for(facts.format), report.pseudonym)
        _save_plan(ctx, plan)
        threads = slide_threads(ctx.settings, usable_cores())
        opts = ConvertOptions(
            mode=conv.mode, quality=conv.quality, pyramid=conv.pyramid, threads=threads
        )
        with slide_source(facts.source_path, ctx.settings, ctx.work) as src:
            bound = Bound.of(ctx.settings)  # the child process is killed past the bound
            args = (src, plan, out, opts, copy, ctx.dicom_uid_key)
            written, size = run_bounded(bound, report.pseudonym, convert_slide, *args)
            if isinstance(size, int):
                copied = {"original_copy_bytes": size}
            elif copy is not None:
                log.warning("slide %s released without a copy: %s", report.pseudonym, size)
                copy = None
    except (TransientIOError, OSError):
        _discard(out, copy)  # e.g. disk full: no partial output stays
        raise
    except SLIDE_ERRORS as exc:
        log.warning("slide %s quarantined at de-identification: %s", report.pseudonym, exc.reason)
        _discard(out, copy)
        return quarantine(report, "deidentify", exc.reason)
    except Exception as exc:  # a decoder failing mid-slide: the file is damaged
        log.warning(
            "slide %s quarantined: conversion failed with %s; check the file with a viewer",
            report.pseudonym,
            type(exc).__name__,
        )
        _discard(out, copy)
        return quarantine(
            report, "deidentify", f"corrupt: conversion failed ({type(exc).__name__})"
        )
    return report.model_copy(
        update={
            "stage": "deidentify",
            "output_path": str(out),
            "copy_path": str(copy) if copy is not None else None,
            "plan": plan,
            "levels": len(plan.levels),
            "size": written,
            "detail": {**report.detail, **summarize(plan), **copied},
        }
    )


def convert_slide(
    src: SourceRef, plan: DeidPlan, out: Path, opts: ConvertOptions, copy: Path | None, key: bytes
) -> tuple[int, int | str | None]:
    """The bounded part of de-identification (run in the slide's child process): the OME-Zarr,
    then the original-format copy; returns (bytes written, copy size or why there is none)."""
    written = write_ome_zarr(src, plan, out, opts)
    if copy is None:
        return written, None
    try:
        return written, write_original_copy(src, plan, copy, key)
    except CopyNotPossible as exc:
        return written, exc.reason


def audit_slide(
    out: Path,
    facts: SlideFacts,
    plan: DeidPlan,
    canaries: tuple[tuple[str, str], ...],
    conversion: Conversion,
    src: SourceRef,
    copy: Path | None,
) -> tuple[AuditResult, list[Finding], list[str]]:
    """The bounded part of the audit (run in the slide's child process): the byte scan and
    the re-open of the OME-Zarr, then of the original-format copy; source reads included."""
    result = audit_output(out, facts, plan, canaries, conversion=conversion, source=src)
    findings, problems = list(result.findings), list(result.problems)
    if copy is not None:  # the original-format copy: same needles, own re-open
        needles = phi_needles(facts, plan, canaries).needles
        findings += scan_tree(copy, copy_needles(needles, plan.format))
        problems += [f"original-format copy: {p}" for p in check_copy(copy, plan, src)]
    return result, findings, problems


def _discard(out: Path, copy: Path | None) -> None:
    shutil.rmtree(out, ignore_errors=True)
    if copy is not None and copy.is_dir():
        shutil.rmtree(copy, ignore_errors=True)
    elif copy is not None:
        copy.unlink(missing_ok=True)


def audit(ctx: ReleaseContext, report: SlideReport) -> SlideReport:
    """Byte-scan the staged output for every PHI value and canary; re-open and compare."""
    if report.status != "ok" or report.output_path is None or report.facts_path is None:
        return report
    facts = SlideFacts.load(Path(report.facts_path))
    plan = report.plan or DeidPlan.model_validate_json(
        ctx.plan_path(report.pseudonym).read_text("utf-8")
    )
    conversion = ctx.policies.profile.conversion
    copy_path = Path(report.copy_path) if report.copy_path is not None else None
    try:  # the audit re-reads the source: under the same bound as its conversion
        with slide_source(facts.source_path, ctx.settings, ctx.work) as src:
            args = (Path(report.output_path), facts, plan, ctx.canaries(), conversion, src)
            result, findings, problems = run_bounded(
                Bound.of(ctx.settings), report.pseudonym, audit_slide, *args, copy_path
            )
    except SLIDE_ERRORS as exc:
        log.warning("slide %s quarantined at audit: %s", report.pseudonym, exc.reason)
        return quarantine(report, "audit", exc.reason)
    ids = FieldIds(plan, ctx.canaries())  # rule ids and locations: no source field name
    record = {
        "pseudonym": report.pseudonym,
        "needles": result.needles,
        "too_short_to_scan": ids.counts(result.skipped),
        "findings": [
            {"field": rule, "file": file}
            for rule, file in sorted({(ids(f.field), f.file) for f in findings})
        ],
        "problems": problems,
        "copy_checked": report.copy_path is not None,
    }
    audit_dir = ctx.work / "audit"
    audit_dir.mkdir(parents=True, exist_ok=True)
    (audit_dir / f"{report.pseudonym}.json").write_text(json.dumps(record, indent=1), "utf-8")
    update = {"detail": {**report.detail, "audit_needles": result.needles}, "audit": record}
    if findings:
        fields = ids.ids(f.field for f in findings)
        log.error("slide %s quarantined: audit found %s in the output", report.pseudonym, fields)
        reason = "audit: identifying value found in output (" + ", ".join(fields) + ")"
        return quarantine(report, "audit", reason).model_copy(update=update)
    if problems:
        log.error(
            "slide %s quarantined: re-open check failed: %s", report.pseudonym, "; ".join(problems)
        )
        reason = "audit: re-open check failed (" + "; ".join(problems)[:300] + ")"
        return quarantine(report, "audit", reason).model_copy(update=update)
    # burned-in text and barcodes in the pixels: the profile's `burned_in` (slidegate/burnin)
    burned = burn_in_gate(ctx, report.model_copy(update=update), facts, plan)
    if burned.status == "quarantined":
        return burned
    update.update(burn_in=burned.burn_in, detail=burned.detail)
    out, name = Path(report.output_path), f"{report.pseudonym}.ome.zarr"
    try:  # the risk model's and the ledger's inputs, computed here: the cohort holds no images
        update["signature"] = sign_output(out, ctx.policies.risk.image_linkage)
    except Exception as exc:  # unreadable: this slide only is quarantined
        log.error("slide %s quarantined: output unreadable for the risk model", report.pseudonym)
        reason = f"audit: output unreadable for the risk model ({type(exc).__name__})"
        return quarantine(report, "audit", reason).model_copy(update=update)
    # the egress gate: keys and documents searched for every needle, hashes admitted
    admitted = admit_slide(ctx, report.model_copy(update={"stage": "audit", **update}), facts, plan)
    if admitted.status == "quarantined":
        log.error("slide %s quarantined: %s", report.pseudonym, admitted.reason)
        return admitted
    # with staging on S3 both outputs leave the worker: publishing needs no shared disk
    hashes = admitted.admitted
    update["output_path"] = stage_out(out, ctx.settings, ctx.release, name, hashes)
    if report.copy_path is not None:
        copy = Path(report.copy_path)
        name = f"{report.pseudonym}.copy"
        update["copy_path"] = stage_out(copy, ctx.settings, ctx.release, name, hashes)
    return admitted.model_copy(update=update)


def failed(slide_id: str, pseudonym: str, exc: BaseException | None) -> SlideReport:
    """Report for a slide whose task failed unexpectedly (after retries)."""
    kind = type(exc).__name__ if exc is not None else "unknown error"
    reason = exc.reason if isinstance(exc, SlidegateError) else f"internal error ({kind})"
    return SlideReport(
        slide_id=slide_id, pseudonym=pseudonym, stage="failed", status="quarantined", reason=reason
    )


def _save_plan(ctx: ReleaseContext, plan: DeidPlan) -> None:
    path = ctx.plan_path(plan.pseudonym)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(plan.model_dump_json(indent=1), encoding="utf-8")


def process(ctx: ReleaseContext, slide: CohortSlide) -> SlideReport:
    """inventory -> deidentify -> audit of one slide in one call (one orchestrator task).

    A stage that quarantines returns its report and the later stages pass it through unchanged,
    exactly as when the stages ran as separate tasks; exceptions (transient I/O, disk full,
    internal errors) propagate so the caller can retry or map them to a reason."""
    return audit(ctx, deidentify(ctx, inventory(ctx, slide)))
