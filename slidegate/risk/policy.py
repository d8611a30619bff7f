"""Risk policy: which released columns are quasi-identifiers and the thresholds a cohort must meet.

This is the quasi-identifier part of the risk model (docs: DESIGN.md section 4). Access-mode
P(attack), P(ref), image linkage and mitigation limits will be added here when implemented.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from slidegate.policy import StrictModel, load_yaml_model


class RiskPolicy(StrictModel):
    #: column names in the *released* (generalised) table, e.g. age, sex, diagnosis, site
    quasi_identifiers: list[str] = Field(min_length=1)
    #: a patient whose 1/|EC| exceeds this is withheld; 0.5 means k >= 2
    max_prosecutor_risk: float = Field(gt=0, le=1)
    #: the cohort is withheld when the mean risk of what remains exceeds this
    max_mean_risk: float = Field(gt=0, le=1)
    patient_column: str = "patient"

    @model_validator(mode="after")
    def _consistent(self) -> RiskPolicy:
        if len(set(self.quasi_identifiers)) != len(self.quasi_identifiers):
            raise ValueError("quasi_identifiers lists a column twice")
        if self.patient_column in self.quasi_identifiers:
            raise ValueError("the patient column cannot be a quasi-identifier")
        return self


def load_risk_policy(path: Path) -> RiskPolicy:
    """Load a risk policy YAML; unknown keys or bad values raise PolicyError."""
    return load_yaml_model(path, RiskPolicy)
