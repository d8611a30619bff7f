"""Fault handling of the release flow: publish retries with backoff, and
errors that say what happened and what to do (never a secret, never a PHI value)."""

from __future__ import annotations

import errno
from collections.abc import Sequence
from typing import Any

from slidegate.errors import SlidegateError, TransientIOError
from slidegate.models import SlideReport
from slidegate.publish.release import ObjectRecord
from slidegate.settings import Settings
from slidegate.stages.context import ReleaseContext


def backoff(settings: Settings) -> list[int]:
    """Exponential backoff: delay, 4x delay, 16x delay..."""
    return [settings.publish_retry_delay_s * 4**i for i in range(settings.publish_retries)]


def publish_options(settings: Settings) -> dict[str, Any]:
    return {"retries": settings.publish_retries, "retry_delay_seconds": backoff(settings)}


def explain(exc: BaseException | None, settings: Settings) -> BaseException | None:
    """A slide task's failure as a SlidegateError whose `reason` is publishable."""
    if isinstance(exc, SlidegateError) or exc is None:
        return exc
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return SlidegateError(
            "the private work area ran out of space while staging the slide; free space or "
            "set SLIDEGATE_WORK_DIR to a larger disk and run again",
            reason="staging area full (no space left on device)",
        )
    if isinstance(exc, OSError):
        return SlidegateError(
            f"I/O error in the work area ({type(exc).__name__}: {exc.strerror})",
            reason=f"work area I/O error ({exc.strerror or type(exc).__name__})",
        )
    return exc


def collect_uploads(
    ctx: ReleaseContext,
    approved: Sequence[SlideReport],
    futures: Sequence[Any],
    sizes: Sequence[int] | None = None,
) -> list[ObjectRecord]:
    """Wait for every upload task (one per slide, or per batch of `sizes[i]` slides); if any
    failed after its retries, fail with one clear message: nothing is released (no manifest),
    and the same command resumes."""
    records: list[ObjectRecord] = []
    failures: list[BaseException] = []
    slides = 0
    for i, fut in enumerate(futures):
        try:
            records.extend(fut.result())
        except Exception as exc:
            failures.append(exc)
            slides += sizes[i] if sizes is not None else 1
    if failures:
        what = f"{len(failures)} upload task(s) of {slides} of {len(approved)} slide(s)"
        raise publish_failed(ctx, failures[0], what)
    return records


def publish_failed(ctx: ReleaseContext, exc: BaseException, what: str) -> TransientIOError:
    reason = exc.reason if isinstance(exc, SlidegateError) else type(exc).__name__
    return TransientIOError(
        f"release {ctx.release}: publishing {what} to the target failed after "
        f"{ctx.settings.publish_retries} retries ({reason}). No manifest was written, so the "
        "release does not exist. When the storage is reachable again, run the same command: "
        "objects already uploaded with the right checksum are skipped",
        reason=f"publish failed ({reason})",
    )
