"""The per-slide task: inventory -> de-identify + convert -> audit in one task run."""

from __future__ import annotations

from prefect import task

from slidegate.models import SlideReport
from slidegate.spec import CohortSlide
from slidegate.stages import slide as stages
from tasks.common import TASK_OPTIONS, run_name
from tasks.shipping import Shared


@task(name="process-slide", task_run_name=run_name("slide"), **TASK_OPTIONS)
def process_slide_task(release: Shared, slide: CohortSlide, pseudonym: str) -> SlideReport:
    """One task run per slide: the stages share the task's process. The task's inputs are its
    own slide and pseudonym plus the release context, shipped once per worker (`Shared`)."""
    return stages.process(release.context([slide], [pseudonym]), slide)
