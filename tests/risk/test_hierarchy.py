"""Generalisation hierarchies: values, bad input, errors naming row + column only."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from slidegate.errors import SpecError
from slidegate.risk.hierarchy import (
    FORMATS,
    GeneralisationError,
    age_band,
    date_to,
    generalize_column,
)


@pytest.mark.parametrize(
    ("age", "width", "top", "band"),
    [
        (62, 10, None, "60-69"),
        ("62", 5, None, "60-64"),
        (" 7 ", 10, None, "0-9"),
        (0, 20, None, "0-19"),
        (79, 20, None, "60-79"),
        (89, 10, 90, "80-89"),
        (90, 10, 90, "90+"),
        (104, 10, 90, "90+"),
        (104, 10, None, "100-109"),
    ],
)
def test_age_band(age: int | str, width: int, top: int | None, band: str) -> None:
    assert age_band(age, width, top) == band
    assert re.search(FORMATS[("age", f"band{width}")], band)


@pytest.mark.parametrize("bad", ["sixty", "62.5", "-3", "", "131", 131, -1, "6 2"])
def test_age_band_rejects_without_echoing(bad: int | str) -> None:
    with pytest.raises(GeneralisationError) as err:
        age_band(bad, 10)
    if str(bad).strip():
        assert str(bad).strip() not in str(err.value)


def test_date_to() -> None:
    assert date_to("2019-03-14", "year") == "2019"
    assert date_to("2019-03-14", "month") == "2019-03"
    assert re.search(FORMATS[("date", "year")], "2019")
    assert re.search(FORMATS[("date", "month")], "2019-03")


@pytest.mark.parametrize("bad", ["14/03/2019", "2019-02-30", "20190314", "2019-3-14", "March"])
def test_date_to_rejects_without_echoing(bad: str) -> None:
    with pytest.raises(GeneralisationError) as err:
        date_to(bad, "year")
    assert bad not in str(err.value)


def test_generalize_column_keeps_index_and_empty_cells() -> None:
    s = pd.Series(["62", "", "45"], index=[7, 8, 9], name="age")
    out = generalize_column(s, "age", "age", "band10")
    assert list(out) == ["60-69", "", "40-49"]
    assert list(out.index) == [7, 8, 9]


def test_generalize_column_error_names_row_and_column_only() -> None:
    s = pd.Series(["2019-03-14", "2020-01-01", "31.12.2020"], name="collection_date")
    with pytest.raises(SpecError) as err:
        generalize_column(s, "collection_date", "date", "year")
    msg = str(err.value)
    assert "row 3 (CSV line 4)" in msg and "'collection_date'" in msg and "YYYY-MM-DD" in msg
    assert "31.12" not in msg and "2019" not in msg and "31.12" not in err.value.reason
