"""The risk model's report: steps, per-patient decisions with rule ids, loss, released table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from slidegate.risk.linkage import AttackResult, pi_max_attack
from slidegate.risk.mitigate import LOSS_METRIC, RULE_CAP, RULE_COHORT, RULE_MAX, RULE_MEAN
from slidegate.risk.result import CohortRisk, PatientRisk, Step, attack_summary, qi_summary

if TYPE_CHECKING:
    from slidegate.risk.model import RiskModel, Search


@dataclass(frozen=True)
class Image:
    prior: pd.Series  # per patient
    empirical: pd.Series
    r_img: pd.Series
    attack: AttackResult | None
    decided: pd.Series  # per patient: the estimate that gave r_img (prior / empirical / none)


@dataclass(frozen=True)
class Eval:
    table: pd.DataFrame  # the rows scored
    r_qi: pd.Series  # per patient of `table`
    ec: pd.Series
    r_img: pd.Series
    r: pd.Series  # R(h)


def _step(model: RiskModel, action: str, detail: str, ev: Eval) -> Step:
    return Step(
        action=action,
        detail=detail,
        n_patients=len(ev.r),
        n_slides=len(ev.table),
        max_risk=float(ev.r.max()) if len(ev.r) else 0.0,
        mean_risk=float(ev.r.mean()) if len(ev.r) else 0.0,
        passed=not model.fails(ev),
    )


def _steps(
    model: RiskModel,
    found: Search,
    before: Eval,
    at_cap: Eval,
    at_node: Eval,
    final: Eval,
    passed: bool,
    base_levels: dict[str, str],
    reason: str,
) -> list[Step]:
    lim, best = model.limits, found.best
    steps = [_step(model, "assess", "released table as the metadata policy makes it", before)]
    if best.cap is not None:
        n = len(before.table) - len(at_cap.table)
        steps.append(
            _step(
                model,
                "cap",
                f"at most {best.cap} slide(s) per patient, the least linkable kept: {n} "
                f"slide(s) withheld [{RULE_CAP}]",
                at_cap,
            )
        )
    changed = {c: lv for c, lv in best.levels.items() if base_levels.get(c) != lv}
    searched = (
        f"{len(found.attempts)} attempt(s) searched ({len(model.lattice())} lattice node(s) x "
        f"{len(found.images)} cap(s)), {found.n_passing} pass"
    )
    if changed:
        text = ", ".join(f"{c} -> {lv}" for c, lv in changed.items())
        detail = f"{text}; information loss {best.loss:.3f}; {searched}"
    elif found.n_passing:
        detail = f"not needed: least information loss ({best.loss:.3f}) as released; {searched}"
    else:
        detail = f"no generalisation within the profile's limits passes; {searched}"
    steps.append(_step(model, "generalise", detail, at_node))
    if best.suppressed or not passed:
        n_max = sum(s.rule == RULE_MAX for s in best.suppressed)
        n_mean = len(best.suppressed) - n_max
        steps.append(
            _step(
                model,
                "suppress",
                f"{len(best.suppressed)} patient(s) suppressed, every class recomputed after each "
                f"round: {n_max} with R above {lim.max_risk:.2f} [{RULE_MAX}], {n_mean} "
                f"for mean R above {lim.max_mean_risk:.2f} [{RULE_MEAN}] (limit "
                f"{lim.max_suppression:.0%} = {model.budget} patient(s))",
                final,
            )
        )
    if not passed:
        steps.append(_step(model, "withhold", reason, final))
    return steps


def _reason(model: RiskModel, final: Eval, found: Search, passed: bool) -> str:
    lim, best = model.limits, found.best
    mx = float(final.r.max()) if len(final.r) else 0.0
    mean = float(final.r.mean()) if len(final.r) else 0.0
    figures = (
        f"max R {mx:.2f} (limit {lim.max_risk:.2f}), mean R {mean:.2f} (limit "
        f"{lim.max_mean_risk:.2f}) over {len(final.r)} patient(s)"
    )
    if passed:
        return (
            f"passed: {figures}; {len(best.suppressed)} patient(s) suppressed; information "
            f"loss {best.loss:.3f}"
        )
    return (
        f"cohort withheld [{RULE_COHORT}]: {figures} at best after generalisation, suppression "
        f"(limit {lim.max_suppression:.0%}) and capping to {lim.min_slides_per_patient} "
        "slide(s) per patient; widen the generalisation limits or use a more controlled profile"
    )


def estimate_note(img: Image, patient: str, n_slides: int) -> str:
    """Which estimate gave the patient's r_img, and why (one released slide: the attack has no
    probe for them, the prior for their relation scores them)."""
    decided = str(img.decided.get(patient, "prior"))
    if decided == "none":
        return "no image-linkage model"
    if decided == "empirical":
        return "empirical: pi_max match rate"
    if n_slides <= 1 and img.attack is not None:
        return "prior: one released slide, the attack cannot measure it"
    return "prior"


def _why(model: RiskModel, ev: Eval, img: Any, patient: str, n_slides: int) -> str:
    return (
        f"R {float(ev.r[patient]):.2f} (r_qi {float(ev.r_qi[patient]):.2f}: smallest class "
        f"{int(ev.ec[patient])} patient(s) through one of their {n_slides} published row(s) "
        f"over {', '.join(model.qis)}; r_img {float(img.r_img.get(patient, 0.0)):.2f} "
        f"({estimate_note(img, patient, n_slides)}))"
    )


def build_result(
    model: RiskModel,
    found: Search,
    before: Eval,
    at_cap: Eval,
    at_node: Eval,
    final: Eval,
    passed: bool,
    *,
    base_levels: dict[str, str],
) -> CohortRisk:
    pol, lim, best = model.policy, model.limits, found.best
    pc, sc = pol.patient_column, pol.slide_column
    img = found.images[best.cap]
    reason = _reason(model, final, found, passed)
    suppressed = {s.patient: s for s in best.suppressed}
    slides = at_node.table.groupby(pc).size()
    patients = []
    for p in before.r.index:
        n = int(slides.get(p, 0))
        common: dict[str, Any] = dict(
            patient=str(p),
            slides=n,
            r_img_prior=float(img.prior.get(p, 0.0)),
            r_img_empirical=float(img.empirical.get(p, 0.0)),
            r_img_estimate=str(img.decided.get(p, "prior")),
            risk_before=float(before.r[p]),
        )
        if p in suppressed:
            s = suppressed[p]
            why = (
                f"R {s.risk:.2f} > {lim.max_risk:.2f}"
                if s.rule == RULE_MAX
                else f"R {s.risk:.2f}, the highest while mean R > {lim.max_mean_risk:.2f}"
            )
            patients.append(
                PatientRisk(
                    **common,
                    ec_size=s.ec_size,
                    r_qi=s.r_qi,
                    risk=s.risk,
                    decision="withheld",
                    rule=s.rule,
                    reason=f"risk [{s.rule}]: {why} (r_qi {s.r_qi:.2f}: smallest class "
                    f"{s.ec_size} patient(s); suppressed)",
                )
            )
            continue
        ev = final if p in final.r.index else at_node
        figures: dict[str, Any] = dict(
            ec_size=int(ev.ec[p]), r_qi=float(ev.r_qi[p]), risk=float(ev.r[p])
        )
        why = _why(model, ev, img, p, n)
        if passed:
            patients.append(
                PatientRisk(
                    **common,
                    **figures,
                    decision="approved",
                    reason=f"risk: {why} <= {lim.max_risk:.2f}",
                )
            )
        else:
            patients.append(
                PatientRisk(
                    **common,
                    **figures,
                    decision="withheld",
                    rule=RULE_COHORT,
                    reason=f"risk: {reason}",
                )
            )
    dropped = sorted(set(model.table[sc]) - set(at_cap.table[sc]))
    withheld_slides = {
        s: f"risk [{RULE_CAP}]: slide cap of {best.cap} per patient (the least linkable kept)"
        for s in dropped
    }
    released = final.table if passed else final.table.iloc[:0]
    after_attack = None
    rel = [s for s in released[sc] if s in model.pairwise.index]
    if rel and pol.image_linkage is not None:
        after_attack = pi_max_attack(
            model.pairwise,
            model.owner,
            pol.image_linkage.draws,
            pol.image_linkage.seed,
            slides=rel,
        )
    return CohortRisk(
        quasi_identifiers=tuple(model.qis),
        inputs=_inputs(model),
        qi_before=qi_summary(model.table, pol, model.qis, model.population),
        qi_after=qi_summary(released, pol, model.qis, None),
        linkage_before=attack_summary(found.images[None].attack),
        linkage_after=attack_summary(after_attack),
        levels=dict(best.levels),
        cap=best.cap,
        steps=tuple(
            _steps(model, found, before, at_cap, at_node, final, passed, base_levels, reason)
        ),
        patients=tuple(patients),
        withheld_slides=withheld_slides,
        passed=passed,
        reason=reason,
        information_loss=best.loss if passed else 1.0,
        loss_metric=LOSS_METRIC,
        released_table=released.reset_index(drop=True).to_dict(orient="list"),
    )


def _inputs(model: RiskModel) -> dict[str, object]:
    lim, link = model.limits, model.policy.image_linkage
    return {
        "p_attack": lim.p_attack,
        "p_ref": lim.p_ref,
        "max_risk": lim.max_risk,
        "max_mean_risk": lim.max_mean_risk,
        "max_suppression": lim.max_suppression,
        "min_slides_per_patient": lim.min_slides_per_patient,
        "max_levels": dict(lim.max_levels),
        "sensitive": model.policy.sensitive,
        "population_table": model.population is not None,
        "image_linkage": None if link is None else link.model_dump(),
        "slides_with_features": len(model.features),
        "patients": model.n_patients,
        "slides": len(model.table),
    }
