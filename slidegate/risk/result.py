"""The risk model's result: PHI-free (pseudonyms, generalised values, figures), publishable."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import pandas as pd

from slidegate.models import Frozen
from slidegate.risk.linkage import AttackResult
from slidegate.risk.policy import RiskPolicy
from slidegate.risk.qi import qi_figures

Decision = Literal["approved", "withheld"]


class Step(Frozen):
    action: str  # assess | generalise | suppress | cap | withhold
    detail: str
    n_patients: int
    n_slides: int
    max_risk: float
    mean_risk: float
    passed: bool


class PatientRisk(Frozen):
    patient: str  # pseudonym
    slides: int  # slides released after the cap
    ec_size: int
    r_qi: float
    r_img_prior: float
    r_img_empirical: float
    #: which estimate gave r_img: prior, empirical (the pi_max attack), none (no linkage model)
    r_img_estimate: str = "prior"
    risk_before: float  # R before mitigation
    risk: float  # R after generalisation and capping
    decision: Decision
    reason: str
    #: why withheld (slidegate.risk.mitigate: risk.max_risk, risk.mean_risk, risk.cohort)
    rule: str | None = None


class CohortRisk(Frozen):
    quasi_identifiers: tuple[str, ...]
    inputs: dict[str, Any]
    qi_before: dict[str, Any]
    qi_after: dict[str, Any]
    linkage_before: dict[str, float] | None
    linkage_after: dict[str, float] | None
    levels: dict[str, str]  # generalisation level per column
    cap: int | None  # slides per patient, None = no cap
    steps: tuple[Step, ...]
    patients: tuple[PatientRisk, ...]
    withheld_slides: dict[str, str]  # slide pseudonym -> reason (cap)
    passed: bool
    reason: str
    #: information loss of the released table (LOSS_METRIC; 1.0 when the cohort is withheld)
    information_loss: float = 0.0
    loss_metric: str = ""
    #: the mitigated released table (approved rows), column -> values
    released_table: dict[str, list[Any]]

    @property
    def withheld_patients(self) -> tuple[str, ...]:
        return tuple(p.patient for p in self.patients if p.decision == "withheld")

    @property
    def approved_patients(self) -> frozenset[str]:
        return frozenset(p.patient for p in self.patients if p.decision == "approved")

    def patient_reason(self, patient: str) -> str:
        for p in self.patients:
            if p.patient == patient:
                return p.reason
        raise KeyError("patient pseudonym not in the risk report")

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(self.released_table, dtype="str")

    def figures(self) -> dict[str, float]:
        """Flat cohort figures for summaries, manifests and Prefect artifacts."""
        first, last = self.steps[0], self.steps[-1]
        out = {
            "patients": float(first.n_patients),
            "released_patients": float(last.n_patients if self.passed else 0),
            "max_risk_before": first.max_risk,
            "mean_risk_before": first.mean_risk,
            "max_risk": last.max_risk,
            "mean_risk": last.mean_risk,
            "withheld_patients": float(len(self.withheld_patients)),
            "k_before": float(self.qi_before.get("k", 0)),
            "k": float(self.qi_after.get("k", 0)),
            "passed": 1.0 if self.passed else 0.0,
            "information_loss": self.information_loss,
        }
        for label, link in (("before", self.linkage_before), ("after", self.linkage_after)):
            if link:
                out[f"v_pi_{label}"] = link["v_pi"]
                out[f"v_pi_chance_{label}"] = link["chance"]
        return out

    def to_dict(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        data.pop("released_table")
        return data


def qi_summary(
    table: pd.DataFrame,
    policy: RiskPolicy,
    quasi_identifiers: Sequence[str],
    population: pd.DataFrame | None,
) -> dict[str, Any]:
    if table.empty:
        return {"n_patients": 0, "k": 0}
    f = qi_figures(table, quasi_identifiers, policy.patient_column, policy.sensitive, population)
    return {
        "n_patients": f.n_patients,
        "k": f.k,
        "n_classes": f.n_classes,
        "prosecutor_max": f.prosecutor_max,
        "prosecutor_mean": f.prosecutor_mean,
        "marketer": f.marketer,
        "journalist_max": f.journalist_max,
        "l_diversity": f.l_diversity,
    }


def attack_summary(result: AttackResult | None) -> dict[str, float] | None:
    if result is None:
        return None
    return {
        "v_pi": result.v_pi,
        "v_pi_std": result.v_pi_std,
        "chance": result.chance,
        "draws": float(result.draws),
        "patients": float(result.n_patients),
    }
