"""Artifact contents (no server): counts and classes only, never a metadata value or a path."""

from __future__ import annotations

import json
from pathlib import Path

from flows.artifacts import deid_rows, inventory_rows, published_note, validation_rows
from slidegate.collection import at_risk_published
from slidegate.models import AssociatedImage, DeidPlan, PlannedField, SlideReport

SECRET = "Jane Q. Doe 1961-04-02"


def plan(pseudonym: str) -> DeidPlan:
    fields = (
        PlannedField(
            name="ScanDate",
            location="desc",
            field_class="date",
            action="coarsen",
            rule="year",
            output_key="year",
            output_value="2020",
        ),
        PlannedField(
            name="User", location="desc", field_class="operator", action="drop", rule="default-deny"
        ),
        PlannedField(
            name="Barcode",
            location="desc",
            field_class="free_text",
            action="drop",
            rule="default-deny",
        ),
        PlannedField(
            name="MPP",
            location="desc",
            field_class="technical",
            action="keep",
            rule="keep",
            output_key="mpp",
            output_value="0.25",
        ),
    )
    images = (
        AssociatedImage(kind="label", page=3, height=10, width=10, compression="LZW"),
        AssociatedImage(kind="macro", page=4, height=10, width=10, compression="JPEG"),
    )
    return DeidPlan(
        slide_id=SECRET,
        pseudonym=pseudonym,
        format="svs",
        levels=(),
        dropped_images=images,
        fields=fields,
        mpp_x=None,
        mpp_y=None,
    )


def test_deid_summary_counts_by_class_and_image_kind() -> None:
    rows = deid_rows([plan("s-0000000000000001"), plan("s-0000000000000002")])
    by = {r["class"]: r for r in rows}
    assert by["operator"] == {"class": "operator", "removed": 2, "coarsened": 0, "kept": 0}
    assert by["date"]["coarsened"] == 2 and by["technical"]["kept"] == 2
    assert by["image: label"]["removed"] == 2 and by["image: macro"]["removed"] == 2
    assert SECRET not in json.dumps(rows) and "s-000" not in json.dumps(rows)


def test_inventory_rows_carry_pseudonyms_and_counts_not_source_paths() -> None:
    rep = SlideReport(
        slide_id=SECRET,
        pseudonym="s-00000000000000aa",
        stage="audit",
        status="ok",
        format="svs",
        levels=3,
        size=12_500_000,
        detail={"fields_dropped": 7},
    )
    [row] = inventory_rows([rep])
    assert row == {
        "slide": "s-00000000000000aa",
        "status": "ok",
        "format": "svs",
        "levels": 3,
        "size_mb": 12.5,
        "fields_dropped": 7,
    }


def test_validation_rows_and_published_note() -> None:
    rows = validation_rows(
        {
            "cohort": {
                "success": True,
                "statistics": {
                    "evaluated_expectations": 9,
                    "successful_expectations": 9,
                    "unsuccessful_expectations": 0,
                },
            }
        }
    )
    assert rows == [
        {"table": "cohort", "passed": True, "expectations": 9, "successful": 9, "failed": 0}
    ]
    note = published_note(
        "s3://b/crc",
        "r1",
        {"objects": [1, 2, 3], "sha256sums": "ab" * 32},
        "http://127.0.0.1:8787/status",
    )
    assert "`s3://b/crc/r1`" in note and "objects: 3" in note and "8787/status" in note


def test_published_patients_put_at_risk_are_reported(tmp_path: Path) -> None:
    risk = tmp_path / "risk.json"
    risk.write_text(json.dumps({"withheld_patients": ["p-1", "p-9"]}))
    assert at_risk_published(risk, ["p-1", "p-2"]) == ["p-1"]
    risk.write_text(
        json.dumps(
            {
                "patients": [
                    {"patient": "p-2", "decision": "withheld"},
                    {"patient": "p-3", "decision": "approved"},
                ]
            }
        )
    )
    assert at_risk_published(risk, ["p-1", "p-2", "p-3"]) == ["p-2"]
