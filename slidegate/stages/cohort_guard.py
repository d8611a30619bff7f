"""One slide cannot sink the cohort stage (issue 13 item 3).

The cohort-wide steps (image features, fingerprints, risk inputs, the risk model, the validation
rows) each take every audited slide at once, so one slide's bad input (a feature vector of
another length, a NaN, an output whose metadata cannot be read, a value a suite cannot handle)
would raise for all of them. Here each slide's inputs are checked on their own before the
cohort-wide step runs, and when a cohort-wide step still raises, each slide is run through it
alone: the slides that fail alone are withheld with the step and the exception class (never its
message: it may quote a value), the step runs again without them. An error that no single slide
explains, or a project error (a policy, a spec, storage), still stops the release.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from slidegate.errors import SlidegateError, TransientIOError
from slidegate.models import SlideReport

log = logging.getLogger("slidegate.stages")

T = TypeVar("T")
#: a slide's metadata rows in the released output: (slide, key, value)
Rows = list[tuple[str, str, str]]


@dataclass
class Exclusions:
    """Slides the cohort stage withholds, each with the step that failed and why."""

    reasons: dict[str, tuple[str, str]] = field(default_factory=dict)  # slide -> (stage, why)

    def add(self, slide: str, stage: str, reason: str) -> None:
        if slide not in self.reasons:
            log.warning("slide %s withheld at %s: %s", slide, stage, reason)
            self.reasons[slide] = (stage, reason)

    def __contains__(self, slide: object) -> bool:
        return slide in self.reasons

    def keep(self, slides: Iterable[str]) -> list[str]:
        return [s for s in slides if s not in self.reasons]


def _kind(exc: BaseException) -> str:
    return exc.reason if isinstance(exc, SlidegateError) else type(exc).__name__


def check_signatures(reports: Mapping[str, SlideReport], out: Exclusions) -> None:
    """A signature's features must be finite and as long as the cohort's (the most common
    length): a stale report of another extractor, or a NaN, is withheld alone."""
    lengths = Counter(
        len(r.signature.features) for r in reports.values() if r.signature is not None
    )
    if not lengths:
        return
    usual = max(lengths.items(), key=lambda kv: (kv[1], kv[0]))[0]
    for slide, rep in sorted(reports.items()):
        sig = rep.signature
        if sig is None:
            continue
        if len(sig.features) != usual:
            out.add(
                slide,
                "features",
                f"features: image features not comparable with the cohort's "
                f"({len(sig.features)} values, the cohort's have {usual}); re-run the slide",
            )
        elif not np.all(np.isfinite(np.asarray(sig.features, np.float64))):
            out.add(slide, "features", "features: image features not finite; re-run the slide")


def per_slide(
    slides: Iterable[str], read: Callable[[str], T], stage: str, what: str, out: Exclusions
) -> dict[str, T]:
    """`read(slide)` for each slide; a slide whose read raises is withheld alone."""
    got: dict[str, T] = {}
    for slide in slides:
        try:
            got[slide] = read(slide)
        except TransientIOError:  # storage, not the slide: the flow retries
            raise
        except Exception as exc:  # one slide's input: that slide only
            out.add(slide, stage, f"{stage}: {what} ({_kind(exc)})")
    return got


def isolate(
    slides: list[str], run: Callable[[list[str]], Any], stage: str, out: Exclusions
) -> list[str]:
    """`run(slides)` raised an error one slide may explain: run each slide alone; those that
    raise alone are withheld. Returns them; empty when no single slide explains the error
    (none fails alone, or every one of several does: the step itself is broken)."""
    failed: dict[str, str] = {}
    for slide in slides:
        try:
            run([slide])
        except Exception as exc:
            if not stage_error(exc):
                raise
            failed[slide] = _kind(exc)
    if len(slides) > 1 and len(failed) == len(slides):
        return []
    for slide, kind in failed.items():
        out.add(slide, stage, f"{stage}: this slide's {stage} inputs failed ({kind})")
    return list(failed)


def stage_error(exc: BaseException) -> bool:
    """An exception a cohort-wide step may blame on one slide (not a policy, spec or storage
    error: those stop the release as they always did)."""
    return not isinstance(exc, SlidegateError | KeyboardInterrupt | SystemExit | MemoryError)


def guarded(
    slides: list[str], run: Callable[[list[str]], T], stage: str, out: Exclusions
) -> tuple[T, list[str]]:
    """`run(slides)`; if it raises an error one slide may explain, the slides that fail alone
    are withheld and it runs once more without them. Returns the result and the slides run."""
    try:
        return run(slides), slides
    except Exception as exc:
        if not stage_error(exc):
            raise
        log.warning("cohort %s failed (%s): running each slide alone", stage, type(exc).__name__)
        if not isolate(slides, run, stage, out):
            raise
    rest = out.keep(slides)
    return run(rest), rest
