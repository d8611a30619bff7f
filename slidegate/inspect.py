"""`slidegate inspect SLIDE`: what a slide holds and what the policy would do with each part.

The inventory (`read_facts`) and the de-identification plan (`plan_deid`, the same pure function
the release runs) are combined into one view: format, pyramid levels, associated images (never
published) and every metadata field with its location, the action that applies (keep / drop /
coarsen) and the rule that decided. A value is shown only when the policy keeps it; every other
value is masked (`•••• (12 chars)`), a coarsened one shows only what would be published. Works
for every format `read_facts` supports; a format the profile has no policy for is shown with
the default-deny outcome (everything dropped).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from slidegate.bounded import Bound, run_bounded
from slidegate.deid.plan import plan_deid
from slidegate.deid.policy import DeidPolicy
from slidegate.formats import read_facts
from slidegate.models import AssociatedImage, LevelFacts, SlideFacts
from slidegate.profile import Policies
from slidegate.settings import Settings

MASK = "••••"
MAX_SHOWN = 80  # kept values longer than this are cut in the listing
MAX_COLUMN = 64  # field names and locations longer than this are shortened in the middle


@dataclass(frozen=True)
class FieldRow:
    name: str
    location: str
    action: str  # keep | drop | coarsen
    rule: str
    field_class: str
    shown: str  # the value if kept, else a mask (never a dropped value)


@dataclass(frozen=True)
class Inspection:
    format: str
    profile: str
    policy: str  # the deid policy name, or a note that there is none
    size: int
    mpp: tuple[float | None, float | None]  # (x, y) micrometres per pixel
    levels: tuple[LevelFacts, ...]
    associated: tuple[AssociatedImage, ...]
    rows: tuple[FieldRow, ...]


def mask(value: str) -> str:
    n = len(value)
    return f"{MASK} ({n} char{'s' if n != 1 else ''})"


def _shown(value: str, action: str, output: str | None) -> str:
    if action == "keep":
        flat = " ".join(value.split())
        return flat if len(flat) <= MAX_SHOWN else flat[: MAX_SHOWN - 1] + "…"
    if action == "coarsen" and output is not None:
        return f"{mask(value)} -> {output}"
    return mask(value)


def inspect_facts(facts: SlideFacts, policies: Policies) -> Inspection:
    """Pure: facts + the profile's policy for their format -> the view (values masked)."""
    name = policies.profile.deid.get(facts.format)
    policy = policies.deid.get(facts.format) or DeidPolicy(format=facts.format)
    plan = plan_deid(facts, policy, "inspect")
    rows = []
    for f, p in zip(facts.fields, plan.fields, strict=True):
        rows.append(
            FieldRow(
                name=f.name,
                location=f.location,
                action=p.action,
                rule=p.rule,
                field_class=p.field_class,
                shown=_shown(f.value, p.action, p.output_value),
            )
        )
    return Inspection(
        format=facts.format,
        profile=policies.name,
        policy=f"policies/deid/{name}.yaml" if name else "none in this profile: default-deny",
        size=facts.size,
        mpp=(facts.mpp_x, facts.mpp_y),
        levels=facts.levels,
        associated=facts.associated,
        rows=tuple(rows),
    )


def inspect_slide(path: Path, policies: Policies, bound: Bound | None = None) -> Inspection:
    """Inventory `path` (file or folder, read-only) and apply the profile's policy. The file is
    read in a child process under `bound` (default: the default per-slide bound), as in a
    release: a damaged or hostile file cannot hang or exhaust the steward's machine."""
    path = Path(path)
    bound = Bound.of(Settings()) if bound is None else bound
    # the bound's errors name the slide: "the inspected file", never its (possibly identifying)
    # file name
    facts = run_bounded(bound, "(the inspected file)", read_facts, path, path.name)
    return inspect_facts(facts, policies)


def _short(text: str, limit: int = MAX_COLUMN) -> str:
    if len(text) <= limit:
        return text
    half = (limit - 1) // 2
    return text[:half] + "…" + text[len(text) - (limit - 1 - half) :]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return ["  " + fmt.format(*header).rstrip()] + ["  " + fmt.format(*r).rstrip() for r in rows]


def render(view: Inspection) -> str:
    """Plain-text report; contains no dropped or coarsened source value."""
    mpp_x, mpp_y = view.mpp
    mpp = f"{mpp_x:g} x {mpp_y:g} um/px" if mpp_x and mpp_y else "unknown"
    lines = [
        f"format: {view.format}   size: {view.size} bytes   pixel size: {mpp}",
        f"profile: {view.profile}   de-identification policy: {view.policy}",
        "",
        f"pyramid levels ({len(view.levels)}), written to the release:",
    ]
    lines += _table(
        ["level", "width x height", "samples", "dtype", "tile", "compression", "downsample"],
        [
            [
                str(lv.index),
                f"{lv.width} x {lv.height}",
                str(lv.samples),
                lv.dtype,
                f"{lv.tile_width}x{lv.tile_height}" if lv.tile_width else "strips",
                lv.compression,
                f"{lv.downsample:g}",
            ]
            for lv in view.levels
        ],
    )
    lines += ["", f"associated images ({len(view.associated)}), never published:"]
    if view.associated:
        lines += _table(
            ["kind", "where", "width x height", "compression"],
            [
                [a.kind, str(a.page), f"{a.width} x {a.height}", a.compression]
                for a in view.associated
            ],
        )
    else:
        lines.append("  none")
    counts = {a: sum(r.action == a for r in view.rows) for a in ("keep", "coarsen", "drop")}
    lines += [
        "",
        f"metadata fields ({len(view.rows)}: {counts['keep']} kept, {counts['coarsen']} "
        f"coarsened, {counts['drop']} dropped); values shown only where the policy keeps them:",
    ]
    lines += _table(
        ["field", "location", "action", "rule", "value"],
        [
            [_short(r.name), _short(r.location), r.action, _short(r.rule), r.shown]
            for r in view.rows
        ],
    )
    return "\n".join(lines)
