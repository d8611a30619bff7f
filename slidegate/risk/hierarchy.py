"""Generalisation hierarchies for quasi-identifiers (pure functions).

age:  62 -> "60-64" (band5) -> "60-69" (band10) -> "60-79" (band20); optional top code "90+".
date: "2019-03-14" -> "2019-03" (month) -> "2019" (year).

The value-level functions raise `GeneralisationError` whose text describes the expected form and
never the value. `generalize_column` turns that into a SpecError naming the row and the column.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

import pandas as pd

from slidegate.errors import SpecError

MAX_AGE = 130
_INT_RE = re.compile(r"[0-9]{1,3}")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

#: regex every generalised value of a (hierarchy, level) matches; used by validation
FORMATS: dict[tuple[str, str], str] = {
    ("age", "band5"): r"^(?:[0-9]{1,3}-[0-9]{1,3}|[0-9]{1,3}\+)\Z",
    ("age", "band10"): r"^(?:[0-9]{1,3}-[0-9]{1,3}|[0-9]{1,3}\+)\Z",
    ("age", "band20"): r"^(?:[0-9]{1,3}-[0-9]{1,3}|[0-9]{1,3}\+)\Z",
    ("date", "year"): r"^[0-9]{4}\Z",
    ("date", "month"): r"^[0-9]{4}-[0-9]{2}\Z",
}


class GeneralisationError(ValueError):
    """A value does not have the form a hierarchy needs. The message holds no value."""


def age_band(age: int | str, width: int, top_code: int | None = None) -> str:
    """Band of `width` years containing `age`: age_band(62, 10) == "60-69"."""
    if width < 1:
        raise GeneralisationError("band width must be a positive number of years")
    if isinstance(age, str):
        if not _INT_RE.fullmatch(age.strip()):
            raise GeneralisationError(f"expected a whole number of years between 0 and {MAX_AGE}")
        age = int(age.strip())
    if isinstance(age, bool) or not 0 <= age <= MAX_AGE:
        raise GeneralisationError(f"expected a whole number of years between 0 and {MAX_AGE}")
    if top_code is not None and age >= top_code:
        return f"{top_code}+"
    low = age - age % width
    return f"{low}-{low + width - 1}"


def date_to(value: str, level: str) -> str:
    """Coarsen an ISO date (YYYY-MM-DD): date_to("2019-03-14", "year") == "2019"."""
    text = value.strip()
    if not _DATE_RE.fullmatch(text):
        raise GeneralisationError("expected a date written YYYY-MM-DD")
    try:
        parsed = date.fromisoformat(text)
    except ValueError:
        raise GeneralisationError("expected a real calendar date written YYYY-MM-DD") from None
    if level == "year":
        return f"{parsed.year:04d}"
    if level == "month":
        return f"{parsed.year:04d}-{parsed.month:02d}"
    raise GeneralisationError("date level must be 'year' or 'month'")


def generalizer(hierarchy: str, level: str, top_code: int | None = None) -> Callable[[str], str]:
    """The value function for a (hierarchy, level) pair from a policy."""
    if hierarchy == "age" and level.startswith("band"):
        width = int(level.removeprefix("band"))
        return lambda v: age_band(v, width, top_code)
    if hierarchy == "date":
        return lambda v: date_to(v, level)
    raise GeneralisationError(f"unknown hierarchy/level {hierarchy}/{level}")


def generalize_column(
    values: pd.Series, column: str, hierarchy: str, level: str, top_code: int | None = None
) -> pd.Series:
    """Generalise a cohort column; empty cells stay empty (missing).

    A bad cell raises SpecError naming the cohort row (1 = first data row, CSV line = row + 1)
    and the column, never the value.
    """
    fn = generalizer(hierarchy, level, top_code)
    out: list[str] = []
    for row, value in enumerate(values.fillna("").tolist(), start=1):
        text = str(value)
        if text.strip() == "":
            out.append("")
            continue
        try:
            out.append(fn(text))
        except GeneralisationError as exc:
            raise SpecError(
                f"cohort row {row} (CSV line {row + 1}), column '{column}': {exc}; "
                "correct the cohort table and run again",
                reason=f"column '{column}' has a value that cannot be generalised",
            ) from None
    return pd.Series(out, index=values.index, name=values.name, dtype="str")
