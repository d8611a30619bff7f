"""De-identification policy per source format (policies/deid/<format>.yaml).

Default-deny: a field without a rule is dropped (`default` can only be "drop"); associated
images (label, macro, thumbnail, other) are never kept, only the pyramid. Field names are exact
(`aperio.Filename`) or fnmatch patterns (`aperio.CustomField.*`); exact names win, then the
first matching pattern in file order.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from slidegate.deid.values import ValueKind
from slidegate.policy import StrictModel, load_yaml_model

FieldClass = Literal[
    "date", "time", "device_id", "operator", "name", "identifier", "free_text", "technical"
]
_GLOB_CHARS = frozenset("*?[")
_PYRAMID: Literal["pyramid"] = "pyramid"


class FieldRule(StrictModel):
    action: Literal["keep", "drop", "coarsen"]
    class_: FieldClass = Field(alias="class")
    coarsen: Literal["year"] | None = None
    output_key: str | None = None
    #: what a kept value may look like (slidegate/deid/values.py); required with action keep
    value: ValueKind | list[str] | None = None

    @model_validator(mode="after")
    def _coarsen_matches_action(self) -> FieldRule:
        if self.action == "coarsen" and self.coarsen is None:
            raise ValueError("action 'coarsen' needs 'coarsen: year'")
        if self.action != "coarsen" and self.coarsen is not None:
            raise ValueError("'coarsen' is only allowed with action 'coarsen'")
        if self.action == "drop" and self.output_key is not None:
            raise ValueError("'output_key' makes no sense for a dropped field")
        if self.action == "keep" and not self.value:
            raise ValueError(
                "a keep rule needs 'value': number, numbers, token, channel or a list of the "
                "values it allows (a value that does not fit is dropped)"
            )
        if self.action != "keep" and self.value is not None:
            raise ValueError("'value' is only allowed with action 'keep'")
        return self


class ImagePolicy(StrictModel):
    #: only the pyramid can be kept; label, macro, thumbnail and other images are always dropped
    keep: list[Literal["pyramid"]] = Field(default_factory=lambda: [_PYRAMID])


class DeidPolicy(StrictModel):
    format: str
    fields: dict[str, FieldRule] = Field(default_factory=dict)
    default: Literal["drop"] = "drop"
    images: ImagePolicy = Field(default_factory=ImagePolicy)

    def rule_for(self, name: str) -> tuple[str, FieldRule] | None:
        """(rule key, rule) for a field name: exact match first, then the first glob."""
        rule = self.fields.get(name)
        if rule is not None:
            return name, rule
        for key, candidate in self.fields.items():
            if _GLOB_CHARS & set(key) and fnmatch.fnmatchcase(name, key):
                return key, candidate
        return None


def load_deid_policy(path: Path) -> DeidPolicy:
    return load_yaml_model(Path(path), DeidPolicy)
