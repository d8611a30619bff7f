"""Mitigation that is optimal and honest: classes recomputed after every suppression, the mean
limit met by suppression too, the least-loss lattice node chosen, loss and rule ids reported."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from slidegate.profile import load_policies
from slidegate.pseudonym import Pseudonymizer
from slidegate.risk.kanon import k_anonymity
from slidegate.risk.mitigate import RULE_MAX, RULE_MEAN, cell_losses, table_loss
from slidegate.risk.model import assess_cohort
from slidegate.risk.qiset import column_roles
from slidegate.risk.result import CohortRisk

P = Pseudonymizer(b"g" * 32)
QIS = ["age", "sex", "diagnosis", "site", "collection_year"]


def rows(patients: list[list[tuple[str, str]]]) -> pd.DataFrame:
    """patients: per patient, its slides as (age band, diagnosis); sex, site, year constant."""
    out = []
    for h, slides in enumerate(patients):
        for s, (age, dx) in enumerate(slides):
            out.append(
                {
                    "slide": P("s", f"{h}/{s}"),
                    "patient": P("p", str(h)),
                    "block": P("b", f"{h}/{s}"),
                    "specimen": P("x", str(h)),
                    "age": age,
                    "sex": "F",
                    "diagnosis": dx,
                    "site": "colon",
                    "collection_year": "2019",
                }
            )
    return pd.DataFrame(out)


#: limits of the mechanics tests (not a shipped profile's): quasi-identifiers only, P(attack) 1
BASE = {
    "p_attack": 1.0,
    "p_ref": 0.0,
    "max_risk": 0.5,
    "max_mean_risk": 1.0,
    "max_suppression": 0.4,
    "max_levels": {"age": "band20", "diagnosis": "category", "site": "organ"},
}


def run(policies_dir: Path, table: pd.DataFrame, **limits: object) -> CohortRisk:
    pol = load_policies(policies_dir, "open-access")
    lim = pol.profile.risk_limits.model_copy(update={**BASE, **limits})
    qis = column_roles(pol.metadata, pol.risk).quasi_identifiers
    return assess_cohort(table, pol.risk, lim, pol.hierarchies, quasi_identifiers=qis)


def test_the_partner_of_a_suppressed_patient_is_rescored(policies_dir: Path) -> None:
    # a and b share a row; a is also unique through its second slide. Once a is suppressed,
    # b is alone in its class: it must not be approved as "class of 2"
    table = rows(
        [
            [("40-49", "C18.7"), ("40-49", "C49.4")],  # a
            [("40-49", "C18.7")],  # b
            [("60-69", "C20"), ("60-69", "C20")],  # c
            [("60-69", "C20")],  # d
            [("60-69", "C20")],  # e
        ]
    )
    result = run(policies_dir, table, max_levels={}, max_risk=0.5, max_suppression=0.4)
    a, b = P("p", "0"), P("p", "1")
    assert result.passed
    rules = {p.patient: p.rule for p in result.patients if p.decision == "withheld"}
    assert rules == {a: RULE_MAX, b: RULE_MAX}
    released = result.table()
    assert set(released["patient"]) == {P("p", "2"), P("p", "3"), P("p", "4")}
    assert k_anonymity(released, QIS, "patient") == 3 == result.qi_after["k"]
    assert all(p.ec_size >= 3 for p in result.patients if p.decision == "approved")


def test_a_cohort_failing_only_the_mean_limit_is_released_after_suppression(
    policies_dir: Path,
) -> None:
    # 8 patients in one class, 2 unique: max R 1.0 is allowed, mean R 0.3 is not (<= 0.25)
    table = rows([[("60-69", "C20")]] * 8 + [[("40-49", "C49.4")], [("20-29", "D48.1")]])
    result = run(
        policies_dir, table, max_levels={}, max_risk=1.0, max_mean_risk=0.25, max_suppression=0.2
    )
    assert result.passed
    withheld = [p for p in result.patients if p.decision == "withheld"]
    assert len(withheld) == 1 and withheld[0].rule == RULE_MEAN
    assert "mean R > 0.25" in withheld[0].reason
    assert result.steps[-1].mean_risk == pytest.approx(2 / 9)
    assert result.steps[-1].action == "suppress" and "[risk.mean_risk]" in result.steps[-1].detail


def test_the_least_loss_node_is_chosen(policies_dir: Path) -> None:
    # a-d are unique; ages 40-49/50-59 -> 40-59 or codes C18.7/C18.2 -> C18 each make pairs.
    # The other patients' ages stay alone in their 20-year band (no loss), their diagnosis is
    # one code: age -> band20 costs 4 cells x 1/4, diagnosis -> category 4 cells x 1/2.
    pairs = [("20-29", "C61"), ("60-69", "C61"), ("80-89", "C61")]
    table = rows(
        [
            [("40-49", "C18.7")],
            [("50-59", "C18.7")],
            [("40-49", "C18.2")],
            [("50-59", "C18.2")],
            *[[p] for p in pairs for _ in range(2)],
        ]
    )
    result = run(policies_dir, table, max_risk=0.5, max_mean_risk=0.5)
    assert result.passed and not result.withheld_patients
    assert result.levels["age"] == "band20" and result.levels["diagnosis"] == "code"
    assert result.information_loss == pytest.approx(4 * (1 / 4) / (10 * 5))
    assert "information loss 0.020" in result.steps[1].detail
    assert "Iyengar" in result.loss_metric
    # the other node passes too, at twice the loss
    pol = load_policies(policies_dir, "open-access")
    from slidegate.risk.model import RiskModel

    model = RiskModel(
        table, pol.risk, pol.profile.risk_limits, pol.hierarchies, quasi_identifiers=QIS
    )
    dx = model.generalise(model.table, {**result.levels, "age": "band10", "diagnosis": "category"})
    loss = table_loss(cell_losses(model.table, dx, QIS), (dx.index >= 0), len(QIS))
    assert loss == pytest.approx(4 * (1 / 2) / (10 * 5))


def test_suppressing_one_patient_beats_generalising_everyone(policies_dir: Path) -> None:
    # one rare patient among 20 in pairs: suppressing it loses 1/20 of the cells; any
    # generalisation that would hide it costs more
    table = rows(
        [[(f"{a}-{a + 9}", dx)] for a in (20, 40, 60) for dx in ("C18.7", "C20.1", "C50.9")] * 2
        + [[("40-49", "C49.4")]]
    )
    result = run(policies_dir, table, max_risk=0.5, max_mean_risk=0.5, max_suppression=0.2)
    assert result.passed
    assert result.levels["age"] == "band10" and result.levels["diagnosis"] == "code"
    assert [p.rule for p in result.patients if p.decision == "withheld"] == [RULE_MAX]
    assert result.information_loss == pytest.approx(1 / 19)


def test_reports_name_rules_and_columns_never_values(policies_dir: Path) -> None:
    table = rows([[("40-49", "C49.4")], [("40-49", "C18.7")], [("40-49", "C18.7")]])
    result = run(policies_dir, table, max_levels={}, max_risk=0.5, max_suppression=0.4)
    assert result.passed and result.withheld_patients == (P("p", "0"),)
    text = " ".join(
        [p.reason for p in result.patients] + [s.detail for s in result.steps] + [result.reason]
    )
    assert "[risk.max_risk]" in text and "information loss" in text
    for value in ("C49.4", "C18.7", "40-49", "colon", "2019"):
        assert value not in text
    assert result.figures()["information_loss"] == pytest.approx(1 / 3)
