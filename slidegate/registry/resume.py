"""Slide-level resume: a slide audited in an earlier run of the release is not converted again.

After a slide passes the audit, the flow records in the registry its source fingerprint, the
hash of its de-identification plan, the policies' hash, a listing digest of its staged output
and its report (without the source path and the plan: the registry stays PHI-free; both come
back from the cohort and the work area). A later run of the release reuses the report when all
of them still match; anything else converts the slide again."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from slidegate.models import DeidPlan, SlideReport
from slidegate.registry.hashes import source_fingerprint, tree_listing
from slidegate.registry.store import Registry


def _plan_hash(ctx: Any, pseudonym: str) -> str | None:
    path = Path(ctx.plan_path(pseudonym))
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def _outputs_hash(report: SlideReport) -> str | None:
    """Listing digest of the staged output (and copy); None if missing or not local."""
    parts = []
    for p in (report.output_path, report.copy_path):
        if p is None:
            continue
        if p.startswith("s3://"):
            return None
        listing = tree_listing(Path(p))
        if listing is None:
            return None
        parts.append(listing)
    return hashlib.sha256("|".join(parts).encode()).hexdigest() if parts else None


def remember(registry: Registry, ctx: Any, slide: Any, report: SlideReport) -> bool:
    """Record an audited slide for resume (one transaction). False if it cannot be resumed
    (a source or staging on S3, a quarantined slide)."""
    if report.status != "ok" or report.stage != "audit":
        return False
    source = source_fingerprint(slide.path)
    plan = _plan_hash(ctx, report.pseudonym)
    outputs = _outputs_hash(report)
    if source is None or plan is None or outputs is None:
        return False
    stored = report.model_copy(update={"slide_id": "", "plan": None})
    registry.save_slide_state(
        ctx.release,
        report.pseudonym,
        source_hash=source,
        plan_hash=plan,
        policy_hash=ctx.policy_hash,
        output_hash=outputs,
        report=stored.model_dump_json(),
    )
    return True


def resumed(state: dict[str, Any] | None, ctx: Any, slide: Any) -> SlideReport | None:
    """The stored report of the slide if its source, plan, policies and staged output are
    unchanged since it was recorded; else None (convert it again)."""
    if state is None or state["policy_hash"] != ctx.policy_hash:
        return None
    pseudonym = ctx.pseudonyms[slide.slide_id]
    if _plan_hash(ctx, pseudonym) != state["plan_hash"]:
        return None
    if source_fingerprint(slide.path) != state["source_hash"]:
        return None
    report = SlideReport.model_validate_json(state["report"])
    if report.pseudonym != pseudonym or _outputs_hash(report) != state["output_hash"]:
        return None
    if report.facts_path is None or not Path(report.facts_path).is_file():
        return None
    plan = DeidPlan.model_validate_json(Path(ctx.plan_path(pseudonym)).read_text("utf-8"))
    return report.model_copy(update={"slide_id": slide.slide_id, "plan": plan})
