"""k-anonymity on a hand-made table with known equivalence classes: every published row counts,
and classes count distinct patients."""

from __future__ import annotations

import pandas as pd
import pytest

from slidegate.errors import SpecError
from slidegate.risk.kanon import (
    equivalence_class_sizes,
    k_anonymity,
    marketer_risk,
    prosecutor_risk,
)

QI = ["age", "sex", "diagnosis", "site"]


def table() -> pd.DataFrame:
    rows = [
        # patient, age, sex, diagnosis, site   (several rows per patient: counted once)
        ("p-a", "60-69", "F", "C18.7", "colon"),
        ("p-a", "60-69", "F", "C18.7", "colon"),
        ("p-a", "60-69", "F", "C18.7", "colon"),
        ("p-b", "60-69", "F", "C18.7", "colon"),
        ("p-c", "60-69", "F", "C18.7", "colon"),  # EC1 = {a, b, c}
        ("p-d", "40-49", "M", "C20", "rectum"),
        ("p-e", "40-49", "M", "C20", "rectum"),  # EC2 = {d, e}
        ("p-f", "70-79", "M", "C20", "rectum"),  # EC3 = {f}: unique
        ("p-g", "70-79", "F", "C20", "rectum"),  # EC4 = {g}; its second row differs and
        ("p-g", "70-79", "M", "C20", "rectum"),  # joins f's tuple: that class is {f, g}
        ("p-h", "40-49", "M", "C20", "rectum"),  # h's first row joins {d, e}, its second
        ("p-h", "40-49", "M", "C20", "rectum"),  # (a repeat) adds nothing, its third is
        ("p-h", "50-59", "M", "C20", "rectum"),  # another age band: unique
    ]
    return pd.DataFrame(rows, columns=["patient", *QI])


def test_equivalence_classes_count_patients_through_every_row() -> None:
    sizes = equivalence_class_sizes(table(), QI, "patient")
    # g is unique through its first row although its second shares f's values; h is unique
    # through its third row although its first two share {d, e}'s values
    assert sizes.to_dict() == {
        "p-a": 3, "p-b": 3, "p-c": 3, "p-d": 3, "p-e": 3, "p-f": 2, "p-g": 1, "p-h": 1
    }  # fmt: skip


def test_prosecutor_marketer_k() -> None:
    risk = prosecutor_risk(table(), QI, "patient")
    assert risk["p-a"] == pytest.approx(1 / 3)
    assert risk["p-d"] == pytest.approx(1 / 3)  # d, e and h share d's tuple
    assert risk["p-f"] == 0.5 and risk["p-g"] == 1.0 and risk["p-h"] == 1.0
    assert marketer_risk(table(), QI, "patient") == pytest.approx((5 / 3 + 0.5 + 2) / 8)
    assert marketer_risk(table(), QI, "patient") == pytest.approx(risk.mean())
    assert k_anonymity(table(), QI, "patient") == 1
    assert k_anonymity(table()[~table()["patient"].isin(["p-g", "p-h"])], QI, "patient") == 1
    assert k_anonymity(table()[~table()["patient"].isin(["p-f", "p-g", "p-h"])], QI, "patient") == 2


def test_a_repeated_row_of_one_patient_is_not_a_class_of_two() -> None:
    rows = table()[table()["patient"] == "p-a"]  # three identical rows, one patient
    assert k_anonymity(rows, QI, "patient") == 1


def test_fewer_quasi_identifiers_merge_classes() -> None:
    sizes = equivalence_class_sizes(table(), ["sex"], "patient")
    # F: a, b, c, g; M: d, e, f, g, h. g has rows in both: its smaller class decides
    assert sizes.to_dict() == {
        "p-a": 4, "p-b": 4, "p-c": 4, "p-d": 5, "p-e": 5, "p-f": 5, "p-g": 4, "p-h": 5
    }  # fmt: skip


def test_no_quasi_identifier_is_one_class_of_everyone() -> None:
    assert set(equivalence_class_sizes(table(), [], "patient")) == {8}


def test_empty_table() -> None:
    empty = table().iloc[0:0]
    assert len(prosecutor_risk(empty, QI, "patient")) == 0
    assert k_anonymity(empty, QI, "patient") == 0
    assert marketer_risk(empty, QI, "patient") == 0.0


def test_missing_column_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match=r"\['year'\]"):
        prosecutor_risk(table(), [*QI, "year"], "patient")
