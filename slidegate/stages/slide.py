"""Per-slide stages: inventory, de-identify + convert, audit."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from slidegate.audit import audit_output
from slidegate.convert.ome_zarr import ConvertOptions, write_ome_zarr
from slidegate.deid.plan import plan_deid, summarize
from slidegate.errors import (
    CorruptSlideError,
    PolicyError,
    PolicyViolation,
    SlidegateError,
    TransientIOError,
    UnsupportedSlideError,
)
from slidegate.formats import read_facts
from slidegate.models import DeidPlan, SlideFacts, SlideReport
from slidegate.spec import CohortSlide
from slidegate.stages.context import ReleaseContext

log = logging.getLogger("slidegate.stages")

#: errors that quarantine one slide while the rest of the cohort goes on
SLIDE_ERRORS = (CorruptSlideError, UnsupportedSlideError, PolicyViolation, PolicyError)


def quarantine(report: SlideReport, stage: str, reason: str) -> SlideReport:
    return report.model_copy(update={"stage": stage, "status": "quarantined", "reason": reason})


def inventory(ctx: ReleaseContext, slide: CohortSlide) -> SlideReport:
    pseudonym = ctx.pseudonyms[slide.slide_id]
    report = SlideReport(
        slide_id=slide.slide_id, pseudonym=pseudonym, stage="inventory", status="ok"
    )
    try:
        facts = read_facts(slide.path, slide.slide_id)
    except SLIDE_ERRORS as exc:
        log.warning("slide %s quarantined at inventory: %s", slide.slide_id, exc)
        return quarantine(report, "inventory", exc.reason)
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
    try:
        plan = plan_deid(facts, ctx.policies.deid_for(facts.format), report.pseudonym)
        _save_plan(ctx, plan)
        conv = ctx.policies.profile.conversion
        opts = ConvertOptions(mode=conv.mode, quality=conv.quality, pyramid=conv.pyramid)
        written = write_ome_zarr(Path(facts.source_path), plan, out, opts)
    except (TransientIOError, OSError):
        shutil.rmtree(out, ignore_errors=True)  # e.g. disk full: no partial output stays
        raise
    except SLIDE_ERRORS as exc:
        log.warning("slide %s quarantined at de-identification: %s", report.slide_id, exc)
        shutil.rmtree(out, ignore_errors=True)
        return quarantine(report, "deidentify", exc.reason)
    except Exception as exc:  # a decoder failing mid-slide: the file is damaged
        log.warning(
            "slide %s quarantined: conversion failed with %s; check the file with a viewer",
            report.slide_id,
            type(exc).__name__,
        )
        shutil.rmtree(out, ignore_errors=True)
        return quarantine(
            report, "deidentify", f"corrupt: conversion failed ({type(exc).__name__})"
        )
    return report.model_copy(
        update={
            "stage": "deidentify",
            "output_path": str(out),
            "levels": len(plan.levels),
            "size": written,
            "detail": {**report.detail, **summarize(plan)},
        }
    )


def audit(ctx: ReleaseContext, report: SlideReport) -> SlideReport:
    """Byte-scan the staged output for every PHI value and canary; re-open and compare."""
    if report.status != "ok" or report.output_path is None or report.facts_path is None:
        return report
    facts = SlideFacts.load(Path(report.facts_path))
    plan = DeidPlan.model_validate_json(ctx.plan_path(report.pseudonym).read_text("utf-8"))
    result = audit_output(Path(report.output_path), facts, plan, ctx.canaries())
    record = {
        "pseudonym": report.pseudonym,
        "needles": result.needles,
        "too_short_to_scan": result.skipped,
        "findings": [f.model_dump() for f in result.findings],
        "problems": list(result.problems),
    }
    audit_dir = ctx.work / "audit"
    audit_dir.mkdir(parents=True, exist_ok=True)
    (audit_dir / f"{report.pseudonym}.json").write_text(json.dumps(record, indent=1), "utf-8")
    detail = {**report.detail, "audit_needles": result.needles}
    if result.findings:
        fields = sorted({f.field for f in result.findings})
        log.error("slide %s quarantined: audit found %s in the output", report.slide_id, fields)
        reason = "audit: identifying value found in output (" + ", ".join(fields) + ")"
        return quarantine(report, "audit", reason).model_copy(update={"detail": detail})
    if result.problems:
        log.error(
            "slide %s quarantined: re-open check failed: %s",
            report.slide_id,
            "; ".join(result.problems),
        )
        reason = "audit: re-open check failed (" + "; ".join(result.problems)[:300] + ")"
        return quarantine(report, "audit", reason).model_copy(update={"detail": detail})
    return report.model_copy(update={"stage": "audit", "detail": detail})


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
