"""Mitigation search: generalisation lattice x slide caps, greedy suppression, least loss wins.

For every node of the generalisation lattice (each quasi-identifier between the level the
metadata policy releases and the profile's `max_levels`) and every slides-per-patient cap, the
patients are suppressed one at a time, highest R first, with the equivalence classes recomputed
after each suppression, until max R <= max_risk AND mean R <= max_mean_risk, or the suppression
budget is spent. Among the attempts that pass, the one with the least information loss is
chosen; ties go to fewer suppressed patients, then to the larger cap, then to the lattice order.

Information loss (LOSS_METRIC): Iyengar's loss metric (LM, as ARX's "Loss") over every cell of
a quasi-identifier in the candidate rows: a cell published at a generalised value that stands
for m of the column's M distinct released values loses (m - 1) / (M - 1); every cell of a
suppressed patient's or a capped slide's row loses 1; the table's loss is the mean, 0 (as
released by the metadata policy) to 1 (nothing left).

Rule ids say why a patient or slide is withheld (never a value): RULE_MAX, RULE_MEAN, RULE_CAP.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from slidegate.risk.kanon import published_rows
from slidegate.risk.policy import RiskLimits

EPS = 1e-9
#: a patient whose R is above max_risk at the chosen generalisation
RULE_MAX = "risk.max_risk"
#: a patient with the highest R while the cohort's mean R is above max_mean_risk
RULE_MEAN = "risk.mean_risk"
#: a slide left out by the slides-per-patient cap (the least linkable ones are kept)
RULE_CAP = "risk.slide_cap"
#: the cohort: no attempt within the profile's limits passes
RULE_COHORT = "risk.cohort"
LOSS_METRIC = (
    "Iyengar loss metric (ARX 'Loss') over the quasi-identifier cells of the candidate rows: "
    "(m - 1) / (M - 1) for a value standing for m of the column's M released values, 1 for a "
    "suppressed patient's or capped slide's cell; 0 = as released, 1 = nothing left"
)


@dataclass(frozen=True)
class Suppressed:
    patient: str
    rule: str  # RULE_MAX | RULE_MEAN
    risk: float  # R when it was suppressed
    r_qi: float
    ec_size: int


@dataclass(frozen=True)
class Attempt:
    levels: dict[str, str]
    cap: int | None
    rank: int  # lattice order (least generalised first)
    suppressed: tuple[Suppressed, ...]
    passed: bool
    loss: float
    max_risk: float  # over the kept patients
    mean_risk: float
    kept: int

    def key(self) -> tuple[float, int, int, int]:
        return (round(self.loss, 12), len(self.suppressed), -(self.cap or 1 << 30), self.rank)


def composite(lim: RiskLimits, r_qi: np.ndarray, r_img: np.ndarray) -> np.ndarray:
    return np.asarray(lim.p_attack * (1.0 - (1.0 - r_qi) * (1.0 - lim.p_ref * r_img)))


def population_counts(
    rows: pd.DataFrame, qis: Sequence[str], population: pd.DataFrame | None
) -> np.ndarray:
    """Per published row: the population count F of its QI tuple (0 without a population)."""
    if population is None:
        return np.zeros(len(rows))
    if not qis:
        return np.full(len(rows), float(pd.to_numeric(population["count"]).sum()))
    pop = population.copy()
    pop[list(qis)] = pop[list(qis)].fillna("").astype(str)
    counts = pop.groupby(list(qis))["count"].sum()
    keys = [tuple(r) if len(qis) > 1 else r[0] for r in rows[list(qis)].itertuples(index=False)]
    return np.array([float(counts.get(k, 0)) for k in keys])


def greedy_suppression(
    table: pd.DataFrame,
    qis: Sequence[str],
    patient_column: str,
    r_img: Mapping[str, float],
    lim: RiskLimits,
    budget: int,
    population: pd.DataFrame | None = None,
) -> tuple[list[Suppressed], bool, float, float]:
    """Suppress the patients above max_risk, else the highest-R patient while the mean is above
    max_mean_risk; recompute every class; repeat until both limits hold or the next suppression
    would exceed `budget`. Returns (suppressed, passed, max R, mean R of the kept)."""
    rows = published_rows(table, qis, patient_column)
    if rows.empty:
        return [], False, 0.0, 0.0
    row_p, patients = pd.factorize(rows[patient_column], sort=False)
    if qis:
        row_c, _ = pd.factorize(pd.MultiIndex.from_frame(rows[list(qis)]), sort=False)
    else:
        row_c = np.zeros(len(rows), np.int64)
    big_f = population_counts(rows, qis, population)
    img = np.array([float(r_img.get(str(p), 0.0)) for p in patients])
    alive = np.ones(len(patients), bool)
    done: list[Suppressed] = []
    while True:
        live = alive[row_p]
        counts = np.bincount(row_c[live], minlength=int(row_c.max()) + 1)
        size = counts[row_c].astype(np.float64)
        row_risk = 1.0 / np.maximum(np.maximum(big_f, size), 1.0)
        r_qi = np.zeros(len(patients))
        np.maximum.at(r_qi, row_p[live], row_risk[live])
        ec = np.full(len(patients), np.iinfo(np.int64).max)
        np.minimum.at(ec, row_p[live], counts[row_c][live])
        r = composite(lim, r_qi, img)
        kept = r[alive]
        if not len(kept):
            return done, False, 0.0, 0.0
        above = bool((kept > lim.max_risk + EPS).any())
        mean_bad = float(kept.mean()) > lim.max_mean_risk + EPS
        if not above and not mean_bad:
            return done, True, float(kept.max()), float(kept.mean())
        if above:
            # suppressing a patient only shrinks the others' classes: a patient above max_risk
            # now stays above it whatever else is suppressed, so all of them go together
            # (the same set one at a time would reach), then every class is recomputed
            over = np.where(alive & (r > lim.max_risk + EPS))[0]
            if len(done) + len(over) > budget:
                return done, False, float(kept.max()), float(kept.mean())
            picked = over[np.argsort(-r[over], kind="stable")]
            rule = RULE_MAX
        else:
            if len(done) >= budget:
                return done, False, float(kept.max()), float(kept.mean())
            picked = np.array([int(np.argmax(np.where(alive, r, -1.0)))])
            rule = RULE_MEAN
        for i in picked:
            done.append(Suppressed(str(patients[i]), rule, float(r[i]), float(r_qi[i]), int(ec[i])))
        alive[picked] = False


def cell_losses(base: pd.DataFrame, generalised: pd.DataFrame, qis: Sequence[str]) -> np.ndarray:
    """Per row: the sum over the QI columns of the cell's loss (m - 1) / (M - 1); `base` is the
    table as released (before mitigation), `generalised` the same rows at a lattice node."""
    total = np.zeros(len(base))
    for col in qis:
        before = base[col].astype(str).to_numpy()
        after = generalised[col].astype(str).to_numpy()
        domain = pd.Series(before[before != ""]).unique()
        if len(domain) <= 1:
            continue
        pairs = pd.DataFrame({"b": before, "a": after}).drop_duplicates()
        pairs = pairs[pairs["b"] != ""]
        leaves = pairs.groupby("a")["b"].nunique()
        m = pd.Series(after).map(leaves).fillna(1.0).to_numpy(dtype=np.float64)
        total += (m - 1.0) / (len(domain) - 1.0)
    return total


def table_loss(row_loss: np.ndarray, kept_rows: np.ndarray, n_qis: int) -> float:
    """Mean cell loss over every candidate row; rows not kept (suppressed, capped) lose 1."""
    if not n_qis or not len(row_loss):
        return 0.0 if len(row_loss) else 1.0
    lost = float(row_loss[kept_rows].sum()) + n_qis * float((~kept_rows).sum())
    return lost / (len(row_loss) * n_qis)


def choose(attempts: Sequence[Attempt]) -> tuple[Attempt, int]:
    """The passing attempt with the least loss (ties: fewer suppressed, larger cap, lattice
    order) and how many passed; with none passing, the one closest to the limits."""
    passing = [a for a in attempts if a.passed]
    if passing:
        return min(passing, key=Attempt.key), len(passing)
    return min(attempts, key=lambda a: (a.max_risk, a.mean_risk, a.loss, a.rank)), 0
