"""Quasi-identifier risk figures at patient level (pure functions on the released table).

- prosecutor risk 1/|EC| (the attacker knows the patient is in the cohort);
- journalist risk 1/|population EC| when a population frequency table is given (a CSV with the
  quasi-identifier columns and a `count` column, generalised the same way as the cohort);
- marketer risk (cohort level): expected share of patients re-identified when all are attacked;
- distinct l-diversity: the fewest distinct sensitive values in an equivalence class formed
  over the other quasi-identifiers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from slidegate.errors import SpecError
from slidegate.risk.kanon import equivalence_class_sizes, patient_qis


@dataclass(frozen=True)
class QiFigures:
    n_patients: int
    k: int  # smallest EC (0 when empty)
    n_classes: int
    prosecutor_max: float
    prosecutor_mean: float
    marketer: float  # classes / patients (sample); with a population: mean of f/F
    journalist_max: float | None
    l_diversity: int | None  # None: no sensitive attribute configured


def journalist_risk(
    table: pd.DataFrame,
    quasi_identifiers: Sequence[str],
    patient_column: str,
    population: pd.DataFrame,
) -> pd.Series:
    """Per patient: 1 / F, F the population count of its class (at least its sample size)."""
    missing = [c for c in (*quasi_identifiers, "count") if c not in population.columns]
    if missing:
        raise SpecError(
            f"population table lacks column(s) {missing}; it needs the quasi-identifier columns "
            "and a 'count' column",
            reason="population table lacks required columns",
        )
    pop = population.copy()
    pop[list(quasi_identifiers)] = pop[list(quasi_identifiers)].fillna("").astype(str)
    counts = pop.groupby(list(quasi_identifiers))["count"].sum()
    qis = patient_qis(table, quasi_identifiers, patient_column)
    sizes = equivalence_class_sizes(table, quasi_identifiers, patient_column)
    out = []
    for patient, row in qis.iterrows():
        key = tuple(row) if len(quasi_identifiers) > 1 else row.iloc[0]
        big_f = float(counts.get(key, 0))
        out.append(1.0 / max(big_f, float(sizes[patient]), 1.0))
    return pd.Series(out, index=qis.index, dtype="float64", name="journalist")


def l_diversity(
    table: pd.DataFrame, quasi_identifiers: Sequence[str], sensitive: str, patient_column: str
) -> int:
    """Distinct l-diversity over patients: min number of distinct `sensitive` values per EC,
    the ECs being formed over the quasi-identifiers other than `sensitive`."""
    others = [q for q in quasi_identifiers if q != sensitive]
    qis = patient_qis(table, [*others, sensitive], patient_column)
    if qis.empty:
        return 0
    if not others:
        return int(qis[sensitive].nunique())
    return int(qis.groupby(others)[sensitive].nunique().min())


def qi_figures(
    table: pd.DataFrame,
    quasi_identifiers: Sequence[str],
    patient_column: str,
    sensitive: str | None = None,
    population: pd.DataFrame | None = None,
) -> QiFigures:
    sizes = equivalence_class_sizes(table, quasi_identifiers, patient_column)
    if sizes.empty:
        return QiFigures(0, 0, 0, 0.0, 0.0, 0.0, None, None)
    risk = 1.0 / sizes.astype("float64")
    journalist = (
        None
        if population is None
        else journalist_risk(table, quasi_identifiers, patient_column, population)
    )
    marketer = float(risk.sum() / len(sizes)) if journalist is None else float(journalist.mean())
    return QiFigures(
        n_patients=len(sizes),
        k=int(sizes.min()),
        n_classes=round(float(risk.sum())),
        prosecutor_max=float(risk.max()),
        prosecutor_mean=float(risk.mean()),
        marketer=marketer,
        journalist_max=None if journalist is None else float(journalist.max()),
        l_diversity=(
            None
            if sensitive is None
            else l_diversity(table, quasi_identifiers, sensitive, patient_column)
        ),
    )
