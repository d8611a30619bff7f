"""Publish batches of the release flow: one upload task per K small slides (Prefect's cost per
task run is paid once per batch), a large slide alone; each task is given its own slides and
the release context shipped once per worker (tasks/shipping.py)."""

from __future__ import annotations

from collections.abc import Sequence

from slidegate.models import SlideReport
from slidegate.spec import CohortSlide
from slidegate.stages.context import ReleaseContext

#: slides per publish task: Prefect's cost per task run (~0.05-0.3 s) is paid once per batch
PUBLISH_BATCH = 16
#: a batch stops growing at this many bytes of output: a large slide has a task of its own
PUBLISH_BATCH_BYTES = 2 * 1024**3


def publish_batches(
    reports: Sequence[SlideReport],
    size: int = PUBLISH_BATCH,
    max_bytes: int = PUBLISH_BATCH_BYTES,
) -> list[list[SlideReport]]:
    """Approved slides in cohort order, grouped: at most `size` slides and `max_bytes` of
    output per batch (a slide larger than `max_bytes` is a batch of one)."""
    batches: list[list[SlideReport]] = []
    current: list[SlideReport] = []
    total = 0
    for report in reports:
        weight = max(report.size, 0)
        if current and (len(current) >= size or total + weight > max_bytes):
            batches.append(current)
            current, total = [], 0
        current.append(report)
        total += weight
    if current:
        batches.append(current)
    return batches


def batch_slides(ctx: ReleaseContext, batch: Sequence[SlideReport]) -> list[CohortSlide]:
    by_pseudonym = {ctx.pseudonyms[s.slide_id]: s for s in ctx.slides}
    return [by_pseudonym[r.pseudonym] for r in batch]
