"""Cohort table: reading, pseudonymisation, generalisation, default-deny columns."""

from __future__ import annotations

from pathlib import Path

import pytest

from slidegate.cohort import build_release_table, read_cohort
from slidegate.errors import SpecError
from slidegate.pseudonym import PSEUDONYM_RE, Pseudonymizer
from slidegate.validate.policy import MetadataPolicy, load_metadata_policy

HEADER = "slide,patient,block,specimen,age,sex,diagnosis,site,collection_date,name,notes\n"
ROWS = [
    "case-A/slide1.svs,MRN-1001,B17-1234-A1,S17-1234,62,F,C18.7,colon,2019-03-14,Jane Roe,\n",
    "case-A/slide2.svs,MRN-1001,B17-1234-A2,S17-1234,62,F,C18.7,colon,2019-03-14,Jane Roe,x\n",
    "case-B/slide3.svs,MRN-2002,B18-5678-A1,S18-5678,93,M,C20,rectum,2020-11-02,John Doe,\n",
]


@pytest.fixture(scope="module")
def policy(policies_dir: Path) -> MetadataPolicy:
    return load_metadata_policy(policies_dir / "metadata" / "cohort.yaml")


@pytest.fixture
def pseudo() -> Pseudonymizer:
    return Pseudonymizer(b"k" * 32)


def write(tmp_path: Path, rows: list[str], header: str = HEADER) -> Path:
    path = tmp_path / "cohort.csv"
    path.write_text(header + "".join(rows), encoding="utf-8")
    return path


def test_read_cohort_keeps_strings_and_empty_cells(tmp_path: Path) -> None:
    df = read_cohort(write(tmp_path, ROWS))
    assert list(df.columns) == HEADER.strip().split(",")
    assert df.loc[0, "age"] == "62" and isinstance(df.loc[0, "age"], str)
    assert df.loc[0, "notes"] == ""  # not NaN
    assert df.loc[1, "notes"] == "x"


def test_release_table_pseudonymises_generalises_and_drops(
    tmp_path: Path, policy: MetadataPolicy, pseudo: Pseudonymizer
) -> None:
    df = read_cohort(write(tmp_path, ROWS))
    df.index = [10, 11, 12]  # source index is kept for mapping rows back
    rel = build_release_table(df, policy, pseudo)
    t = rel.table
    assert list(t.columns) == [
        "slide", "patient", "block", "specimen", "age", "sex", "diagnosis", "site",
        "collection_year",
    ]  # fmt: skip
    assert rel.dropped_columns == ("name", "notes")  # collection_date is released renamed
    assert list(t.index) == [10, 11, 12]
    assert t.loc[10, "slide"] == pseudo("s", "case-A/slide1.svs")
    assert t.loc[10, "patient"] == t.loc[11, "patient"] == pseudo("p", "MRN-1001")
    assert t.loc[10, "block"] != t.loc[11, "block"]
    for kind, col in (("s", "slide"), ("p", "patient"), ("b", "block"), ("x", "specimen")):
        assert all(PSEUDONYM_RE.match(v) and v.startswith(kind + "-") for v in t[col])
    assert list(t["age"]) == ["60-69", "60-69", "90+"]
    assert list(t["collection_year"]) == ["2019", "2019", "2020"]
    assert list(t["sex"]) == ["F", "F", "M"]
    text = t.to_csv()
    for raw in ("MRN-", "case-A", "slide1", "B17-", "S17-", "Jane", "2019-03", "62"):
        assert raw not in text


def test_bad_age_names_row_and_column_not_value(
    tmp_path: Path, policy: MetadataPolicy, pseudo: Pseudonymizer
) -> None:
    rows = [*ROWS[:1], ROWS[1].replace(",62,", ",sixty-two,")]
    with pytest.raises(SpecError) as err:
        build_release_table(read_cohort(write(tmp_path, rows)), policy, pseudo)
    msg = str(err.value)
    assert "row 2" in msg and "CSV line 3" in msg and "'age'" in msg
    assert "sixty" not in msg and "sixty" not in err.value.reason


def test_bad_date_names_row_and_column(
    tmp_path: Path, policy: MetadataPolicy, pseudo: Pseudonymizer
) -> None:
    rows = [*ROWS[:2], ROWS[2].replace("2020-11-02", "02/11/2020")]
    with pytest.raises(SpecError, match=r"row 3 .*'collection_date'") as err:
        build_release_table(read_cohort(write(tmp_path, rows)), policy, pseudo)
    assert "02/11" not in str(err.value)


def test_empty_identifier_is_an_error(
    tmp_path: Path, policy: MetadataPolicy, pseudo: Pseudonymizer
) -> None:
    rows = [*ROWS[:2], ROWS[2].replace("MRN-2002", "")]
    with pytest.raises(SpecError, match=r"row 3 .*'patient' is empty"):
        build_release_table(read_cohort(write(tmp_path, rows)), policy, pseudo)


def test_duplicate_slide_is_an_error(
    tmp_path: Path, policy: MetadataPolicy, pseudo: Pseudonymizer
) -> None:
    rows = [*ROWS, ROWS[0]]
    with pytest.raises(SpecError, match=r"rows 1 and 4.*'slide'") as err:
        build_release_table(read_cohort(write(tmp_path, rows)), policy, pseudo)
    assert "slide1" not in str(err.value)


def test_missing_policy_column_is_an_error(
    tmp_path: Path, policy: MetadataPolicy, pseudo: Pseudonymizer
) -> None:
    header = HEADER.replace("site,", "where,")
    with pytest.raises(SpecError, match=r"lacks column\(s\) \['site'\]"):
        build_release_table(read_cohort(write(tmp_path, ROWS, header)), policy, pseudo)


def test_duplicate_header_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="duplicate or empty header"):
        read_cohort(write(tmp_path, ROWS, HEADER.replace("notes", "age")))


def test_missing_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="not found"):
        read_cohort(tmp_path / "nope.csv")
