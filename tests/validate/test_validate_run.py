"""Real Great Expectations runs on released tables; results must carry no data values."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from slidegate.cohort import build_release_table
from slidegate.pseudonym import Pseudonymizer
from slidegate.validate.policy import MetadataPolicy, load_metadata_policy
from slidegate.validate.run import ValidationOutcome, validate_tables

P = Pseudonymizer(b"v" * 32)
CANARY = "CANARY-7f3a"


@pytest.fixture(scope="module")
def policy(policies_dir: Path) -> MetadataPolicy:
    return load_metadata_policy(policies_dir / "metadata" / "cohort.yaml")


@pytest.fixture
def cohort(policy: MetadataPolicy) -> pd.DataFrame:
    source = pd.DataFrame(
        {
            "slide": ["a/1.svs", "a/2.svs", "b/3.svs"],
            "patient": ["MRN1", "MRN1", "MRN2"],
            "block": ["B1", "B2", "B3"],
            "specimen": ["S1", "S1", "S2"],
            "age": ["62", "62", "47"],
            "sex": ["F", "F", "M"],
            "diagnosis": ["C18.7", "C18.7", "C20"],
            "site": ["colon", "colon", "rectum"],
            "collection_date": ["2019-03-14", "2019-03-14", "2020-01-02"],
            "name": ["Jane Roe", "Jane Roe", "John Doe"],
        }
    )
    return build_release_table(source, policy, P).table


@pytest.fixture
def metadata(cohort: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for slide in cohort["slide"]:
        rows += [
            (slide, "aperio.AppMag", "20"),
            (slide, "aperio.MPP", "0.4990"),
            (slide, "scan_year", "2009"),
            (slide, "aperio.Gamma", "2.2"),
        ]
    return pd.DataFrame(rows, columns=["slide", "key", "value"])


def no_values(outcome: ValidationOutcome, *raw: str) -> None:
    text = json.dumps(outcome.results) + "\n".join(outcome.blocking_failures + outcome.warnings)
    assert "partial_unexpected" not in text and "unexpected_index" not in text
    for value in raw:
        assert value not in text, value


def test_clean_tables_pass(cohort: pd.DataFrame, metadata: pd.DataFrame, policy) -> None:
    outcome = validate_tables(cohort, metadata, policy)
    assert outcome.passed, outcome.blocking_failures
    assert outcome.blocking_failures == () and outcome.warnings == ()
    assert outcome.results["cohort"]["success"] and outcome.results["metadata"]["success"]
    stats = outcome.results["cohort"]["statistics"]
    assert stats["evaluated_expectations"] == stats["successful_expectations"] >= 15
    no_values(outcome, "MRN1", "a/1.svs", "Jane", "2019-03")


def test_bad_pseudonym_blocks(cohort: pd.DataFrame, metadata: pd.DataFrame, policy) -> None:
    cohort.loc[1, "slide"] = f"{CANARY}/2.svs"
    outcome = validate_tables(cohort, metadata, policy)
    assert not outcome.passed
    assert outcome.blocking_failures == (
        "cohort: expect_column_values_to_match_regex on column 'slide': "
        "values are 's-' pseudonyms (1 of 3 rows: row 2)",
    )
    no_values(outcome, CANARY)


def test_sex_out_of_set_blocks(cohort: pd.DataFrame, metadata: pd.DataFrame, policy) -> None:
    cohort.loc[2, "sex"] = CANARY
    outcome = validate_tables(cohort, metadata, policy)
    assert outcome.blocking_failures == (
        "cohort: expect_column_values_to_be_in_set on column 'sex': "
        "values in the allowed set (1 of 3 rows: row 3)",
    )
    no_values(outcome, CANARY)


def test_extra_column_blocks(cohort: pd.DataFrame, metadata: pd.DataFrame, policy) -> None:
    cohort["mrn"] = [CANARY] * len(cohort)
    outcome = validate_tables(cohort, metadata, policy)
    assert not outcome.passed
    [failure] = outcome.blocking_failures
    assert failure.startswith("cohort: expect_table_columns_to_match_set: columns are exactly")
    assert "unexpected column(s) ['mrn'], missing column(s) []" in failure
    no_values(outcome, CANARY)


def test_missing_column_blocks(cohort: pd.DataFrame, metadata: pd.DataFrame, policy) -> None:
    outcome = validate_tables(cohort.drop(columns=["sex"]), metadata, policy)
    assert not outcome.passed
    assert any("missing column(s) ['sex']" in f for f in outcome.blocking_failures)
    assert any("column 'sex'" in f and "could not run" in f for f in outcome.blocking_failures)


def test_date_looking_metadata_value_blocks(cohort, metadata: pd.DataFrame, policy) -> None:
    metadata.loc[2, "value"] = "12/29/09"
    metadata.loc[6, "value"] = "2009:12:29 09:59:15"
    outcome = validate_tables(cohort, metadata, policy)
    assert outcome.blocking_failures == (
        "metadata: expect_column_values_to_not_match_regex_list on column 'value': "
        "values match none of forbid_value_regex (2 of 12 rows: rows 3, 7)",
    )
    no_values(outcome, "12/29", "09:59")


def test_unlisted_metadata_key_blocks(cohort, metadata: pd.DataFrame, policy) -> None:
    metadata.loc[len(metadata)] = [cohort["slide"].iloc[0], "aperio.Filename", CANARY]
    outcome = validate_tables(cohort, metadata, policy)
    assert outcome.blocking_failures == (
        "metadata: expect_column_values_to_match_regex on column 'key': "
        "keys are in allowed_keys (1 of 13 rows: row 13)",
    )
    no_values(outcome, CANARY)


def test_warn_severity_does_not_block(cohort, metadata: pd.DataFrame, policy) -> None:
    cohort.loc[0, "diagnosis"] = ""  # not_null: warn
    cohort.loc[1, "site"] = f"Free text {CANARY}"  # regex: warn
    outcome = validate_tables(cohort, metadata, policy)
    assert outcome.passed
    assert outcome.warnings == (
        "cohort: expect_column_values_to_not_be_null on column 'diagnosis': "
        "no missing values (1 of 3 rows: row 1)",
        "cohort: expect_column_values_to_match_regex on column 'site': "
        "values match ^[a-z][a-z ,/-]{0,63}$ (1 of 3 rows: row 2)",
    )
    no_values(outcome, CANARY)


def test_data_docs_are_byte_deterministic(cohort, metadata: pd.DataFrame, policy, tmp_path) -> None:
    """Two runs of the same tables and release id write the same files, byte for byte (GX's
    run time, render time, load time and random element ids are fixed or numbered)."""
    import hashlib
    import re

    def docs(name: str) -> dict[str, str]:
        root = tmp_path / name
        validate_tables(cohort, metadata, policy, docs_dir=root, run_name="rel-7")
        return {
            p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }

    first, second = docs("a"), docs("b")
    assert first == second
    pages = [p for p in first if p.endswith(".html")]
    assert "index.html" in pages and any(p.startswith("static/") for p in first)
    runs = [p for p in pages if p.startswith("validations/")]
    assert runs and all("/rel-7/20000101T000000.000000Z/" in p for p in runs)
    uuid4 = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
    stamp = re.compile(rb"20\d{6}T\d{6}\.\d{6}Z")
    for page in pages:
        data = (tmp_path / "a" / page).read_bytes()
        assert not uuid4.search(data), page
        assert {m.group() for m in stamp.finditer(data)} <= {b"20000101T000000.000000Z"}


@pytest.mark.parametrize(
    "name",
    ["Jane Roe", "Roe, Jane", "ROE, Jane", "ROE Jane", "jane roe", "roe, jane", "JOHANNA"],
)
def test_name_like_forms_block_with_row_numbers(
    cohort: pd.DataFrame, metadata: pd.DataFrame, policy, name: str
) -> None:
    cohort.loc[0, "site"] = name
    cohort.loc[2, "site"] = name
    outcome = validate_tables(cohort, metadata, policy)
    assert not outcome.passed
    assert (
        "cohort: expect_column_values_to_not_match_regex on column 'site': "
        "no name-like value (2 of 3 rows: rows 1, 3)"
    ) in outcome.blocking_failures
    no_values(outcome, name)


@pytest.mark.parametrize(
    "site", ["sigmoid colon", "upper lobe, lung", "soft tissue of thigh", "head of pancreas"]
)
def test_site_vocabulary_is_not_name_like(
    cohort: pd.DataFrame, metadata: pd.DataFrame, policy, site: str
) -> None:
    cohort.loc[:, "site"] = site
    outcome = validate_tables(cohort, metadata, policy)
    assert outcome.passed, outcome.blocking_failures


def test_many_failing_rows_are_listed_up_to_a_limit(policy) -> None:
    from slidegate.validate.run import MAX_ROWS_LISTED, _rows_text, failing_rows

    df = pd.DataFrame({"sex": ["F", "X", "M", "X"] * 10})
    rows = failing_rows(
        "expect_column_values_to_be_in_set", {"column": "sex", "value_set": ["F", "M"]}, df
    )
    assert rows == list(range(2, 41, 2))[:20]
    assert _rows_text(list(range(1, 31))).endswith(f"and {30 - MAX_ROWS_LISTED} more")
