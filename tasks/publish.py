"""Publish tasks: target check, upload tasks (one per slide, or per batch of slides), manifest
last."""

from __future__ import annotations

from prefect import task

from slidegate.models import SlideReport
from slidegate.publish.release import ObjectRecord
from slidegate.spec import CohortSlide
from slidegate.stages import publish as stages
from slidegate.stages.cohort import CohortOutcome
from slidegate.stages.context import ReleaseContext
from tasks.common import TASK_OPTIONS
from tasks.shipping import Shared


@task(name="check-target", **TASK_OPTIONS)
def check_target_task(ctx: ReleaseContext) -> str:
    return stages.check_target(ctx)


def _batch_name() -> str:
    from prefect.runtime import task_run

    reports = task_run.parameters.get("reports") or []
    first = getattr(reports[0], "pseudonym", "") if reports else ""
    more = f"-and-{len(reports) - 1}" if len(reports) > 1 else ""
    return f"publish-{first}{more}" if first else "publish"


@task(name="publish-slides", task_run_name=_batch_name, **TASK_OPTIONS)
def publish_batch_task(
    release: Shared, slides: list[CohortSlide], reports: list[SlideReport]
) -> list[ObjectRecord]:
    """One task run per batch of approved slides (flows/batches.py); names carry pseudonyms."""
    ctx = release.context(slides, [r.pseudonym for r in reports])
    return stages.publish_slides(ctx, reports)


@task(name="publish-manifest", **TASK_OPTIONS)
def finalize_task(
    ctx: ReleaseContext, outcome: CohortOutcome, records: list[ObjectRecord]
) -> dict[str, object]:
    return stages.finalize(ctx, outcome, records)
