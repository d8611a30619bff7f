"""Run the slide stages and the cohort decision directly (no Prefect, no Dask)."""

from __future__ import annotations

from pathlib import Path

from slidegate.settings import Settings
from slidegate.stages.cohort import CohortOutcome, decide_cohort
from slidegate.stages.context import ReleaseContext, prepare_release
from slidegate.stages.slide import audit, deidentify, inventory


def write_spec(root: Path, release: str, profile: str, cohort: str = "cohort.csv") -> Path:
    spec = root / f"{release}.yaml"
    spec.write_text(
        f"release: {release}\nsource: slides\ncohort: {cohort}\nprofile: {profile}\n"
        f"target: out-{release}\ncanaries: canaries.json\n",
        encoding="utf-8",
    )
    return spec


def run_stages(
    spec: Path, work: Path, policies_dir: Path | None = None
) -> tuple[ReleaseContext, CohortOutcome]:
    settings = Settings(work_dir=work)
    if policies_dir is not None:
        settings = Settings(work_dir=work, policies_dir=policies_dir)
    ctx = prepare_release(spec, settings)
    reports = [audit(ctx, deidentify(ctx, inventory(ctx, s))) for s in ctx.slides]
    return ctx, decide_cohort(ctx, reports)
