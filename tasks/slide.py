"""The per-slide task: inventory -> de-identify + convert -> audit in one task run."""

from __future__ import annotations

from prefect import task

from slidegate.models import SlideReport
from slidegate.spec import CohortSlide
from slidegate.stages import slide as stages
from slidegate.stages.context import ReleaseContext
from tasks.common import TASK_OPTIONS, run_name


@task(name="process-slide", task_run_name=run_name("slide"), **TASK_OPTIONS)
def process_slide_task(ctx: ReleaseContext, slide: CohortSlide, pseudonym: str) -> SlideReport:
    """One task run per slide: the stages share the task's process, so the context is shipped
    to the worker once and the orchestrator's per-task cost is paid once per slide."""
    return stages.process(ctx, slide)
