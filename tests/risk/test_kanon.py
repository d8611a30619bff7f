"""k-anonymity on a hand-made table with known equivalence classes."""

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
        ("p-g", "70-79", "F", "C20", "rectum"),  # EC4 = {g}; its second row differs:
        ("p-g", "70-79", "M", "C20", "rectum"),  # only the first row counts
    ]
    return pd.DataFrame(rows, columns=["patient", *QI])


def test_equivalence_classes_count_patients_not_rows() -> None:
    sizes = equivalence_class_sizes(table(), QI, "patient")
    assert sizes.to_dict() == {"p-a": 3, "p-b": 3, "p-c": 3, "p-d": 2, "p-e": 2, "p-f": 1, "p-g": 1}


def test_prosecutor_marketer_k() -> None:
    risk = prosecutor_risk(table(), QI, "patient")
    assert risk["p-a"] == pytest.approx(1 / 3)
    assert risk["p-d"] == 0.5
    assert risk["p-f"] == 1.0 and risk["p-g"] == 1.0
    assert marketer_risk(table(), QI, "patient") == pytest.approx(4 / 7)
    assert marketer_risk(table(), QI, "patient") == pytest.approx(risk.mean())
    assert k_anonymity(table(), QI, "patient") == 1
    assert k_anonymity(table()[~table()["patient"].isin(["p-f", "p-g"])], QI, "patient") == 2


def test_fewer_quasi_identifiers_merge_classes() -> None:
    sizes = equivalence_class_sizes(table(), ["sex"], "patient")
    assert sizes.to_dict() == {"p-a": 4, "p-b": 4, "p-c": 4, "p-g": 4, "p-d": 3, "p-e": 3, "p-f": 3}


def test_empty_table() -> None:
    empty = table().iloc[0:0]
    assert len(prosecutor_risk(empty, QI, "patient")) == 0
    assert k_anonymity(empty, QI, "patient") == 0
    assert marketer_risk(empty, QI, "patient") == 0.0


def test_missing_column_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match=r"\['year'\]"):
        prosecutor_risk(table(), [*QI, "year"], "patient")
