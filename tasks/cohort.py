"""Cohort task: risk, per-slide decisions, validation, reports."""

from __future__ import annotations

from prefect import task

from slidegate.models import SlideReport
from slidegate.stages.cohort import CohortOutcome, decide_cohort
from slidegate.stages.context import ReleaseContext
from tasks.common import TASK_OPTIONS


@task(name="risk-and-validation", **TASK_OPTIONS)
def decide_task(ctx: ReleaseContext, reports: list[SlideReport]) -> CohortOutcome:
    return decide_cohort(ctx, reports)
