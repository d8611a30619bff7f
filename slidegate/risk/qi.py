"""Quasi-identifier risk figures at patient level (pure functions on the released table).

Every figure is over all published rows, counted by patient (slidegate.risk.kanon):

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
from slidegate.risk.kanon import (
    class_count,
    equivalence_class_sizes,
    published_rows,
    row_class_sizes,
)


@dataclass(frozen=True)
class QiFigures:
    n_patients: int
    k: int  # smallest EC (0 when empty)
    n_classes: int
    prosecutor_max: float
    prosecutor_mean: float
    marketer: float  # mean prosecutor risk (sample); with a population: mean journalist risk
    journalist_max: float | None
    l_diversity: int | None  # None: no sensitive attribute configured


def journalist_risk(
    table: pd.DataFrame,
    quasi_identifiers: Sequence[str],
    patient_column: str,
    population: pd.DataFrame,
) -> pd.Series:
    """Per patient: the largest 1 / F over their published rows, F the population count of the
    row's QI tuple (at least the number of cohort patients with that tuple)."""
    missing = [c for c in (*quasi_identifiers, "count") if c not in population.columns]
    if missing:
        raise SpecError(
            f"population table lacks column(s) {missing}; it needs the quasi-identifier columns "
            "and a 'count' column",
            reason="population table lacks required columns",
        )
    qis = list(quasi_identifiers)
    rows = published_rows(table, qis, patient_column)
    if rows.empty:
        return pd.Series([], dtype="float64", name="journalist")
    sample = row_class_sizes(rows, qis).astype("float64")
    if qis:
        pop = population.copy()
        pop[qis] = pop[qis].fillna("").astype(str)
        pop["count"] = pd.to_numeric(pop["count"])
        counts = pop.groupby(qis)["count"].sum()
        keys = [tuple(r) if len(qis) > 1 else r[0] for r in rows[qis].itertuples(index=False)]
        big_f = pd.Series([float(counts.get(k, 0)) for k in keys], index=rows.index)
    else:
        big_f = pd.Series(float(pd.to_numeric(population["count"]).sum()), index=rows.index)
    risk = 1.0 / pd.concat([big_f, sample], axis=1).max(axis=1).clip(lower=1.0)
    per = risk.groupby(rows[patient_column], sort=False).max()
    per.index.name = None
    return per.astype("float64").rename("journalist")


def l_diversity(
    table: pd.DataFrame, quasi_identifiers: Sequence[str], sensitive: str, patient_column: str
) -> int:
    """Distinct l-diversity over the published rows: the fewest distinct `sensitive` values in
    a class formed over the quasi-identifiers other than `sensitive` (rows de-duplicated per
    patient, so one patient's repeated slide does not count twice)."""
    others = [q for q in quasi_identifiers if q != sensitive]
    rows = published_rows(table, [*others, sensitive], patient_column)
    if rows.empty:
        return 0
    if not others:
        return int(rows[sensitive].nunique())
    return int(rows.groupby(others)[sensitive].nunique().min())


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
        n_classes=class_count(table, quasi_identifiers, patient_column),
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
