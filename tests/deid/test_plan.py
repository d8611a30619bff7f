from __future__ import annotations

from pathlib import Path

import pytest

from slidegate.deid import coarsen_year, load_deid_policy, plan_deid, summarize
from slidegate.deid.policy import DeidPolicy, FieldRule
from slidegate.errors import PolicyError
from slidegate.formats import read_facts
from slidegate.models import AssociatedImage, LevelFacts, MetadataField, SlideFacts

PSEUDO = "s-0123456789abcdef"


def _facts(fields: list[tuple[str, str, int]], fmt: str = "svs") -> SlideFacts:
    level = LevelFacts(
        index=0,
        page=0,
        height=10,
        width=10,
        samples=3,
        dtype="uint8",
        tile_height=10,
        tile_width=10,
        compression="JPEG",
        downsample=1.0,
    )
    return SlideFacts(
        slide_id="a/b.svs",
        source_path="/src/a/b.svs",
        format=fmt,
        size=1,
        sha256="0" * 64,
        mpp_x=0.5,
        mpp_y=0.5,
        levels=(level,),
        associated=(
            AssociatedImage(kind="label", page=2, height=5, width=5, compression="LZW"),
            AssociatedImage(kind="macro", page=3, height=5, width=9, compression="JPEG"),
            AssociatedImage(kind="thumbnail", page=1, height=5, width=5, compression="JPEG"),
        ),
        fields=tuple(
            MetadataField(
                name=n, location=f"page {p} tag 270 ImageDescription segment {i}", value=v
            )
            for i, (n, v, p) in enumerate(fields)
        ),
    )


def _policy(**rules: dict) -> DeidPolicy:
    return DeidPolicy(
        format="svs", fields={k.replace("_", "."): FieldRule(**v) for k, v in rules.items()}
    )


def test_default_deny_drops_unknown_and_all_images() -> None:
    facts = _facts([("aperio.SecretThing", "CANARY-1", 0), ("aperio.MPP", "0.5", 0)])
    plan = plan_deid(
        facts,
        _policy(aperio_MPP={"action": "keep", "class": "technical", "value": "number"}),
        PSEUDO,
    )
    unknown = plan.fields[0]
    assert (unknown.action, unknown.rule, unknown.field_class) == (
        "drop",
        "default-deny",
        "unknown",
    )
    assert unknown.output_value is None
    assert plan.attributes == {"aperio.MPP": "0.5"}
    assert plan.dropped_images == facts.associated
    assert plan.levels == facts.levels and plan.pseudonym == PSEUDO
    assert summarize(plan) == {
        "dropped.unknown": 1,
        "kept.technical": 1,
        "images_dropped.label": 1,
        "images_dropped.macro": 1,
        "images_dropped.thumbnail": 1,
        "levels": 1,
    }


@pytest.mark.parametrize(
    ("value", "year"),
    [
        ("12/29/09", "2009"),
        ("07/24/2023", "2023"),
        ("2017:02:07 13:06:43", "2017"),
        ("2019-12-07", "2019"),
        ("2019-12-07T00:34:54.3773097Z", "2019"),
        ("01/02/85", "1985"),
        ("13/45/09", None),
        ("yesterday", None),
        ("", None),
        ("2019-02-30", None),
    ],
)
def test_coarsen_year(value: str, year: str | None) -> None:
    assert coarsen_year(value) == year


def test_coarsen_and_unparseable() -> None:
    rule = {"action": "coarsen", "class": "date", "coarsen": "year", "output_key": "scan_year"}
    plan = plan_deid(_facts([("aperio.Date", "12/29/09", 0)]), _policy(aperio_Date=rule), PSEUDO)
    assert plan.attributes == {"scan_year": "2009"}
    plan = plan_deid(_facts([("aperio.Date", "29.12.09", 0)]), _policy(aperio_Date=rule), PSEUDO)
    assert plan.fields[0].action == "drop" and plan.fields[0].rule == "coarsen-unparseable"
    assert plan.attributes == {}


def test_kept_field_written_once_from_level0_page() -> None:
    facts = _facts([("aperio.AppMag", "40.0", 1), ("aperio.AppMag", "40", 0)])
    plan = plan_deid(
        facts,
        _policy(aperio_AppMag={"action": "keep", "class": "technical", "value": "number"}),
        PSEUDO,
    )
    assert plan.attributes == {"aperio.AppMag": "40"}
    assert [f.action for f in plan.fields] == ["keep", "keep"]  # never "drop": same value kept
    assert plan.fields[0].output_key is None


def test_format_mismatch() -> None:
    with pytest.raises(PolicyError, match=r"deid/tiff\.yaml"):
        plan_deid(_facts([], fmt="tiff"), _policy(), PSEUDO)


def test_real_svs_plan(real_slides: Path, policies_dir: Path) -> None:
    facts = read_facts(real_slides / "aperio-svs/CMU-1-Small-Region.svs", "cmu")
    plan = plan_deid(facts, load_deid_policy(policies_dir / "deid/svs.yaml"), PSEUDO)
    attrs = plan.attributes
    assert attrs["aperio.MPP"] == "0.4990" and attrs["scan_year"] == "2009"
    text = repr(attrs)
    for phi in ["CPAPERIOCS", "CMU-1", "12/29/09", "09:59:15", "b414003d", "1004486", "25.691574"]:
        assert phi not in text
    by_name = {f.name: f for f in plan.fields}
    assert by_name["aperio.Filename"].field_class == "name"
    assert by_name["aperio.ScanScope ID"].action == "drop"
    assert by_name["aperio.header"].action == "drop"
    summary = summarize(plan)
    assert summary["images_dropped.label"] == 1 and summary["images_dropped.macro"] == 1
    assert summary["dropped.device_id"] == 2  # ScanScope ID on pages 0 and 1
    assert all(isinstance(v, int) for v in summary.values())
