"""Pure de-identification plan: SlideFacts + DeidPolicy -> DeidPlan. No I/O.

- A field with no rule is dropped (rule "default-deny", class "unknown").
- Every associated image is dropped; only pyramid levels are planned.
- A kept field is written once: the occurrence on the level-0 page wins, else the first one;
  later occurrences stay "keep" with no output key (their value is not written twice).
- Coarsened dates keep the year only; a value that does not parse is dropped
  ("coarsen-unparseable").
- A kept value must fit its rule's `value` (slidegate/deid/values.py); one that does not is
  dropped, with the rule id plus ".value" (counted as `value_refused.<class>`).
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import date

from slidegate.deid.policy import DeidPolicy
from slidegate.deid.values import value_fits
from slidegate.errors import PolicyError
from slidegate.models import DeidPlan, MetadataField, PlannedField, SlideFacts

_US_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})$")
_ISO_DATE = re.compile(
    r"^(\d{4})[:-](\d{2})[:-](\d{2})(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?.*)?$"
)


def coarsen_year(value: str) -> str | None:
    """Year of MM/DD/YY, MM/DD/YYYY, YYYY:MM:DD HH:MM:SS or YYYY-MM-DD[...]; None if invalid."""
    text = value.strip()
    if m := _US_DATE.match(text):
        month, day, year = int(m[1]), int(m[2]), int(m[3])
        if len(m[3]) == 2:
            year += 2000 if year < 70 else 1900
    elif m := _ISO_DATE.match(text):
        year, month, day = int(m[1]), int(m[2]), int(m[3])
    else:
        return None
    try:
        date(year, month, day)
    except ValueError:
        return None
    return f"{year:04d}"


def _page_of(location: str) -> int | None:
    parts = location.split()
    if len(parts) >= 2 and parts[0] == "page" and parts[1].isdigit():
        return int(parts[1])
    return None


def _writer_order(facts: SlideFacts) -> list[int]:
    """Field indexes ordered so that fields on the level-0 page come first."""
    page0 = facts.levels[0].page if facts.levels else 0
    return sorted(
        range(len(facts.fields)),
        key=lambda i: (_page_of(facts.fields[i].location) != page0, i),
    )


def _plan_field(f: MetadataField, policy: DeidPolicy) -> PlannedField:
    found = policy.rule_for(f.name)
    if found is None:
        return PlannedField(
            name=f.name,
            location=f.location,
            field_class="unknown",
            action="drop",
            rule="default-deny",
        )
    key, rule = found
    base = {"name": f.name, "location": f.location, "field_class": rule.class_}
    if rule.action == "drop":
        return PlannedField(**base, action="drop", rule=f"fields.{key}")
    out_key = rule.output_key or f.name
    if rule.action == "coarsen":
        year = coarsen_year(f.value)
        if year is None:
            return PlannedField(**base, action="drop", rule="coarsen-unparseable")
        return PlannedField(
            **base, action="coarsen", rule=f"fields.{key}", output_key=out_key, output_value=year
        )
    if rule.value is None or not value_fits(f.value, rule.value):
        return PlannedField(**base, action="drop", rule=f"fields.{key}.value")
    return PlannedField(
        **base, action="keep", rule=f"fields.{key}", output_key=out_key, output_value=f.value
    )


def plan_deid(facts: SlideFacts, policy: DeidPolicy, pseudonym: str) -> DeidPlan:
    if policy.format != facts.format:
        raise PolicyError(
            f"de-identification policy for format '{policy.format}' applied to slide "
            f"{facts.slide_id} of format '{facts.format}'; use policies/deid/{facts.format}.yaml"
        )
    planned: list[PlannedField | None] = [None] * len(facts.fields)
    written: set[str] = set()
    for i in _writer_order(facts):
        p = _plan_field(facts.fields[i], policy)
        key = p.output_key
        if key is not None:
            if key in written:  # written once: the level-0 occurrence wins
                p = p.model_copy(
                    update={"output_key": None, "output_value": None, "rule": p.rule + " (dup)"}
                )
            else:
                written.add(key)
        planned[i] = p
    levels = facts.levels if "pyramid" in policy.images.keep else ()
    return DeidPlan(
        slide_id=facts.slide_id,
        pseudonym=pseudonym,
        format=facts.format,
        levels=levels,
        dropped_images=facts.associated,
        fields=tuple(p for p in planned if p is not None),
        mpp_x=facts.mpp_x,
        mpp_y=facts.mpp_y,
    )


_PAST = {"keep": "kept", "drop": "dropped", "coarsen": "coarsened"}


def summarize(plan: DeidPlan) -> dict[str, int]:
    """Counts by action and class, e.g. {"dropped.date": 4, "images_dropped.label": 1}: no
    values, safe for reports."""
    counts: Counter[str] = Counter()
    for f in plan.fields:
        counts[f"{_PAST[f.action]}.{f.field_class}"] += 1
        if f.rule.endswith(".value"):
            counts[f"value_refused.{f.field_class}"] += 1
    for img in plan.dropped_images:
        counts[f"images_dropped.{img.kind}"] += 1
    counts["levels"] = len(plan.levels)
    return dict(sorted(counts.items()))
