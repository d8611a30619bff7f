"""Risk policy loading is strict."""

from __future__ import annotations

from pathlib import Path

import pytest

from slidegate.errors import PolicyError
from slidegate.risk.policy import load_risk_policy


def test_shipped_policies_load(policies_dir: Path) -> None:
    open_ = load_risk_policy(policies_dir / "risk" / "open.yaml")
    controlled = load_risk_policy(policies_dir / "risk" / "controlled.yaml")
    assert open_.max_prosecutor_risk == 0.5 and open_.max_mean_risk == 0.5
    assert controlled.max_prosecutor_risk >= open_.max_prosecutor_risk
    assert controlled.max_mean_risk >= open_.max_mean_risk
    assert open_.quasi_identifiers == ["age", "sex", "diagnosis", "site"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("max_prosecuter_risk: 0.5\n", "unknown key 'max_prosecuter_risk'"),
        ("p_attack: 1.0\n", "unknown key 'p_attack'"),
        ("max_prosecutor_risk: 0\n", "max_prosecutor_risk"),
        ("max_prosecutor_risk: 1.5\n", "max_prosecutor_risk"),
        ("quasi_identifiers: [age, age]\n", "twice"),
        ("quasi_identifiers: [age, patient]\n", "patient column"),
    ],
)
def test_bad_risk_policy(tmp_path: Path, body: str, needle: str) -> None:
    base = {
        "quasi_identifiers": "quasi_identifiers: [age, sex]\n",
        "max_prosecutor_risk": "max_prosecutor_risk: 0.5\n",
        "max_mean_risk": "max_mean_risk: 0.3\n",
    }
    key = body.split(":")[0]
    base[key] = body
    path = tmp_path / "risk.yaml"
    path.write_text("".join(base.values()), encoding="utf-8")
    with pytest.raises(PolicyError) as err:
        load_risk_policy(path)
    assert needle in str(err.value) and str(path) in str(err.value)
