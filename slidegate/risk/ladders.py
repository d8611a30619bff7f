"""Generalisation hierarchies as data (policies/risk/hierarchies.yaml): ladders of levels.

Each hierarchy is a ladder from the most detailed level to "*" (suppressed), e.g. age:
exact -> band5 -> band10 -> band20 -> *. `Ladder.generalise(value, level)` maps a value given at
any lower level up to `level`, so the released table (already generalised by the metadata policy)
can be generalised further during mitigation. Unparseable values raise GeneralisationError,
whose message never holds the value.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from slidegate.policy import StrictModel, load_yaml_model
from slidegate.risk.hierarchy import GeneralisationError

STAR = "*"
_BAND = re.compile(r"([0-9]{1,3})(?:-([0-9]{1,3}))?")
_TOP = re.compile(r"([0-9]{1,3})\+")
_DATE = re.compile(r"([0-9]{4})(?:-([0-9]{2}))?(?:-([0-9]{2}))?")
_YEARS = re.compile(r"([0-9]{4})-([0-9]{4})")
_ICD = re.compile(r"([A-Z])([0-9]{2})(?:\.[0-9A-Z]{1,4})?")
_RANGE = re.compile(r"([A-Z][0-9]{2})-([A-Z][0-9]{2})")


class Ladder(StrictModel):
    kind: Literal["bands", "dates", "icd10", "map"]
    levels: list[str] = Field(min_length=2)
    top_code: int | None = None
    blocks: list[str] = Field(default_factory=list)
    chapters: list[str] = Field(default_factory=list)
    map: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _ends_with_star(self) -> Ladder:
        if self.levels[-1] != STAR or len(set(self.levels)) != len(self.levels):
            raise ValueError("levels must be distinct and end with '*'")
        for r in (*self.blocks, *self.chapters):
            if not _RANGE.fullmatch(r):
                raise ValueError("blocks and chapters are ranges like C15-C26")
        return self

    def index(self, level: str) -> int:
        try:
            return self.levels.index(level)
        except ValueError:
            raise GeneralisationError(f"unknown level; use one of {self.levels}") from None

    def generalise(self, value: str, level: str) -> str:
        """`value` (at any level up to `level`) mapped to `level`; "" stays "" (missing)."""
        text = value.strip()
        if level == STAR:
            return STAR
        if text == "" or text == STAR:
            return text
        return getattr(self, f"_{self.kind}")(text, level)

    def _bands(self, text: str, level: str) -> str:
        if _TOP.fullmatch(text):
            return text
        m = _BAND.fullmatch(text)
        if not m:
            raise GeneralisationError("expected an age or an age band like 60-69")
        low = int(m.group(1))
        if self.top_code is not None and low >= self.top_code:
            return f"{self.top_code}+"
        if level == "exact":
            if m.group(2) is not None:
                raise GeneralisationError("an age band cannot be made exact")
            return str(low)
        width = int(level.removeprefix("band"))
        start = low - low % width
        end = start + width - 1
        if self.top_code is not None:
            end = min(end, self.top_code - 1)
        if m.group(2) is not None and int(m.group(2)) > end:
            raise GeneralisationError("band is wider than the requested level")
        return f"{start}-{end}"

    def _dates(self, text: str, level: str) -> str:
        m5 = _YEARS.fullmatch(text)
        if m5:
            if level != "year5":
                raise GeneralisationError("a year range cannot be made finer")
            return text
        m = _DATE.fullmatch(text)
        if not m:
            raise GeneralisationError("expected a date YYYY-MM-DD, YYYY-MM or YYYY")
        year, month, day = m.groups()
        need = {"day": 3, "month": 2, "year": 1, "year5": 1}[level]
        have = 1 + (month is not None) + (day is not None)
        if have < need:
            raise GeneralisationError("date is coarser than the requested level")
        if level == "year5":
            start = int(year) - int(year) % 5
            return f"{start}-{start + 4}"
        return "-".join(p for p in (year, month, day)[:need])

    def _icd10(self, text: str, level: str) -> str:
        rng = _RANGE.fullmatch(text)
        if rng:
            if level == "chapter":
                return self._range_of(rng.group(1), self.chapters) or STAR
            if level == "block" and (text in self.blocks or text in self.chapters):
                return text
            raise GeneralisationError("an ICD-10 range cannot be made finer")
        m = _ICD.fullmatch(text)
        if not m:
            raise GeneralisationError("expected an ICD-10 code like C18.7")
        category = m.group(1) + m.group(2)
        if level == "code":
            return text
        if level == "category":
            return category
        if level == "block":
            return self._range_of(category, self.blocks) or self._range_of(category, self.chapters)
        return self._range_of(category, self.chapters) or STAR

    @staticmethod
    def _range_of(category: str, ranges: list[str]) -> str:
        for r in ranges:
            lo, hi = r.split("-")
            if lo <= category <= hi:
                return r
        return ""

    def _map(self, text: str, level: str) -> str:
        return self.map.get(text, text) if self.index(level) > 0 else text


class Hierarchies(StrictModel):
    age: Ladder
    date: Ladder
    icd10: Ladder
    site: Ladder

    def get(self, name: str) -> Ladder:
        ladder = getattr(self, name, None)
        if not isinstance(ladder, Ladder):
            raise GeneralisationError(f"unknown hierarchy; use one of {list(self.model_fields)}")
        return ladder


def load_hierarchies(path: Path) -> Hierarchies:
    return load_yaml_model(path, Hierarchies)
