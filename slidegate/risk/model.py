"""The cohort risk model with mitigation (DESIGN.md section 4, after Holub et al. 2023).

Per patient h: `R(h) = P(attack) * (1 - (1 - r_qi(h)) * (1 - P(ref) * r_img(h)))`, with r_qi the
prosecutor (or, given a population table, journalist) risk over the quasi-identifiers, through
any of the patient's published rows (slidegate.risk.kanon), and r_img the image-linkage risk
(prior by relation and number of slides, and/or the empirical pi_max match rate). The cohort
passes when max R <= max_risk and mean R <= max_mean_risk.

Mitigation (slidegate.risk.mitigate) searches every generalisation-lattice node within the
profile's max levels and every slides-per-patient cap down to min_slides_per_patient,
suppressing patients one at a time (classes recomputed after each) until both limits hold or
max_suppression is spent, and chooses the passing attempt with the least information loss.
The chosen table is then scored again from scratch; only if that passes is anything released.
Everything here is PHI-free: pseudonyms, generalised values, figures, rule ids.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from slidegate.errors import SpecError
from slidegate.pseudonym import PSEUDONYM_RE
from slidegate.risk.extractors import similarity_for
from slidegate.risk.kanon import equivalence_class_sizes
from slidegate.risk.ladders import Hierarchies
from slidegate.risk.linkage import AttackResult, Pairwise, pi_max_attack, prior_risk
from slidegate.risk.mitigate import (
    EPS,
    Attempt,
    cell_losses,
    choose,
    composite,
    greedy_suppression,
    table_loss,
)
from slidegate.risk.outcome import Eval, Image, build_result
from slidegate.risk.policy import RiskLimits, RiskPolicy
from slidegate.risk.qi import journalist_risk
from slidegate.risk.result import CohortRisk


@dataclass(frozen=True)
class Search:
    attempts: tuple[Attempt, ...]
    best: Attempt
    n_passing: int
    images: dict[int | None, Image]


class RiskModel:
    def __init__(
        self,
        table: pd.DataFrame,
        policy: RiskPolicy,
        limits: RiskLimits,
        hierarchies: Hierarchies,
        *,
        quasi_identifiers: Sequence[str],
        features: Mapping[str, np.ndarray] | None = None,
        population: pd.DataFrame | None = None,
    ) -> None:
        self.table = table.reset_index(drop=True).fillna("").astype(str)
        self.policy, self.limits, self.hier = policy, limits, hierarchies
        self.qis = list(quasi_identifiers)
        self.features = dict(features or {})
        self.population = population
        pc, sc = policy.patient_column, policy.slide_column
        self.owner = dict(zip(self.table[sc], self.table[pc], strict=True))
        # every pair scored once; each cap's and each draw's attack indexes into it
        self.pairwise = Pairwise.of(
            {s: f for s, f in self.features.items() if s in self.owner},
            similarity_for(policy.image_linkage),
        )
        self.link = self.pairwise.linkability(self.owner)
        self.n_patients = int(self.table[pc].nunique())
        self.budget = math.floor(limits.max_suppression * self.n_patients + EPS)

    # --- pieces ---------------------------------------------------------------------------
    def generalise(self, df: pd.DataFrame, levels: Mapping[str, str]) -> pd.DataFrame:
        out = df.copy()
        for col, level in levels.items():
            rule = self.policy.generalisation[col]
            if level == rule.released_at or col not in out.columns:
                continue
            ladder = self.hier.get(rule.hierarchy)
            mapping = {v: ladder.generalise(v, level) for v in out[col].astype(str).unique()}
            out[col] = out[col].astype(str).map(mapping)
        return out

    def capped(self, df: pd.DataFrame, cap: int | None) -> pd.DataFrame:
        """At most `cap` slides per patient: one per block first, the least linkable first."""
        if cap is None:
            return df
        pc, sc = self.policy.patient_column, self.policy.slide_column
        link = self.policy.image_linkage
        order = df.assign(_l=df[sc].map(lambda s: self.link.get(s, 0.0))).sort_values(["_l", sc])
        if link is not None and link.block_column in order.columns:
            # one slide per block first (another block is matched less often than the same)
            order["_b"] = order.groupby([pc, link.block_column], sort=False).cumcount()
            order = order.sort_values(["_b", "_l", sc], kind="stable")
        kept = order.groupby(pc, sort=False).head(cap)
        return df[df[sc].isin(set(kept[sc]))]

    def population_at(self, levels: Mapping[str, str]) -> pd.DataFrame | None:
        if self.population is None:
            return None
        pop = self.generalise(self.population.fillna("").astype(str), levels)
        pop["count"] = pd.to_numeric(self.population["count"])
        return pop

    def image(self, df: pd.DataFrame) -> Image:
        """r_img per patient of `df`: the prior, the empirical pi_max rate, or the larger, as the
        policy says; a patient the attack cannot measure (one slide: no probe) gets the prior
        for their relation, never 0. `decided` says which estimate gave each r_img."""
        pol = self.policy
        pc, sc = pol.patient_column, pol.slide_column
        patients = pd.Index(df[pc].drop_duplicates())
        prior = pd.Series(0.0, index=patients)
        emp = pd.Series(0.0, index=patients)
        result: AttackResult | None = None
        link = pol.image_linkage
        if link is not None:
            pr = link.priors
            for patient, rows in df.groupby(pc, sort=False):
                pairs = list(zip(rows[link.block_column], rows[link.specimen_column], strict=True))
                prior[patient] = prior_risk(pairs, pr.same_block, pr.other_block, pr.other_specimen)
            if link.estimate != "prior" and any(s in self.pairwise.index for s in df[sc]):
                result = pi_max_attack(
                    self.pairwise, self.owner, link.draws, link.seed, slides=df[sc]
                )
                for patient, rate in result.per_patient.items():
                    emp[patient] = rate
        measured = pd.Series(False, index=patients)
        if result is not None:
            measured = pd.Series(
                [p in result.per_patient and p not in result.unmeasured for p in patients],
                index=patients,
            )
        if link is None:
            return Image(prior, emp, prior, result, pd.Series("none", index=patients))
        if link.estimate == "prior":
            use_emp = pd.Series(False, index=patients)
        elif link.estimate == "empirical":
            use_emp = measured
        else:
            use_emp = measured & (emp > prior)
        r_img = pd.Series(np.where(use_emp, emp, prior), index=patients, dtype="float64")
        decided = pd.Series(np.where(use_emp, "empirical", "prior"), index=patients)
        return Image(prior, emp, r_img, result, decided)

    def evaluate(self, df: pd.DataFrame, img: Image, levels: Mapping[str, str]) -> Eval:
        """Score `df` from scratch (the pure functions of slidegate.risk.kanon / qi)."""
        pc = self.policy.patient_column
        ec = equivalence_class_sizes(df, self.qis, pc)
        r_qi = 1.0 / ec.astype("float64")
        pop = self.population_at(levels)
        if pop is not None and len(ec):
            r_qi = journalist_risk(df, self.qis, pc, pop)
        r_img = img.r_img.reindex(ec.index).fillna(0.0)
        r = pd.Series(composite(self.limits, r_qi.to_numpy(), r_img.to_numpy()), index=ec.index)
        return Eval(df, r_qi, ec, r_img, r.astype("float64"))

    def fails(self, ev: Eval) -> bool:
        lim = self.limits
        if not len(ev.r):
            return True
        return bool(ev.r.max() > lim.max_risk + EPS or ev.r.mean() > lim.max_mean_risk + EPS)

    def lattice(self) -> list[dict[str, str]]:
        """Every combination of levels within the profile's limits, least generalised first."""
        axes = []
        for col, rule in self.policy.generalisation.items():
            ladder = self.hier.get(rule.hierarchy)
            lo = ladder.index(rule.released_at)
            hi = ladder.index(self.limits.max_levels.get(col, rule.released_at))
            axes.append([(col, ladder.levels[i], i - lo) for i in range(lo, max(lo, hi) + 1)])
        nodes = [
            (sum(c[2] for c in combo), {c[0]: c[1] for c in combo})
            for combo in itertools.product(*axes)
        ]
        nodes.sort(key=lambda n: (n[0], sorted(n[1].items())))
        return [n for _, n in nodes] or [{}]

    def caps(self) -> list[int | None]:
        sizes = self.table.groupby(self.policy.patient_column).size()
        most = int(sizes.max()) if len(sizes) else 0
        low = self.limits.min_slides_per_patient
        return [None, *(range(most - 1, low - 1, -1) if most > low else [])]

    # --- the model ------------------------------------------------------------------------
    def search(self) -> Search:
        pc, sc = self.policy.patient_column, self.policy.slide_column
        nodes = self.lattice()
        general = [self.generalise(self.table, node) for node in nodes]
        losses = [cell_losses(self.table, g, self.qis) for g in general]
        pops = [self.population_at(node) for node in nodes]
        attempts: list[Attempt] = []
        images: dict[int | None, Image] = {}
        for cap in self.caps():
            in_cap = self.table[sc].isin(set(self.capped(self.table, cap)[sc])).to_numpy()
            images[cap] = img = self.image(self.table[in_cap])
            r_img = {str(p): float(v) for p, v in img.r_img.items()}
            for rank, node in enumerate(nodes):
                gen = general[rank][in_cap]
                sup, passed, mx, mean = greedy_suppression(
                    gen, self.qis, pc, r_img, self.limits, self.budget, pops[rank]
                )
                gone = self.table[pc].isin({s.patient for s in sup}).to_numpy()
                loss = table_loss(losses[rank], in_cap & ~gone, len(self.qis))
                attempts.append(
                    Attempt(node, cap, rank, tuple(sup), passed, loss, mx, mean, gen[pc].nunique())
                )
        best, n_passing = choose(attempts)
        return Search(tuple(attempts), best, n_passing, images)

    def run(self) -> CohortRisk:
        pc = self.policy.patient_column
        base = {c: g.released_at for c, g in self.policy.generalisation.items()}
        found = self.search()
        best = found.best
        before = self.evaluate(self.table, found.images[None], base)
        capped = self.capped(self.table, best.cap)
        at_cap = self.evaluate(capped, found.images[best.cap], base)
        at_node = self.evaluate(
            self.generalise(capped, best.levels), found.images[best.cap], best.levels
        )
        gone = {s.patient for s in best.suppressed}
        released = at_node.table[~at_node.table[pc].isin(gone)]
        final = self.evaluate(released, found.images[best.cap], best.levels)
        # the search's verdict is checked by scoring the released table again from scratch
        passed = best.passed and not self.fails(final)
        return build_result(self, found, before, at_cap, at_node, final, passed, base_levels=base)


def assess_cohort(
    table: pd.DataFrame,
    policy: RiskPolicy,
    limits: RiskLimits,
    hierarchies: Hierarchies,
    *,
    quasi_identifiers: Sequence[str],
    features: Mapping[str, np.ndarray] | None = None,
    population: pd.DataFrame | None = None,
) -> CohortRisk:
    """Score and mitigate the released (pseudonymised, generalised) table of a cohort over
    `quasi_identifiers` (slidegate.risk.qiset.column_roles: every published non-pseudonym)."""
    col = policy.patient_column
    if col in table.columns:
        bad = [i for i, p in enumerate(table[col], start=1) if not PSEUDONYM_RE.match(str(p))]
        if bad:
            raise SpecError(
                f"risk assessment needs the released table: patient column '{col}' is not "
                f"pseudonymised ({len(bad)} row(s), first at row {bad[0]}); build the release "
                "table first",
                reason="risk assessment was given a table with raw patient identifiers",
            )
    missing = [q for q in quasi_identifiers if q not in table.columns]
    if missing:
        raise SpecError(
            f"released table lacks quasi-identifier column(s) {missing}",
            reason="released table lacks a quasi-identifier column",
        )
    return RiskModel(
        table,
        policy,
        limits,
        hierarchies,
        quasi_identifiers=quasi_identifiers,
        features=features,
        population=population,
    ).run()
