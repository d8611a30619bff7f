"""Publish tasks: target check, one upload task per approved slide, manifest last."""

from __future__ import annotations

from prefect import task

from slidegate.models import SlideReport
from slidegate.publish.release import ObjectRecord
from slidegate.stages import publish as stages
from slidegate.stages.cohort import CohortOutcome
from slidegate.stages.context import ReleaseContext
from tasks.common import TASK_OPTIONS, run_name


@task(name="check-target", **TASK_OPTIONS)
def check_target_task(ctx: ReleaseContext) -> str:
    return stages.check_target(ctx)


@task(name="publish-slide", task_run_name=run_name("publish"), **TASK_OPTIONS)
def publish_slide_task(ctx: ReleaseContext, report: SlideReport) -> list[ObjectRecord]:
    return stages.publish_slide(ctx, report)


@task(name="publish-manifest", **TASK_OPTIONS)
def finalize_task(
    ctx: ReleaseContext, outcome: CohortOutcome, records: list[ObjectRecord]
) -> dict[str, object]:
    return stages.finalize(ctx, outcome, records)
