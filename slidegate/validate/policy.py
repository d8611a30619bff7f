"""Metadata policy: what the released cohort table and each output's metadata table may hold.

Default-deny: a cohort column without a rule is dropped, and an output metadata key that matches
no `allowed_keys` pattern fails validation. Expectations carry a severity: `block` stops the
release, `warn` is reported.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from slidegate.policy import StrictModel, load_yaml_model

Severity = Literal["block", "warn"]
Action = Literal["pseudonymize", "keep", "generalize", "drop"]
Hierarchy = Literal["age", "date"]
Level = Literal["band5", "band10", "band20", "year", "month"]

#: generalisation levels each hierarchy understands
LEVELS: dict[str, frozenset[str]] = {
    "age": frozenset({"band5", "band10", "band20"}),
    "date": frozenset({"year", "month"}),
}


def _check_regex(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression ({exc.msg})") from None
    return pattern


class Expectation(StrictModel):
    """One check on a released column: exactly one of `values`, `regex`, `not_null`."""

    values: list[str] | None = None
    regex: str | None = None
    not_null: bool = False
    severity: Severity = "block"

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, v: str | None) -> str | None:
        return None if v is None else _check_regex(v)

    @model_validator(mode="after")
    def _exactly_one(self) -> Expectation:
        given = (self.values is not None) + (self.regex is not None) + self.not_null
        if given != 1:
            raise ValueError(
                "an expectation needs exactly one of 'values', 'regex', 'not_null: true'"
            )
        return self

    @property
    def rule(self) -> str:
        """Value-free name of the rule, for reports."""
        if self.values is not None:
            return "values in the allowed set"
        if self.regex is not None:
            return f"values match {self.regex}"
        return "no missing values"


class NonIdentifying(StrictModel):
    """A released column the risk model does not score as a quasi-identifier, and why. Every
    other released column that is not a keyed pseudonym is one (slidegate.risk.qiset)."""

    #: for the reviewer and the risk report: why the column cannot help single out a patient
    #: (e.g. "the same stain for every slide of every cohort"); no PHI
    reason: str = Field(min_length=20, max_length=400)


class ColumnRule(StrictModel):
    """How one cohort column is released."""

    action: Action
    kind: Literal["s", "p", "b", "x"] | None = None  # pseudonym kind, pseudonymize only
    hierarchy: Hierarchy | None = None  # generalize only
    level: Level | None = None  # generalize only
    #: generalize/age only: ages >= top_code become "<top_code>+" (HIPAA: 90 and over)
    top_code: int | None = Field(default=None, ge=1, le=150)
    rename: str | None = None
    #: what the released column holds, for the release README's codebook (steward's words)
    meaning: str | None = Field(default=None, max_length=200)
    expect: list[Expectation] = Field(default_factory=list)
    #: keep/generalize only: not a quasi-identifier, with the written reason
    non_identifying: NonIdentifying | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ColumnRule:
        if (self.action == "pseudonymize") != (self.kind is not None):
            raise ValueError("'kind' (s|p|b|x) is required for pseudonymize and only there")
        is_gen = self.action == "generalize"
        if is_gen != (self.hierarchy is not None) or is_gen != (self.level is not None):
            raise ValueError("'hierarchy' and 'level' are required for generalize and only there")
        if self.hierarchy is not None and self.level not in LEVELS[self.hierarchy]:
            raise ValueError(
                f"level '{self.level}' does not fit hierarchy '{self.hierarchy}'; "
                f"use one of {sorted(LEVELS[self.hierarchy])}"
            )
        if self.top_code is not None:
            if self.hierarchy != "age":
                raise ValueError("'top_code' applies to generalize with hierarchy 'age' only")
            width = int(str(self.level).removeprefix("band"))
            if self.top_code % width:
                raise ValueError(f"'top_code' must be a multiple of the band width {width}")
        if self.action == "drop" and (self.rename is not None or self.expect):
            raise ValueError("a dropped column takes no 'rename' or 'expect'")
        if self.non_identifying is not None and self.action not in ("keep", "generalize"):
            raise ValueError(
                "'non_identifying' applies to released values (keep, generalize) only: "
                "pseudonyms are never scored and dropped columns are not published"
            )
        return self


class OutputMetadataRules(StrictModel):
    """Key/value pairs every output carries (e.g. OME-Zarr attributes)."""

    #: fnmatch-style patterns, e.g. "aperio.AppMag", "openslide.mpp-*"
    allowed_keys: list[str] = Field(min_length=1)
    #: a value matching any of these (anywhere in the value) fails, e.g. date/time shapes
    forbid_value_regex: list[str] = Field(default_factory=list)
    severity: Severity = "block"

    @field_validator("forbid_value_regex")
    @classmethod
    def _regexes_compile(cls, v: list[str]) -> list[str]:
        return [_check_regex(p) for p in v]


class ForbiddenValue(StrictModel):
    """A value shape no released column that is kept as is may hold (e.g. a name, a date)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9 _-]{0,40}$")  # for reports: "name-like", ...
    regex: str
    severity: Severity = "block"

    @field_validator("regex")
    @classmethod
    def _compiles(cls, v: str) -> str:
        return _check_regex(v)


class MetadataPolicy(StrictModel):
    """Rules for the released cohort table and for the output metadata table."""

    #: released-table rules in release order; keyed by the *source* column name
    columns: dict[str, ColumnRule] = Field(min_length=1)
    #: a source column with no rule: dropped silently, or blocks the release (validation)
    unknown_columns: Literal["drop", "block"] = "drop"
    #: checked on every released column kept as is (pseudonyms and generalised columns have
    #: their own format checks)
    forbid_values: list[ForbiddenValue] = Field(default_factory=list)
    output_metadata: OutputMetadataRules

    @model_validator(mode="after")
    def _unique_outputs(self) -> MetadataPolicy:
        names = self.released_columns()
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"released column names collide: {dupes}; change a 'rename'")
        return self

    def released(self) -> list[tuple[str, str, ColumnRule]]:
        """(source column, released column, rule) for every column that is released."""
        return [
            (src, rule.rename or src, rule)
            for src, rule in self.columns.items()
            if rule.action != "drop"
        ]

    def released_columns(self) -> list[str]:
        return [out for _, out, _ in self.released()]


def load_metadata_policy(path: Path) -> MetadataPolicy:
    """Load a metadata policy YAML; unknown keys or bad values raise PolicyError."""
    return load_yaml_model(path, MetadataPolicy)
