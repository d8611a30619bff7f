"""Cohort stages: build the released table, score risk, decide per slide, validate.

Risk is scored on the generalised, pseudonymised table of the slides that passed the audit;
the table then validated is exactly the one that would be published.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import pandas as pd

from slidegate.cohort import build_release_table, read_cohort
from slidegate.collection import published_risk_rows
from slidegate.errors import PolicyViolation
from slidegate.ledger import Ledger
from slidegate.models import Frozen, SlideReport
from slidegate.risk.pipeline import RiskStage, score_release
from slidegate.settings import Settings
from slidegate.stages.cohort_guard import (
    Exclusions,
    Rows,
    check_signatures,
    guarded,
    isolate,
    per_slide,
    stage_error,
)
from slidegate.stages.context import ReleaseContext
from slidegate.staging import open_staged
from slidegate.validate.run import ValidationOutcome, validate_tables

log = logging.getLogger("slidegate.stages")


class CohortOutcome(Frozen):
    """PHI-free: pseudonyms, statuses, reasons and figures only."""

    slides: tuple[SlideReport, ...]  # final status: approved / withheld / quarantined
    risk_passed: bool
    validation_passed: bool
    blocking_failures: tuple[str, ...]
    warnings: tuple[str, ...]
    figures: dict[str, float]
    cohort_csv: str  # private path of the table to publish
    reports_dir: str

    @property
    def approved(self) -> tuple[SlideReport, ...]:
        return tuple(s for s in self.slides if s.status == "approved")

    @property
    def releasable(self) -> bool:
        return self.risk_passed and self.validation_passed and bool(self.approved)


def decide_cohort(ctx: ReleaseContext, reports: Sequence[SlideReport]) -> CohortOutcome:
    source = read_cohort(ctx.cohort_path)
    released = build_release_table(source, ctx.policies.metadata, ctx.pseudonymizer())
    table = released.table
    by_pseudonym = {r.pseudonym: r for r in reports}
    slide_col = "slide"
    audited = {p for p, r in by_pseudonym.items() if r.status == "ok"}
    candidates = table[table[slide_col].isin(audited)].reset_index(drop=True)

    # each slide's own inputs first: one slide's bad input withholds that slide alone
    excluded = Exclusions()
    check_signatures({s: by_pseudonym[s] for s in candidates[slide_col]}, excluded)
    meta_rows = per_slide(
        [s for s in candidates[slide_col] if s not in excluded],
        partial(_metadata_rows, reports=by_pseudonym, settings=ctx.settings),
        "validation",
        "output metadata unreadable",
        excluded,
    )
    # a collection export is scored on the whole collection so far (slidegate/collection.py)
    published = published_risk_rows(ctx.work, ctx.policies.metadata, ctx.pseudonymizer())
    patient_src = next(
        (c for c, r in ctx.policies.metadata.columns.items() if r.kind == "p"), "patient"
    )
    patient_ids = source.get(patient_src, table[slide_col]).astype(str)
    staged = partial(open_staged, settings=ctx.settings)  # staging on S3
    ledger = Ledger.open(ctx.settings)  # the registry's ledger

    def score(slides: list[str]) -> RiskStage:
        mine = candidates[candidates[slide_col].isin(set(slides))]
        scored = mine if published is None else pd.concat([mine, published])
        return score_release(
            scored.reset_index(drop=True),
            by_pseudonym,
            ctx.policies,
            slides,
            ledger=ledger,
            release=ctx.release,
            key_id=ctx.key_id,
            patient_ids=dict(zip(table[slide_col], patient_ids, strict=True)),
            source_columns=list(source.columns),
            open_output=staged if ctx.settings.staging_url else None,
        )

    def validate(slides: list[str], risk: RiskStage, docs: Path | None) -> ValidationOutcome:
        out = risk.released_table(slide_col)
        rows = [row for s in slides for row in meta_rows.get(s, [])]
        return validate_tables(
            out[out[slide_col].isin(set(slides))].reset_index(drop=True),
            pd.DataFrame(rows, columns=["slide", "key", "value"]),
            ctx.policies.metadata,
            source_columns=[str(c) for c in source.columns],
            docs_dir=docs,
            run_name=ctx.release,  # with a fixed run time: identical releases, identical docs
        )

    slides = excluded.keep(candidates[slide_col])
    for _ in range(3):  # a slide withheld by validation: the risk is scored again without it
        risk, slides = guarded(slides, score, "risk", excluded)
        approved = [s for s in slides if risk.decision(s)[0] == "approved"]

        def alone(one: list[str], risk: RiskStage = risk) -> object:
            return validate(one, risk, None)  # a lone slide's run writes no Data Docs

        try:
            validation = validate(approved, risk, ctx.reports_dir / "data-docs")
            break
        except Exception as exc:
            if not stage_error(exc) or not isolate(approved, alone, "validation", excluded):
                raise
        slides = excluded.keep(slides)
    else:
        raise PolicyViolation(
            f"release {ctx.release}: validation kept failing after withholding slides",
            reason="validation: failed for the cohort",
        )

    final: list[SlideReport] = []
    for pseudo in candidates[slide_col]:
        if pseudo in excluded:
            stage, reason = excluded.reasons[pseudo]
            final.append(_set(by_pseudonym[pseudo], "withheld", reason, stage))
            continue
        status, why = risk.decision(pseudo)
        final.append(_set(by_pseudonym[pseudo], status, why))
    final.extend(r for r in reports if r.status != "ok")
    final.sort(key=lambda r: r.pseudonym)
    approved_set = {r.pseudonym for r in final if r.status == "approved"}
    out_table = risk.released_table(slide_col)
    out_table = out_table[out_table[slide_col].isin(approved_set)].reset_index(drop=True)

    reports_dir = ctx.reports_dir
    reports_dir.mkdir(parents=True, exist_ok=True)
    cohort_csv = ctx.work / "release" / "cohort.csv"
    cohort_csv.parent.mkdir(parents=True, exist_ok=True)
    out_table.to_csv(cohort_csv, index=False)
    risk.write_reports(reports_dir, ctx.work)
    _write_json(reports_dir / "validation.json", validation.results)
    _write_json(reports_dir / "slides.json", [_public(r) for r in final])
    _write_json(reports_dir / "audit.json", _audit_summary(final))
    log.info(
        "cohort decided: %d approved, %d withheld, %d quarantined; validation %s",
        len(approved_set),
        sum(r.status == "withheld" for r in final),
        sum(r.status == "quarantined" for r in final),
        "passed" if validation.passed else "FAILED",
    )
    return CohortOutcome(
        slides=tuple(final),
        risk_passed=risk.passed,
        validation_passed=validation.passed,
        blocking_failures=tuple(validation.blocking_failures),
        warnings=tuple(validation.warnings),
        figures=risk.figures(),
        cohort_csv=str(cohort_csv),
        reports_dir=str(reports_dir),
    )


def metadata_table(slides: Sequence[SlideReport], settings: Settings) -> pd.DataFrame:
    """Every metadata key/value the staged outputs carry (local or on S3 staging), as (slide,
    key, value) rows."""
    rows = [row for rep in slides for row in output_metadata(rep, settings)]
    return pd.DataFrame(rows, columns=["slide", "key", "value"])


def output_metadata(rep: SlideReport, settings: Settings) -> Rows:
    """The (slide, key, value) metadata rows of one staged output."""
    if rep.output_path is None:
        return []
    attrs = open_staged(rep.output_path, settings).attrs.asdict()
    section = attrs.get("slidegate")
    meta = section.get("metadata", {}) if isinstance(section, dict) else {}
    if not isinstance(meta, dict):
        raise TypeError("metadata section is not a mapping")
    return [(rep.pseudonym, str(k), str(v)) for k, v in meta.items()]


def _metadata_rows(slide: str, reports: dict[str, SlideReport], settings: Settings) -> Rows:
    return output_metadata(reports[slide], settings)


def _set(rep: SlideReport, status: str, reason: str | None, stage: str = "decide") -> SlideReport:
    return rep.model_copy(update={"status": status, "reason": reason, "stage": stage})


def _public(rep: SlideReport) -> dict[str, object]:
    """What a release may say about a slide: no source path, no private locations."""
    return {
        "slide": rep.pseudonym,
        "status": rep.status,
        "stage": rep.stage,
        "reason": rep.reason,
        "format": rep.format,
        "levels": rep.levels,
        "counts": dict(rep.detail),  # fields and images found, dropped, kept: counts only
    }


def _audit_summary(final: Sequence[SlideReport]) -> list[dict[str, object]]:
    """The audit record each slide's task carried back (workers may not share a disk)."""
    return [{**rep.audit, "status": rep.status} for rep in final if rep.audit is not None]


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=1, sort_keys=True, default=str), encoding="utf-8")
