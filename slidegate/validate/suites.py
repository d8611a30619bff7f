"""Great Expectations suites built from a MetadataPolicy.

The checks are first listed as plain `Check` records (no GX import, easy to test and to show in a
report), then turned into a GX `ExpectationSuite` by `build_suite`. great_expectations is
imported lazily (the import takes seconds).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from slidegate.risk.hierarchy import FORMATS
from slidegate.validate.policy import MetadataPolicy, Severity

if TYPE_CHECKING:
    from great_expectations import ExpectationSuite

#: the columns of the output metadata table: one row per (output slide, key)
METADATA_COLUMNS = ("slide", "key", "value")

_GX_SEVERITY = {"block": "critical", "warn": "warning"}


@dataclass(frozen=True)
class Check:
    """One expectation: GX class name, its arguments, and value-free words for reports."""

    expectation: str  # e.g. "ExpectColumnValuesToMatchRegex"
    kwargs: dict[str, Any] = field(hash=False)
    column: str | None
    rule: str
    severity: Severity


def pseudonym_regex(kind: str) -> str:
    return rf"^{kind}-[0-9a-f]{{16}}\Z"


def glob_regex(patterns: list[str]) -> str:
    """One anchored regex matching any of the fnmatch-style `patterns` (whole string)."""
    return "^(?:" + "|".join(fnmatch.translate(p) for p in patterns) + ")"


def _columns_check(columns: list[str], what: str) -> Check:
    return Check(
        "ExpectTableColumnsToMatchSet",
        {"column_set": list(columns), "exact_match": True},
        None,
        f"columns are exactly the {what}",
        "block",
    )


def _regex(column: str, regex: str, rule: str, severity: Severity) -> Check:
    return Check(
        "ExpectColumnValuesToMatchRegex", {"column": column, "regex": regex}, column, rule, severity
    )


def _not_null(column: str, severity: Severity) -> Check:
    return Check(
        "ExpectColumnValuesToNotBeNull", {"column": column}, column, "no missing values", severity
    )


def cohort_checks(policy: MetadataPolicy) -> list[Check]:
    """Checks on the released cohort table (after pseudonymisation and generalisation)."""
    checks = [_columns_check(policy.released_columns(), "metadata policy's released columns")]
    for _, name, rule in policy.released():
        if rule.action == "pseudonymize":
            regex = pseudonym_regex(str(rule.kind))
            checks.append(_regex(name, regex, f"values are '{rule.kind}-' pseudonyms", "block"))
            checks.append(_not_null(name, "block"))
        elif rule.action == "generalize":
            regex = FORMATS[(str(rule.hierarchy), str(rule.level))]
            checks.append(_regex(name, regex, f"values are generalised to {rule.level}", "block"))
        if rule.action == "keep":
            for bad in policy.forbid_values:
                checks.append(
                    Check(
                        "ExpectColumnValuesToNotMatchRegex",
                        {"column": name, "regex": bad.regex},
                        name,
                        f"no {bad.name} value",
                        bad.severity,
                    )
                )
        for exp in rule.expect:
            if exp.values is not None:
                checks.append(
                    Check(
                        "ExpectColumnValuesToBeInSet",
                        {"column": name, "value_set": list(exp.values)},
                        name,
                        exp.rule,
                        exp.severity,
                    )
                )
            elif exp.regex is not None:
                checks.append(_regex(name, exp.regex, exp.rule, exp.severity))
            else:
                checks.append(_not_null(name, exp.severity))
    return checks


def source_checks(policy: MetadataPolicy, source_columns: list[str]) -> list[Check]:
    """Checks on the source cohort table's *columns* (run on a table without rows: no value of
    the source ever reaches GX). With `unknown_columns: block`, a column without a rule fails;
    a column the policy drops may be absent."""
    if policy.unknown_columns != "block":
        return []
    known = [c for c in source_columns if c in policy.columns]
    return [
        Check(
            "ExpectTableColumnsToMatchSet",
            {"column_set": known, "exact_match": True},
            None,
            "every column has a rule in the metadata policy",
            "block",
        )
    ]


def metadata_checks(policy: MetadataPolicy) -> list[Check]:
    """Checks on the output metadata table (columns slide, key, value; slide = pseudonym)."""
    rules = policy.output_metadata
    checks = [
        _columns_check(list(METADATA_COLUMNS), "output metadata columns (slide, key, value)"),
        _regex("slide", pseudonym_regex("s"), "values are 's-' pseudonyms", "block"),
        _not_null("key", "block"),
        _regex("key", glob_regex(rules.allowed_keys), "keys are in allowed_keys", rules.severity),
    ]
    if rules.forbid_value_regex:
        checks.append(
            Check(
                "ExpectColumnValuesToNotMatchRegexList",
                {"column": "value", "regex_list": list(rules.forbid_value_regex)},
                "value",
                "values match none of forbid_value_regex",
                rules.severity,
            )
        )
    return checks


def build_suite(name: str, checks: list[Check]) -> ExpectationSuite:
    """A GX ExpectationSuite; each expectation's meta carries rule, column and severity."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    expectations = []
    for c in checks:
        cls = getattr(gxe, c.expectation)
        meta = {"rule": c.rule, "column": c.column, "slidegate_severity": c.severity}
        expectations.append(cls(**c.kwargs, meta=meta, severity=_GX_SEVERITY[c.severity]))
    return gx.ExpectationSuite(name=name, expectations=expectations)
