"""The cohort table: read it, then build the released (pseudonymised, generalised) table.

The source table holds PHI (patient ids, exact ages and dates, source paths): it stays private.
Errors name the row number and the column, never a value.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from slidegate.errors import SpecError
from slidegate.risk.hierarchy import generalize_column
from slidegate.validate.policy import MetadataPolicy


@dataclass(frozen=True)
class ReleaseTable:
    """Released columns in policy order; the index is the source table's row index."""

    table: pd.DataFrame
    dropped_columns: tuple[str, ...]


def read_cohort(path: Path) -> pd.DataFrame:
    """Read a cohort CSV with every cell as a string; empty cells stay "" (not NaN)."""
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(
            f"cohort table {path} not found; check the 'cohort' entry of the spec",
            reason="cohort table not found",
        ) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise SpecError(
            f"cohort table {path} is not a readable UTF-8 CSV ({type(exc).__name__}); "
            "export it again as CSV with a header row",
            reason="cohort table is not a readable CSV",
        ) from None
    with path.open(newline="", encoding="utf-8") as fh:
        header = next(csv.reader(fh), [])
    bad = sorted({c for c in header if header.count(c) > 1 or not c.strip()})
    if bad:
        raise SpecError(
            f"cohort table {path} has duplicate or empty header names {bad}; fix the header row",
            reason="cohort table header has duplicate or empty names",
        )
    return df


def _pseudonymize_column(
    values: pd.Series, column: str, kind: str, pseudonymize: Callable[[str, str], str]
) -> pd.Series:
    out: list[str] = []
    for row, value in enumerate(values.fillna("").tolist(), start=1):
        text = str(value).strip()
        if not text:
            raise SpecError(
                f"cohort row {row} (CSV line {row + 1}), column '{column}' is empty; every row "
                "needs an identifier there (fill it in or remove the row)",
                reason=f"column '{column}' has an empty identifier",
            )
        out.append(pseudonymize(kind, text))
    return pd.Series(out, index=values.index, name=values.name, dtype="str")


def _check_unique_slides(values: pd.Series, column: str) -> None:
    seen: dict[str, int] = {}
    for row, value in enumerate(values.tolist(), start=1):
        first = seen.setdefault(str(value).strip(), row)
        if first != row:
            raise SpecError(
                f"cohort rows {first} and {row}: column '{column}' names the same slide twice; "
                "keep one row per slide",
                reason=f"column '{column}' has duplicate entries",
            )


def check_columns(columns: list[str], policy: MetadataPolicy, cohort_path: Path) -> None:
    """Before any work: every column the metadata policy releases is in the table, and (with
    `unknown_columns: block`) every column of the table has a rule (`{action: drop}` counts)."""
    missing = [src for src, _, _ in policy.released() if src not in columns]
    if missing:
        raise SpecError(
            f"cohort table {cohort_path} lacks column(s) {missing} that the metadata policy "
            "releases; add them to the cohort CSV or change the metadata policy",
            reason="cohort table lacks a required column",
        )
    unknown = [c for c in columns if c not in policy.columns]
    if unknown and policy.unknown_columns == "block":
        raise SpecError(
            f"cohort table {cohort_path} has column(s) {unknown} with no rule in the metadata "
            "policy (unknown_columns: block); give each a rule ({action: drop} included) or "
            "remove it from the CSV",
            reason="cohort table has a column without a rule",
        )


def build_release_table(
    df: pd.DataFrame, policy: MetadataPolicy, pseudonymize: Callable[[str, str], str]
) -> ReleaseTable:
    """Apply the metadata policy to the source cohort table.

    `pseudonymize(kind, value)` is normally a `slidegate.pseudonym.Pseudonymizer`. Columns with
    no rule (and rules saying `drop`) are left out; identifiers must not be empty; generalised
    cells that cannot be parsed raise SpecError naming the row and column.
    """
    released = policy.released()
    missing = [src for src, _, _ in released if src not in df.columns]
    if missing:
        raise SpecError(
            f"cohort table lacks column(s) {missing} that the metadata policy releases; add them "
            "to the cohort CSV or change the metadata policy",
            reason="cohort table lacks a required column",
        )
    out: dict[str, pd.Series] = {}
    for src, name, rule in released:
        col = df[src]
        if rule.action == "pseudonymize":
            assert rule.kind is not None  # guaranteed by the policy model
            if rule.kind == "s":
                _check_unique_slides(col, src)
            out[name] = _pseudonymize_column(col, src, rule.kind, pseudonymize)
        elif rule.action == "generalize":
            assert rule.hierarchy is not None and rule.level is not None
            out[name] = generalize_column(col, src, rule.hierarchy, rule.level, rule.top_code)
        else:  # keep
            out[name] = col.astype("str")
    table = pd.DataFrame(out, index=df.index)
    kept_sources = {src for src, _, _ in released}
    dropped = tuple(str(c) for c in df.columns if c not in kept_sources)
    return ReleaseTable(table=table, dropped_columns=dropped)
