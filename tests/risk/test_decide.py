"""Per-patient and cohort decisions on hand-made released tables."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from slidegate.errors import SpecError
from slidegate.pseudonym import Pseudonymizer
from slidegate.risk.decide import approved_rows, assess
from slidegate.risk.policy import RiskPolicy

QI = ["age", "sex", "diagnosis", "site"]
OPEN = RiskPolicy(quasi_identifiers=QI, max_prosecutor_risk=0.5, max_mean_risk=0.3)
P = Pseudonymizer(b"t" * 32)


def released(groups: list[tuple[int, tuple[str, str, str, str]]], slides: int = 2) -> pd.DataFrame:
    """`groups`: (number of patients, QI tuple); each patient gets `slides` rows."""
    rows = []
    n = 0
    for count, qis in groups:
        for _ in range(count):
            n += 1
            for s in range(slides):
                rows.append((P("s", f"{n}/{s}"), P("p", f"patient-{n}"), *qis))
    return pd.DataFrame(rows, columns=["slide", "patient", *QI])


BIG = (5, ("60-69", "F", "C18.7", "colon"))
PAIR = (2, ("40-49", "M", "C20", "rectum"))
RARE = (1, ("90+", "M", "C49.4", "colon"))


def test_rare_patient_withheld_pair_kept() -> None:
    table = released([BIG, PAIR, RARE])
    report = assess(table, OPEN)
    rare = P("p", "patient-8")
    assert report.passed
    assert report.withheld_patients == (rare,)
    by = {p.patient: p for p in report.patients}
    assert by[rare].decision == "withheld" and by[rare].ec_size == 1
    assert by[rare].reason == (
        "prosecutor risk 1.00 > 0.50 "
        "(equivalence class of 1 patient over age, sex, diagnosis, site)"
    )
    pair = [by[P("p", f"patient-{i}")] for i in (6, 7)]
    assert all(p.decision == "approved" and p.ec_size == 2 and p.risk == 0.5 for p in pair)
    assert report.before.n_patients == 8 and report.before.k == 1
    assert report.before.max_risk == 1.0
    assert report.before.marketer_risk == pytest.approx(3 / 8)
    assert report.after.n_patients == 7 and report.after.k == 2
    assert report.after.max_risk == 0.5
    assert report.after.mean_risk == pytest.approx(2 / 7)
    kept = approved_rows(table, report, "patient")
    assert len(kept) == 14 and rare not in set(kept["patient"])
    assert list(kept.index) == list(table.index[:14])  # source rows map back


def test_cohort_of_pairs_fails_mean_risk() -> None:
    report = assess(released([PAIR, (2, ("50-59", "F", "C18.7", "colon"))]), OPEN)
    assert not report.passed
    assert report.withheld_patients == ()
    assert report.after.mean_risk == 0.5
    assert "mean risk 0.50 > 0.30" in report.reason and "whole cohort is withheld" in report.reason
    assert report.approved_patients == frozenset()
    assert all(p.reason.startswith("cohort withheld: mean risk") for p in report.patients)


def test_all_unique_fails() -> None:
    report = assess(released([RARE, (1, ("40-49", "F", "C20", "rectum"))]), OPEN)
    assert not report.passed and report.after.n_patients == 0
    assert "no patient has prosecutor risk <= 0.50" in report.reason


def test_controlled_threshold_keeps_unique() -> None:
    loose = RiskPolicy(quasi_identifiers=QI, max_prosecutor_risk=1.0, max_mean_risk=0.5)
    report = assess(released([BIG, PAIR, RARE]), loose)
    assert report.passed and report.withheld_patients == ()
    assert report.after.mean_risk == pytest.approx(3 / 8)


def test_report_is_json_and_markdown_without_raw_ids() -> None:
    report = assess(released([BIG, PAIR, RARE]), OPEN)
    text = json.dumps(report.to_dict())
    md = report.to_markdown()
    assert json.loads(text)["after"]["k"] == 2
    assert P("p", "patient-8") in md and "prosecutor risk 1.00 > 0.50" in md
    assert "| after withholding | 7 | 2 | 0.50 | 0.29 | 0.29 |" in md
    for out in (text, md):
        assert "patient-" not in out


def test_raw_patient_ids_are_refused() -> None:
    table = released([BIG])
    table["patient"] = [f"MRN-{i // 2}" for i in range(len(table))]
    with pytest.raises(SpecError, match="not pseudonymised") as err:
        assess(table, OPEN)
    assert "MRN" not in str(err.value)


def test_patient_reason_and_figures() -> None:
    report = assess(released([BIG, PAIR, RARE]), OPEN)
    rare = P("p", "patient-8")
    assert report.patient_reason(rare).startswith("prosecutor risk 1.00 > 0.50")
    with pytest.raises(KeyError):
        report.patient_reason("p-0000000000000000")
    fig = report.figures()
    assert fig["cohort_n_patients"] == 8 and fig["released_n_patients"] == 7
    assert fig["released_k"] == 2 and fig["cohort_max_risk"] == 1.0
    assert fig["withheld_patients"] == 1 and fig["passed"] == 1.0
    assert all(isinstance(v, float) for v in fig.values())
