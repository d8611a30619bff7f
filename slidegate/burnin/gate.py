"""The profile's `burned_in` policy applied to one slide, in the per-slide stage on the worker.

- `quarantine`: a slide with a flagged finding is quarantined (reason: counts, level, shapes);
- `review`: the slide goes on, the release goes to the steward's approval gate even under
  `approval: auto` (`needs_review`), with a cropped, blurred preview of each finding in the
  private work area (`<work>/burnin/`, never published) and a review section saying where on
  which slide (`review_lines`), not what it says;
- `report`: the slide goes on; its findings are counted in the slide report.

The needles a finding is matched against are the egress gate's for that slide: its dropped
metadata values and unknown field names, its source folder and file names, the cohort
table's identifiers and the canaries. What OCR read is never kept (slidegate.burnin.shapes).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

from slidegate.burnin.check import FLAG_SCORE, check_output, read_check_level
from slidegate.models import BurnInReport, DeidPlan, SlideFacts, SlideReport
from slidegate.stages.context import ReleaseContext

log = logging.getLogger("slidegate.stages")

#: preview crops: margin around the box (fraction of its size) and blur radius (of its height)
PREVIEW_MARGIN = 0.25
PREVIEW_BLUR = 0.12


def slide_needle_values(ctx: ReleaseContext, facts: SlideFacts, plan: DeidPlan) -> list[str]:
    """The values the egress gate searches this slide's output for (PHI: never log them)."""
    from slidegate.stages.gate import shared_needles, slide_own_needles

    return [v for _, v in [*slide_own_needles(ctx, facts, plan), *shared_needles(ctx)]]


def reason(burn: BurnInReport) -> str:
    """Publishable: counts, level and shape names only."""
    shapes = sorted({f.shape for f in burn.findings if f.score >= FLAG_SCORE})
    needle = sum(f.needle for f in burn.findings)
    known = f", {needle} matching the slide's own values" if needle else ""
    return (
        f"burned-in: {burn.flagged} text or barcode finding(s) on level {burn.level}{known} "
        f"({', '.join(shapes)})"
    )


def burn_in_gate(
    ctx: ReleaseContext, report: SlideReport, facts: SlideFacts, plan: DeidPlan
) -> SlideReport:
    """Run the check on the staged output of an audited slide and apply the profile's policy.
    Returns the report with `burn_in` set, quarantined (stage "burn-in") under `quarantine`."""
    assert report.output_path is not None
    action = ctx.policies.profile.burned_in
    out = Path(report.output_path)
    burn = check_output(out, slide_needle_values(ctx, facts, plan))
    burn = burn.model_copy(update={"action": action})
    detail = {**report.detail, "burn_in_findings": burn.flagged}
    checked = report.model_copy(update={"burn_in": burn, "detail": detail})
    if burn.flagged == 0:
        return checked
    why = reason(burn)
    if action == "quarantine":
        log.warning("slide %s quarantined: %s", report.pseudonym, why)
        quarantined = {"stage": "burn-in", "status": "quarantined", "reason": why}
        return checked.model_copy(update=quarantined)
    if action == "review":
        write_previews(out, burn, ctx.work / "burnin", report.pseudonym)
        log.warning("slide %s goes to the steward: %s", report.pseudonym, why)
    else:
        log.info("slide %s: %s (reported)", report.pseudonym, why)
    return checked


def write_previews(out: Path, burn: BurnInReport, folder: Path, pseudonym: str) -> list[Path]:
    """A cropped, blurred PNG of each flagged finding, in the private work area only: enough
    for a steward to see that there is writing there, not to read it."""
    from PIL import Image, ImageFilter

    _, rgb = read_check_level(out)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, f in enumerate(x for x in burn.findings if x.score >= FLAG_SCORE):
        x0, y0, x1, y1 = f.box
        mx, my = round((x1 - x0) * PREVIEW_MARGIN), round((y1 - y0) * PREVIEW_MARGIN)
        crop = rgb[max(0, y0 - my) : y1 + my, max(0, x0 - mx) : x1 + mx]
        if crop.size == 0:
            continue
        radius = max(2.0, PREVIEW_BLUR * min(y1 - y0, x1 - x0))
        img = Image.fromarray(crop).filter(ImageFilter.GaussianBlur(radius))
        path = folder / f"{pseudonym}-{i + 1}.png"
        img.save(path)
        paths.append(path)
    return paths


def needs_review(slides: Iterable[SlideReport]) -> list[str]:
    """Pseudonyms of the slides the steward must look at (flagged under `review`)."""
    return sorted(
        s.pseudonym
        for s in slides
        if s.burn_in is not None
        and s.burn_in.action == "review"
        and s.burn_in.flagged
        and s.status != "quarantined"
    )


def review_lines(slides: Sequence[SlideReport]) -> list[str]:
    """Markdown for the steward's review artifact: where the findings are, never what."""
    flagged = [s for s in slides if s.pseudonym in set(needs_review(slides))]
    if not flagged:
        return []
    lines = [
        "",
        "## Burned-in text or barcodes (profile `burned_in: review`)",
        "",
        "Blurred previews are in the private work area, `burnin/<pseudonym>-<n>.png`.",
        "",
        "| slide | level (h x w) | kind | shape | score | own value | box x0,y0,x1,y1 |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in flagged:
        assert s.burn_in is not None
        h, w = s.burn_in.shape
        for f in s.burn_in.findings:
            if f.score < FLAG_SCORE:
                continue
            box = ",".join(str(v) for v in f.box)
            lines.append(
                f"| {s.pseudonym} | {s.burn_in.level} ({h} x {w}) | {f.kind} | {f.shape} | "
                f"{f.score:.2f} | {'yes' if f.needle else 'no'} | {box} |"
            )
    return lines
