"""The cohort risk model with mitigation (DESIGN.md section 4, after Holub et al. 2023).

Per patient h: `R(h) = P(attack) * (1 - (1 - r_qi(h)) * (1 - P(ref) * r_img(h)))`, with r_qi the
prosecutor (or, given a population table, journalist) risk over the quasi-identifiers and r_img
the image-linkage risk (prior by relation and number of slides, and/or the empirical pi_max
match rate). The cohort passes when max R <= max_risk and mean R <= max_mean_risk.

Mitigation, in order, until the cohort passes or a limit is hit: (1) generalise along the
hierarchies, least information loss first, within the profile's max levels; (2) suppress the
patients still above max_risk, up to max_suppression of them; (3) cap slides per patient,
keeping the least linkable slides, down to min_slides_per_patient; (4) withhold the cohort.
Every step is recorded. Everything here is PHI-free: pseudonyms, generalised values, figures.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from slidegate.errors import SpecError
from slidegate.pseudonym import PSEUDONYM_RE
from slidegate.risk.kanon import equivalence_class_sizes
from slidegate.risk.ladders import Hierarchies
from slidegate.risk.linkage import AttackResult, linkability, pi_max_attack, prior_risk
from slidegate.risk.policy import RiskLimits, RiskPolicy
from slidegate.risk.qi import journalist_risk
from slidegate.risk.result import CohortRisk, PatientRisk, Step, attack_summary, qi_summary

_EPS = 1e-9


@dataclass
class _State:
    levels: dict[str, str]
    cap: int | None = None
    suppressed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Eval:
    table: pd.DataFrame  # generalised, capped
    r_qi: pd.Series
    ec: pd.Series
    r_prior: pd.Series
    r_emp: pd.Series
    r_img: pd.Series
    r: pd.Series  # R(h) for every patient
    attack: AttackResult | None


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
        self.link = linkability(
            {s: f for s, f in self.features.items() if s in self.owner}, self.owner
        )

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
        if cap is None:
            return df
        pc, sc = self.policy.patient_column, self.policy.slide_column
        order = df.assign(_l=df[sc].map(lambda s: self.link.get(s, 0.0))).sort_values(["_l", sc])
        kept = order.groupby(pc, sort=False).head(cap).drop(columns="_l")
        return df[df[sc].isin(set(kept[sc]))]

    def evaluate(self, state: _State, *, attack: bool = True) -> _Eval:
        pol, lim = self.policy, self.limits
        pc, sc = pol.patient_column, pol.slide_column
        df = self.capped(self.generalise(self.table, state.levels), state.cap)
        ec = equivalence_class_sizes(df, self.qis, pc)
        r_qi = 1.0 / ec.astype("float64")
        if self.population is not None:
            pop = self.generalise(self.population.fillna("").astype(str), state.levels)
            pop["count"] = pd.to_numeric(self.population["count"])
            r_qi = journalist_risk(df, self.qis, pc, pop)
        patients = ec.index
        prior = pd.Series(0.0, index=patients)
        emp = pd.Series(0.0, index=patients)
        result = None
        link = pol.image_linkage
        if link is not None:
            pr = link.priors
            for patient, rows in df.groupby(pc):
                pairs = list(zip(rows[link.block_column], rows[link.specimen_column], strict=True))
                prior[patient] = prior_risk(pairs, pr.same_block, pr.other_block, pr.other_specimen)
            feats = {s: self.features[s] for s in df[sc] if s in self.features}
            if attack and feats and link.estimate != "prior":
                result = pi_max_attack(feats, self.owner, link.draws, link.seed)
                for patient, rate in result.per_patient.items():
                    emp[patient] = rate
        if link is None or link.estimate == "prior":
            r_img = prior
        elif link.estimate == "empirical":
            r_img = emp
        else:
            r_img = np.maximum(prior, emp)
        r = lim.p_attack * (1.0 - (1.0 - r_qi) * (1.0 - lim.p_ref * r_img))
        return _Eval(
            df, r_qi, ec, prior, emp, pd.Series(r_img, index=patients), r.astype("float64"), result
        )

    def _fails(self, ev: _Eval, suppressed: list[str]) -> tuple[int, bool]:
        """(patients above max_risk among the kept, cohort fails)."""
        kept = ev.r.drop(index=[p for p in suppressed if p in ev.r.index])
        above = int((kept > self.limits.max_risk + _EPS).sum())
        mean_bad = bool(len(kept)) and float(kept.mean()) > self.limits.max_mean_risk + _EPS
        return above, above > 0 or mean_bad or len(kept) == 0

    def _suppress(self, ev: _Eval) -> list[str]:
        above = ev.r[ev.r > self.limits.max_risk + _EPS].sort_values(ascending=False)
        budget = math.floor(self.limits.max_suppression * len(ev.r) + _EPS)
        return [str(p) for p in above.index[:budget]]

    def _lattice(self) -> list[dict[str, str]]:
        axes = []
        for col, rule in self.policy.generalisation.items():
            ladder = self.hier.get(rule.hierarchy)
            lo = ladder.index(rule.released_at)
            hi = ladder.index(self.limits.max_levels.get(col, rule.released_at))
            axes.append(
                [
                    (col, ladder.levels[i], (i - lo) / max(1, len(ladder.levels) - 1 - lo))
                    for i in range(lo, max(lo, hi) + 1)
                ]
            )
        nodes = []
        for combo in itertools.product(*axes):
            loss = sum(c[2] for c in combo)
            nodes.append((loss, {c[0]: c[1] for c in combo}))
        nodes.sort(key=lambda n: (round(n[0], 9), sorted(n[1].items())))
        return [n for _, n in nodes] or [{}]

    # --- the model ------------------------------------------------------------------------
    def run(self) -> CohortRisk:
        lim = self.limits
        steps: list[Step] = []
        base_levels = {c: g.released_at for c, g in self.policy.generalisation.items()}
        state = _State(levels=dict(base_levels))
        before = self.evaluate(state)
        steps.append(
            self._step("assess", "released table as the metadata policy makes it", before, [])
        )

        # (1) generalise: first node (least loss) that passes, else the one with fewest above
        best: tuple[tuple[int, int], dict[str, str]] | None = None
        for rank, node in enumerate(self._lattice()):
            ev = self.evaluate(_State(levels=node), attack=False)
            above, fails = self._fails(ev, [])
            key = (above + (1 if fails and not above else 0), rank)
            if best is None or key < best[0]:
                best = (key, node)
            if not fails:
                break
        assert best is not None
        if best[1] != base_levels:
            state.levels = best[1]
            changed = {c: lv for c, lv in best[1].items() if base_levels.get(c) != lv}
            ev = self.evaluate(state)
            text = ", ".join(f"{c} -> {lv}" for c, lv in changed.items())
            steps.append(self._step("generalise", text, ev, []))
        else:
            ev = before
            why = (
                "not needed: the cohort passes as released"
                if not self._fails(ev, [])[1]
                else "no generalisation within the profile's limits lowers the risk further"
            )
            steps.append(self._step("generalise", why, ev, []))
        passed = not self._fails(ev, [])[1]

        # (2) suppress patients still above max_risk, up to the limit
        if not passed:
            state.suppressed = self._suppress(ev)
            passed = not self._fails(ev, state.suppressed)[1]
            steps.append(
                self._step(
                    "suppress",
                    f"{len(state.suppressed)} patient(s) above "
                    f"R {lim.max_risk:.2f} withheld (limit "
                    f"{lim.max_suppression:.0%} of patients)",
                    ev,
                    state.suppressed,
                )
            )

        # (3) cap slides per patient, keeping the least linkable
        if not passed:
            sizes = self.table.groupby(self.policy.patient_column).size()
            most = int(sizes.max()) if len(sizes) else 0  # no slide left: nothing to cap
            for cap in range(most - 1, lim.min_slides_per_patient - 1, -1):
                state.cap = cap
                ev = self.evaluate(state)
                state.suppressed = self._suppress(ev)
                passed = not self._fails(ev, state.suppressed)[1]
                steps.append(
                    self._step(
                        "cap",
                        f"at most {cap} slide(s) per patient, the least "
                        f"linkable kept; {len(state.suppressed)} patient(s) "
                        "suppressed",
                        ev,
                        state.suppressed,
                    )
                )
                if passed:
                    break
        final = ev
        reason = self._cohort_reason(final, state, passed)
        if not passed:
            steps.append(self._step("withhold", reason, final, state.suppressed))
        return self._result(before, final, state, steps, passed, reason)

    def _cohort_reason(self, ev: _Eval, state: _State, passed: bool) -> str:
        lim = self.limits
        kept = ev.r.drop(index=[p for p in state.suppressed if p in ev.r.index])
        mx = float(kept.max()) if len(kept) else 0.0
        mean = float(kept.mean()) if len(kept) else 0.0
        figures = (
            f"max R {mx:.2f} (limit {lim.max_risk:.2f}), mean R {mean:.2f} (limit "
            f"{lim.max_mean_risk:.2f}) over {len(kept)} patient(s)"
        )
        if passed:
            return f"passed: {figures}; {len(state.suppressed)} patient(s) suppressed"
        return (
            f"cohort withheld: {figures} after generalisation, suppression (limit "
            f"{lim.max_suppression:.0%}) and capping to {lim.min_slides_per_patient} slide(s) "
            "per patient; widen the generalisation limits or use a more controlled profile"
        )

    def _step(self, action: str, detail: str, ev: _Eval, suppressed: list[str]) -> Step:
        kept = ev.r.drop(index=[p for p in suppressed if p in ev.r.index])
        return Step(
            action=action,
            detail=detail,
            n_patients=len(kept),
            n_slides=int(ev.table[self.policy.patient_column].isin(kept.index).sum()),
            max_risk=float(kept.max()) if len(kept) else 0.0,
            mean_risk=float(kept.mean()) if len(kept) else 0.0,
            passed=not self._fails(ev, suppressed)[1],
        )

    def _result(
        self,
        before: _Eval,
        final: _Eval,
        state: _State,
        steps: list[Step],
        passed: bool,
        reason: str,
    ) -> CohortRisk:
        pol, lim = self.policy, self.limits
        pc, sc = pol.patient_column, pol.slide_column
        patients = []
        for p in before.r.index:
            r = float(final.r[p])
            n_slides = int((final.table[pc] == p).sum())
            common: dict[str, Any] = dict(
                patient=str(p),
                slides=n_slides,
                ec_size=int(final.ec[p]),
                r_qi=float(final.r_qi[p]),
                r_img_prior=float(final.r_prior[p]),
                r_img_empirical=float(final.r_emp[p]),
                risk_before=float(before.r[p]),
                risk=r,
            )
            why = (
                f"R {r:.2f} (r_qi {float(final.r_qi[p]):.2f}: equivalence class of "
                f"{int(final.ec[p])} patient(s) over {', '.join(self.qis)}; "
                f"r_img {float(final.r_img[p]):.2f} with "
                f"{n_slides} slide(s))"
            )
            if p in state.suppressed:
                patients.append(
                    PatientRisk(
                        **common, decision="withheld", reason=f"risk: {why} > {lim.max_risk:.2f}"
                    )
                )
            elif not passed:
                patients.append(
                    PatientRisk(**common, decision="withheld", reason=f"risk: {reason}")
                )
            else:
                patients.append(
                    PatientRisk(
                        **common, decision="approved", reason=f"risk: {why} <= {lim.max_risk:.2f}"
                    )
                )
        dropped = sorted(set(self.table[sc]) - set(final.table[sc]))
        slides = {
            s: f"risk: slide cap of {state.cap} per patient (the least linkable kept)"
            for s in dropped
        }
        released = (
            final.table[~final.table[pc].isin(state.suppressed)] if passed else final.table.iloc[:0]
        )
        after_attack = None
        feats = {s: self.features[s] for s in released[sc] if s in self.features}
        if feats and pol.image_linkage is not None:
            after_attack = pi_max_attack(
                feats, self.owner, pol.image_linkage.draws, pol.image_linkage.seed
            )
        return CohortRisk(
            quasi_identifiers=tuple(self.qis),
            inputs=self._inputs(),
            qi_before=qi_summary(self.table, pol, self.qis, self.population),
            qi_after=qi_summary(released, pol, self.qis, None),
            linkage_before=attack_summary(before.attack),
            linkage_after=attack_summary(after_attack),
            levels=dict(state.levels),
            cap=state.cap,
            steps=tuple(steps),
            patients=tuple(patients),
            withheld_slides=slides,
            passed=passed,
            reason=reason,
            released_table=released.reset_index(drop=True).to_dict(orient="list"),
        )

    def _inputs(self) -> dict[str, object]:
        lim, link = self.limits, self.policy.image_linkage
        return {
            "p_attack": lim.p_attack,
            "p_ref": lim.p_ref,
            "max_risk": lim.max_risk,
            "max_mean_risk": lim.max_mean_risk,
            "max_suppression": lim.max_suppression,
            "min_slides_per_patient": lim.min_slides_per_patient,
            "max_levels": dict(lim.max_levels),
            "sensitive": self.policy.sensitive,
            "population_table": self.population is not None,
            "image_linkage": None if link is None else link.model_dump(),
            "slides_with_features": len(self.features),
            "patients": int(self.table[self.policy.patient_column].nunique()),
            "slides": len(self.table),
        }


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
