"""Per-slide tasks: inventory, de-identify + convert, audit."""

from __future__ import annotations

from prefect import task

from slidegate.models import SlideReport
from slidegate.spec import CohortSlide
from slidegate.stages import slide as stages
from slidegate.stages.context import ReleaseContext
from tasks.common import TASK_OPTIONS, run_name


@task(name="inventory", task_run_name=run_name("inventory"), **TASK_OPTIONS)
def inventory_task(ctx: ReleaseContext, slide: CohortSlide, pseudonym: str) -> SlideReport:
    return stages.inventory(ctx, slide)


@task(name="deidentify", task_run_name=run_name("deidentify"), **TASK_OPTIONS)
def deidentify_task(ctx: ReleaseContext, report: SlideReport) -> SlideReport:
    return stages.deidentify(ctx, report)


@task(name="audit", task_run_name=run_name("audit"), **TASK_OPTIONS)
def audit_task(ctx: ReleaseContext, report: SlideReport) -> SlideReport:
    return stages.audit(ctx, report)
