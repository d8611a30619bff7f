"""Decide per patient and per cohort from quasi-identifier risk; the report is publishable.

Order: score every patient (prosecutor risk 1/|EC|); withhold the patients above
`max_prosecutor_risk`; recompute the cohort figures on what remains; if the mean risk still
exceeds `max_mean_risk`, withhold the whole cohort. The report holds pseudonyms and generalised
values only: `assess` refuses a table whose patient column is not pseudonymised.
"""

from __future__ import annotations

from typing import Any, Literal

import pandas as pd

from slidegate.errors import SpecError
from slidegate.models import Frozen
from slidegate.pseudonym import PSEUDONYM_RE
from slidegate.risk.kanon import equivalence_class_sizes
from slidegate.risk.policy import RiskPolicy

#: tolerance for comparing risks with thresholds (1/2 vs 0.5 must not count as "above")
_EPS = 1e-9


Decision = Literal["approved", "withheld"]


class PatientRisk(Frozen):
    patient: str  # pseudonym
    ec_size: int
    risk: float
    decision: Decision
    reason: str


class CohortStats(Frozen):
    n_patients: int
    k: int  # smallest equivalence class; 0 when empty
    max_risk: float
    mean_risk: float
    marketer_risk: float  # classes / patients (equals the mean prosecutor risk)


class RiskReport(Frozen):
    quasi_identifiers: tuple[str, ...]
    max_prosecutor_risk: float
    max_mean_risk: float
    before: CohortStats  # the whole cohort
    after: CohortStats  # after withholding the patients above the threshold
    passed: bool  # False: the whole cohort is withheld
    reason: str
    withheld_patients: tuple[str, ...]  # above the threshold (see `passed` for the cohort)
    patients: tuple[PatientRisk, ...]

    @property
    def approved_patients(self) -> frozenset[str]:
        return frozenset(p.patient for p in self.patients if p.decision == "approved")

    def patient_reason(self, patient: str) -> str:
        """The decision text for one patient pseudonym (KeyError if not in the report)."""
        for p in self.patients:
            if p.patient == patient:
                return p.reason
        raise KeyError("patient pseudonym not in the risk report")

    def figures(self) -> dict[str, float]:
        """Flat cohort figures for summaries and Prefect artifacts."""
        out: dict[str, float] = {}
        for label, s in (("cohort", self.before), ("released", self.after)):
            for name, value in s.model_dump().items():
                out[f"{label}_{name}"] = float(value)
        out["withheld_patients"] = float(len(self.withheld_patients))
        out["passed"] = 1.0 if self.passed else 0.0
        return out

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_markdown(self) -> str:
        qis = ", ".join(self.quasi_identifiers)
        lines = [
            "# Re-identification risk (quasi-identifiers)",
            "",
            f"- Quasi-identifiers: {qis}",
            f"- Thresholds: max prosecutor risk {self.max_prosecutor_risk:.2f}, "
            f"max mean risk {self.max_mean_risk:.2f}",
            f"- Result: **{'passed' if self.passed else 'cohort withheld'}**: {self.reason}",
            "",
            "| | patients | k | max risk | mean risk | marketer risk |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for label, s in (("whole cohort", self.before), ("after withholding", self.after)):
            lines.append(
                f"| {label} | {s.n_patients} | {s.k} | {s.max_risk:.2f} | {s.mean_risk:.2f} "
                f"| {s.marketer_risk:.2f} |"
            )
        withheld = [p for p in self.patients if p.decision == "withheld"]
        lines += ["", f"## Withheld patients ({len(withheld)})", ""]
        if withheld:
            lines += ["| patient | EC size | risk | reason |", "|---|---:|---:|---|"]
            lines += [
                f"| {p.patient} | {p.ec_size} | {p.risk:.2f} | {p.reason} |" for p in withheld
            ]
        else:
            lines.append("None.")
        return "\n".join(lines) + "\n"


def _stats(sizes: pd.Series) -> CohortStats:
    if sizes.empty:
        return CohortStats(n_patients=0, k=0, max_risk=0.0, mean_risk=0.0, marketer_risk=0.0)
    risks = 1.0 / sizes.astype("float64")
    return CohortStats(
        n_patients=len(sizes),
        k=int(sizes.min()),
        max_risk=float(risks.max()),
        mean_risk=float(risks.mean()),
        marketer_risk=float(risks.sum() / len(sizes)),  # sum of 1/|EC| = number of classes
    )


def _plural(n: int) -> str:
    return f"{n} patient" if n == 1 else f"{n} patients"


def assess(table: pd.DataFrame, policy: RiskPolicy) -> RiskReport:
    """Score the released (pseudonymised, generalised) table and decide per patient/cohort."""
    qis = policy.quasi_identifiers
    sizes = equivalence_class_sizes(table, qis, policy.patient_column)
    bad = [i for i, p in enumerate(sizes.index, start=1) if not PSEUDONYM_RE.match(str(p))]
    if bad:
        raise SpecError(
            f"risk assessment needs the released table: patient column "
            f"'{policy.patient_column}' is not pseudonymised ({len(bad)} patient(s), first at "
            f"position {bad[0]}); build the release table first",
            reason="risk assessment was given a table with raw patient identifiers",
        )
    qi_text = ", ".join(qis)
    limit = policy.max_prosecutor_risk
    above = sizes[(1.0 / sizes.astype("float64")) > limit + _EPS]
    kept_sizes = equivalence_class_sizes(
        table[~table[policy.patient_column].isin(above.index)], qis, policy.patient_column
    )
    before, after = _stats(sizes), _stats(kept_sizes)

    passed, cohort_reason = (
        True,
        (
            f"{_plural(after.n_patients)} approved, {_plural(len(above))} withheld; "
            f"max risk {after.max_risk:.2f} <= {limit:.2f}, "
            f"mean risk {after.mean_risk:.2f} <= {policy.max_mean_risk:.2f}"
        ),
    )
    if after.n_patients == 0:
        passed = False
        cohort_reason = (
            f"no patient has prosecutor risk <= {limit:.2f} over {qi_text}; generalise the "
            "quasi-identifiers further or use a controlled-access profile"
        )
    elif after.mean_risk > policy.max_mean_risk + _EPS:
        passed = False
        cohort_reason = (
            f"mean risk {after.mean_risk:.2f} > {policy.max_mean_risk:.2f} after withholding "
            f"{_plural(len(above))}; the whole cohort is withheld: generalise the "
            "quasi-identifiers further (e.g. wider age bands) or use a controlled-access profile"
        )

    patients = []
    for patient, size in sizes.items():
        n = int(size)
        decision: Decision = "approved"
        reason = f"prosecutor risk {1 / n:.2f} <= {limit:.2f} (equivalence class of {_plural(n)})"
        if patient in above.index:
            decision = "withheld"
            reason = (
                f"prosecutor risk {1 / n:.2f} > {limit:.2f} "
                f"(equivalence class of {_plural(n)} over {qi_text})"
            )
        elif not passed:
            decision, reason = "withheld", f"cohort withheld: {cohort_reason}"
        patients.append(
            PatientRisk(
                patient=str(patient), ec_size=n, risk=1 / n, decision=decision, reason=reason
            )
        )
    return RiskReport(
        quasi_identifiers=tuple(qis),
        max_prosecutor_risk=limit,
        max_mean_risk=policy.max_mean_risk,
        before=before,
        after=after,
        passed=passed,
        reason=cohort_reason,
        withheld_patients=tuple(str(p) for p in above.index),
        patients=tuple(patients),
    )


def approved_rows(table: pd.DataFrame, report: RiskReport, patient_column: str) -> pd.DataFrame:
    """The rows of `table` whose patient is approved (none when the cohort is withheld)."""
    return table[table[patient_column].isin(report.approved_patients)]
