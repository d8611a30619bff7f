"""Quasi-identifier risk over what is published: every row, counted by patient.

A patient is linkable through ANY of their published rows: an attacker who knows the
quasi-identifier (QI) values of one of the patient's slides (age band, sex, diagnosis, site,
collection year, ...) finds every patient who has a published row with those values. So:

- a *row class* is a distinct QI tuple; its size is the number of distinct patients with a
  published row holding that tuple (two slides of one patient count once);
- a patient's equivalence class size is the smallest row class among their rows, their
  prosecutor risk 1 / that size (the most identifying of their rows decides);
- k is the smallest row class of the table. An empty value is a value like any other.

On a table with one row per patient this is the usual (ARX / pyCANON) definition; on a table
with several rows per patient it equals pyCANON's on the table de-duplicated on (patient, QIs).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from slidegate.errors import SpecError


def published_rows(
    table: pd.DataFrame, quasi_identifiers: Sequence[str], patient_column: str
) -> pd.DataFrame:
    """The distinct (patient, QI tuple) rows of the table, as strings ("" for missing)."""
    needed = [patient_column, *quasi_identifiers]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise SpecError(
            f"released table lacks column(s) {missing} the risk model scores; the quasi-"
            "identifiers are the metadata policy's released, non-pseudonymised columns",
            reason="risk model names a column the released table does not have",
        )
    return table[needed].fillna("").astype(str).drop_duplicates().reset_index(drop=True)


def row_class_sizes(rows: pd.DataFrame, quasi_identifiers: Sequence[str]) -> pd.Series:
    """Per row of `published_rows`: how many distinct patients have a row with its QI tuple."""
    if rows.empty:
        return pd.Series([], dtype="int64", name="class_size")
    if not quasi_identifiers:  # nothing identifying is published: one class of everyone
        n = int(rows.iloc[:, 0].nunique())
        return pd.Series(n, index=rows.index, dtype="int64", name="class_size")
    sizes = rows.groupby(list(quasi_identifiers), sort=False, dropna=False)[
        rows.columns[0]
    ].transform("size")
    return sizes.astype("int64").rename("class_size")


def equivalence_class_sizes(
    table: pd.DataFrame, quasi_identifiers: Sequence[str], patient_column: str
) -> pd.Series:
    """Per patient (index, in order of first appearance): the smallest row class among their
    published rows."""
    rows = published_rows(table, quasi_identifiers, patient_column)
    if rows.empty:
        return pd.Series([], dtype="int64", name="ec_size")
    sizes = row_class_sizes(rows, quasi_identifiers)
    per = sizes.groupby(rows[patient_column], sort=False).min()
    per.index.name = None
    return per.astype("int64").rename("ec_size")


def prosecutor_risk(
    table: pd.DataFrame, quasi_identifiers: Sequence[str], patient_column: str
) -> pd.Series:
    """Per patient: 1 / |EC|, the chance an attacker who knows the patient is in the cohort
    (and the QI values of one of their slides) picks the right patient."""
    sizes = equivalence_class_sizes(table, quasi_identifiers, patient_column)
    return (1.0 / sizes.astype("float64")).rename("risk")


def marketer_risk(
    table: pd.DataFrame, quasi_identifiers: Sequence[str], patient_column: str
) -> float:
    """Expected share of patients re-identified when every patient is attacked through their
    most identifying row: the mean prosecutor risk. 0.0 for an empty table."""
    risk = prosecutor_risk(table, quasi_identifiers, patient_column)
    return float(risk.mean()) if len(risk) else 0.0


def k_anonymity(table: pd.DataFrame, quasi_identifiers: Sequence[str], patient_column: str) -> int:
    """Smallest row class (distinct patients per published QI tuple); 0 for an empty table."""
    sizes = equivalence_class_sizes(table, quasi_identifiers, patient_column)
    return int(sizes.min()) if len(sizes) else 0


def class_count(table: pd.DataFrame, quasi_identifiers: Sequence[str], patient_column: str) -> int:
    """Number of distinct published QI tuples."""
    rows = published_rows(table, quasi_identifiers, patient_column)
    if rows.empty:
        return 0
    return len(rows[list(quasi_identifiers)].drop_duplicates()) if quasi_identifiers else 1
