"""How reports, reasons and log lines name a field: by rule id and location, never by name.

A source field name can be source text (an Aperio description key is whatever the scanner
operator typed), so nothing published says "aperio.Jane Roe 1970-01-01". A field is named by
the policy rule that decided it (a rule key of policies/deid/*.yaml, or "default-deny") and
where it sits, reduced to structural words, their index numbers and DICOM tag numbers ("page 0
tag 270", "instance 2 (0010,0010)"); a canary by its number in the canaries file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from slidegate.models import DeidPlan

#: words a location may keep: structure, never content
STRUCTURAL = frozenset(
    {
        "page",
        "tag",
        "instance",
        "header",
        "attachment",
        "entry",
        "byte",
        "segment",
        "file",
        "frame",
        "level",
        "series",
        "image",
        "ifd",
        "subifd",
        "attribute",
        "originalmetadata",
        "mapannotation",
        "description",
        "item",
    }
)
_NUMBER = re.compile(r"^\d+$")
_DICOM_TAG = re.compile(r"^([0-9A-Fa-f]{4}),([0-9A-Fa-f]{4})$")
_LABEL_SUFFIX = re.compile(r"(\[date\])?(#\d+)?$")


def safe_location(location: str) -> str:
    """The structural words, numbers and DICOM tag numbers of a location; nothing else."""
    kept: list[str] = []
    after_word = False  # a number is kept only as the index of a structural word ("page 0")
    for token in re.split(r"[\s\[\]/:;=]+", location):
        tok = token.strip("().,")
        if tok.lower() in STRUCTURAL:
            kept.append(tok.lower())
            after_word = True
            continue
        if _NUMBER.match(tok) and after_word:
            kept.append(tok)
        elif m := _DICOM_TAG.match(tok):
            kept.append(f"({m.group(1)},{m.group(2)})".upper())
        after_word = False
    return " ".join(kept) or "field"


class FieldIds:
    """Maps the audit's needle labels (field names, canary labels) to public ids."""

    def __init__(self, plan: DeidPlan, canaries: Sequence[tuple[str, str]] = ()) -> None:
        self._by_name: dict[str, str] = {}
        for f in plan.fields:
            self._by_name.setdefault(f.name, f"{f.rule}@{safe_location(f.location)}")
        self._canaries = {label: f"canary#{i}" for i, (label, _) in enumerate(canaries, 1)}

    def __call__(self, label: str) -> str:
        name = _LABEL_SUFFIX.sub("", label)
        if name in self._by_name:
            return self._by_name[name]
        if label in self._canaries or name in self._canaries:
            return self._canaries.get(label) or self._canaries[name]
        return "default-deny@field"  # a field the plan never saw: no name is shown

    def ids(self, labels: Iterable[str]) -> list[str]:
        return sorted({self(label) for label in labels})

    def counts(self, by_label: Mapping[str, int]) -> dict[str, int]:
        out: dict[str, int] = {}
        for label, n in by_label.items():
            key = self(label)
            out[key] = out.get(key, 0) + n
        return out
