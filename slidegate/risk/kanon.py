"""Quasi-identifier risk: equivalence classes over patients (not rows), prosecutor/marketer risk.

A patient's quasi-identifiers are taken from their first row in the table. Two patients are in
the same equivalence class (EC) when all their quasi-identifier values are equal (an empty value
is a value like any other).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import pandas as pd

from slidegate.errors import SpecError


def patient_qis(
    table: pd.DataFrame, quasi_identifiers: Sequence[str], patient_column: str
) -> pd.DataFrame:
    """One row per distinct patient (index = patient), the QI columns from their first row."""
    needed = [patient_column, *quasi_identifiers]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise SpecError(
            f"released table lacks column(s) {missing} named by the risk policy; align the risk "
            "policy's quasi_identifiers/patient_column with the metadata policy",
            reason="risk policy names a column the released table does not have",
        )
    firsts = table[needed].fillna("").astype(str).drop_duplicates(subset=patient_column)
    return firsts.set_index(patient_column)[list(quasi_identifiers)]


def equivalence_class_sizes(
    table: pd.DataFrame, quasi_identifiers: Sequence[str], patient_column: str
) -> pd.Series:
    """Per patient: how many patients (incl. itself) share its quasi-identifier tuple."""
    qis = patient_qis(table, quasi_identifiers, patient_column)
    if qis.empty:
        return pd.Series([], dtype="int64", name="ec_size")
    keys = list(qis.itertuples(index=False, name=None))
    counts = Counter(keys)
    return pd.Series([counts[k] for k in keys], index=qis.index, dtype="int64", name="ec_size")


def prosecutor_risk(
    table: pd.DataFrame, quasi_identifiers: Sequence[str], patient_column: str
) -> pd.Series:
    """Per patient: 1 / |EC|, the chance an attacker who knows the patient is in the cohort
    picks the right record."""
    sizes = equivalence_class_sizes(table, quasi_identifiers, patient_column)
    return (1.0 / sizes.astype("float64")).rename("risk")


def marketer_risk(
    table: pd.DataFrame, quasi_identifiers: Sequence[str], patient_column: str
) -> float:
    """Number of equivalence classes / number of patients (expected share re-identified when
    every record is attacked); equals the mean prosecutor risk. 0.0 for an empty table."""
    qis = patient_qis(table, quasi_identifiers, patient_column)
    if qis.empty:
        return 0.0
    n_classes = len(qis.drop_duplicates())
    return n_classes / len(qis)


def k_anonymity(table: pd.DataFrame, quasi_identifiers: Sequence[str], patient_column: str) -> int:
    """Smallest equivalence class size (k); 0 for an empty table."""
    sizes = equivalence_class_sizes(table, quasi_identifiers, patient_column)
    return int(sizes.min()) if len(sizes) else 0
