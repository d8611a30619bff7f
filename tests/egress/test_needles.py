"""The release needle set: values, names, canaries, cohort identifiers, source names."""

from __future__ import annotations

import pandas as pd

from slidegate.egress.matcher import Matcher
from slidegate.egress.needles import (
    CANARY,
    COHORT_DROPPED,
    COHORT_ID,
    FIELD_NAME,
    FIELD_VALUE,
    SOURCE_NAME,
    canary_needles,
    cohort_needles,
    policy_vocabulary,
    slide_needles,
    source_name_needles,
)
from slidegate.models import (
    DeidPlan,
    FieldAction,
    LevelFacts,
    MetadataField,
    PlannedField,
    SlideFacts,
)
from slidegate.validate.policy import ColumnRule

LEVEL = LevelFacts(
    index=0, page=0, height=512, width=768, samples=3, dtype="uint8",
    tile_height=256, tile_width=256, compression="JPEG", downsample=1.0,
)  # fmt: skip


def facts(fields: list[tuple[str, str]]) -> SlideFacts:
    return SlideFacts(
        slide_id="x.svs", source_path="/src/x.svs", format="svs", size=1, sha256="0" * 64,
        mpp_x=0.25, mpp_y=0.25, levels=(LEVEL,), associated=(),
        fields=tuple(MetadataField(name=n, location="page 0 tag 270", value=v) for n, v in fields),
    )  # fmt: skip


def plan(actions: dict[str, tuple[FieldAction, str | None, str | None]]) -> DeidPlan:
    return DeidPlan(
        slide_id="x.svs", pseudonym="s-0123abcd", format="svs", levels=(LEVEL,),
        dropped_images=(), mpp_x=0.25, mpp_y=0.25,
        fields=tuple(
            PlannedField(name=n, location="page 0 tag 270", field_class="technical", action=a,
                         rule=n, output_key=k, output_value=v)
            for n, (a, k, v) in actions.items()
        ),
    )  # fmt: skip


def rules(needles: list[tuple[str, str]], rule: str) -> set[str]:
    return {v for r, v in needles if r == rule}


def test_dropped_values_and_unknown_names_are_needles_kept_values_are_not() -> None:
    f = facts(
        [
            ("aperio.AppMag", "20"),
            ("aperio.Filename", "CASE-4711-Smith"),
            ("aperio.Jane Roe 1970-01-01", "x"),
            ("aperio.Model", "Aperio AT2 Scanner"),
        ]
    )
    p = plan(
        {
            "aperio.AppMag": ("keep", "aperio.AppMag", "20"),
            "aperio.Filename": ("drop", None, None),
            "aperio.Jane Roe 1970-01-01": ("drop", None, None),
            "aperio.Model": ("keep", "aperio.Model", "Aperio AT2 Scanner"),
        }
    )
    vocab = policy_vocabulary(["aperio.AppMag", "aperio.Filename", "aperio.Model"], [])
    got = slide_needles(f, p, vocab)
    assert rules(got.needles, FIELD_VALUE) == {"CASE-4711-Smith"}
    names = rules(got.needles, FIELD_NAME)
    assert names == {"aperio.Jane Roe 1970-01-01", "Jane Roe 1970-01-01", "1970-01-01"}
    # a field with no plan at all (quarantined at inventory): every value is a needle
    unplanned = slide_needles(f, None, vocab)
    assert "Aperio AT2 Scanner" in rules(unplanned.needles, FIELD_VALUE)


def test_cohort_identifiers_dates_and_dropped_columns() -> None:
    source = pd.DataFrame(
        {
            "slide": ["a/s1.svs", "b/s2.svs"],
            "patient": ["PAT-000123", "PAT-000456"],
            "block": ["B-2019-77", "B-2019-78"],
            "collection_date": ["2019-03-14", "2020-11-02"],
            "site": ["sigmoid colon", "rectum"],
            "comment": ["called Mrs Jane Roe", "colon"],
        }
    )
    columns = {
        "slide": ColumnRule(action="pseudonymize", kind="s"),
        "patient": ColumnRule(action="pseudonymize", kind="p"),
        "block": ColumnRule(action="pseudonymize", kind="b"),
        "collection_date": ColumnRule(action="generalize", hierarchy="date", level="year"),
        "site": ColumnRule(action="keep"),
        "comment": ColumnRule(action="drop"),
    }
    released = pd.DataFrame({"site": ["sigmoid colon", "rectum"]})
    got = cohort_needles(source, columns, released)
    assert rules(got.needles, COHORT_ID) == {
        "PAT-000123", "PAT-000456", "B-2019-77", "B-2019-78", "2019-03-14", "2020-11-02",
    }  # fmt: skip
    # "colon" is inside a released cell: not a needle (would block every release)
    assert rules(got.needles, COHORT_DROPPED) == {"called Mrs Jane Roe"}
    assert got.skipped[COHORT_DROPPED] == 1


def test_source_names_and_canaries() -> None:
    got = source_name_needles(["Jane_Roe_case/slide-0042.svs", "slides/x.svs"], ["/data/MRN8812"])
    assert rules(got.needles, SOURCE_NAME) == {
        "Jane_Roe_case", "slide-0042.svs", "slide-0042", "x.svs", "MRN8812",
    }  # fmt: skip
    assert got.skipped[SOURCE_NAME] == 2  # "slides" (the layout's own word), "x" (short)
    can = canary_needles([("aperio.Filename", "CANARY-7f3a"), ("free", "ab")])
    assert can.needles == [(CANARY, "CANARY-7f3a")]
    matcher = Matcher(got.needles + can.needles)
    assert matcher.find(b"reports/jane_roe_case.json") == {SOURCE_NAME}
    assert matcher.find(b'{"v": "canary-7F3A"}') == {CANARY}


def test_a_large_cohort_builds_its_needles_in_linear_time() -> None:
    import time

    n = 20_000
    source = pd.DataFrame(
        {
            "patient": [f"PAT-{i:07d}" for i in range(n)],
            "comment": [f"seen by Dr Roe on visit {i:06d}" for i in range(n)],
            "site": ["colon"] * n,
        }
    )
    columns = {
        "patient": ColumnRule(action="pseudonymize", kind="p"),
        "comment": ColumnRule(action="drop"),
        "site": ColumnRule(action="keep"),
    }
    released = pd.DataFrame({"patient": [f"p-{i:016x}" for i in range(n)], "site": ["colon"] * n})
    start = time.perf_counter()
    got = cohort_needles(source, columns, released)
    elapsed = time.perf_counter() - start
    assert len(rules(got.needles, COHORT_ID)) == n
    assert len(rules(got.needles, COHORT_DROPPED)) == n
    assert elapsed < 5.0, elapsed  # one automaton pass, not values x cells substring tests


def test_source_names_that_are_known_words_are_left_out() -> None:
    got = source_name_needles(
        ["dicom/one.dcm", "colon/Jane_Roe.svs"], known=["dicom", "sigmoid colon"]
    )
    assert rules(got.needles, SOURCE_NAME) == {"one.dcm", "Jane_Roe.svs", "Jane_Roe"}


def test_release_level_needles_leave_out_plain_words_and_policy_text() -> None:
    from slidegate.egress.needles import NeedleSet

    got = NeedleSet(
        [
            (FIELD_VALUE, "Normal"),
            (FIELD_VALUE, "Overview"),
            (FIELD_VALUE, "Jane Roe"),
            (FIELD_VALUE, "B-2019-77"),
            (FIELD_VALUE, "sigmoid"),
            (FIELD_NAME, "aperio.Jane Roe 1970-01-01"),
        ]
    )
    got.drop_inside({FIELD_VALUE}, ['{"regex": "^(?:jane|mary)$", "site": "sigmoid colon"}'])
    got.drop_words({FIELD_VALUE, FIELD_NAME})
    assert got.needles == [
        (FIELD_VALUE, "Jane Roe"),
        (FIELD_VALUE, "B-2019-77"),
        (FIELD_NAME, "aperio.Jane Roe 1970-01-01"),
    ]
    assert got.skipped == {FIELD_VALUE: 3}


def test_values_of_one_repeated_character_are_no_needles() -> None:
    from slidegate.egress.needles import NeedleSet

    needles = NeedleSet()
    for value in ("0.0000", "00:00:00", "0000-00-00", "1111111", "Roe 0.0000"):
        needles.add("egress.field-value", value)
    assert [v for _, v in needles.needles] == ["Roe 0.0000"]
    assert needles.skipped == {"egress.field-value": 4}
