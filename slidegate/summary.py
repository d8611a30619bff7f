"""Human-readable summaries of a release run (markdown and table rows). PHI-free inputs only."""

from __future__ import annotations

from collections.abc import Sequence

from slidegate.models import SlideReport


def slide_rows(slides: Sequence[SlideReport]) -> list[dict[str, object]]:
    return [
        {
            "slide": s.pseudonym,
            "status": s.status,
            "stage": s.stage,
            "format": s.format or "",
            "levels": s.levels,
            "reason": s.reason or "",
        }
        for s in slides
    ]


def release_markdown(
    release: str,
    profile: str,
    slides: Sequence[SlideReport],
    *,
    target: str | None,
    figures: dict[str, float],
    blocking: Sequence[str] = (),
    warnings: Sequence[str] = (),
    dry_run: bool = False,
) -> str:
    counts = {
        st: sum(s.status == st for s in slides) for st in ("approved", "withheld", "quarantined")
    }
    state = (
        "dry run (nothing published)"
        if dry_run
        else (f"published to `{target}`" if target else "**withheld** (nothing published)")
    )
    lines = [
        f"# Release `{release}`",
        "",
        f"- profile: `{profile}`",
        f"- outcome: {state}",
        f"- slides: {len(slides)} in cohort, {counts['approved']} approved, "
        f"{counts['withheld']} withheld, {counts['quarantined']} quarantined",
    ]
    if figures:
        lines.append("- risk: " + ", ".join(f"{k} {v:.3g}" for k, v in sorted(figures.items())))
    if blocking:
        lines += ["", "## Blocking validation failures", *[f"- {b}" for b in blocking]]
    if warnings:
        lines += ["", "## Validation warnings", *[f"- {w}" for w in warnings]]
    held = [s for s in slides if s.status in ("withheld", "quarantined")]
    if held:
        lines += ["", "## Not released", "", "| slide | status | reason |", "|---|---|---|"]
        lines += [f"| `{s.pseudonym}` | {s.status} | {s.reason or ''} |" for s in held]
    return "\n".join(lines) + "\n"
