"""Ventana BIF (no real file is public and small enough): a synthetic iScan file in the real
page order with canaries in every XMP field phi-locations.md names, released clean."""

from __future__ import annotations

from pathlib import Path

import pytest

from slidegate.synth.vendors.bif import write_bif
from tests.formats._vendor import assert_clean_release


def test_synthetic_bif_released_clean(tmp_path: Path) -> None:
    slide = write_bif(tmp_path / "slide.bif", seed=9)
    r = assert_clean_release(slide, tmp_path / "out")
    assert [lv.page for lv in r.facts.levels] == [2, 3, 4]
    assert {(a.kind, a.page) for a in r.plan.dropped_images} == {("label", 0), ("thumbnail", 1)}
    assert r.facts.mpp_x == pytest.approx(0.25)
    assert r.plan.attributes.get("bif.iScan@ScanRes") == "0.25"
    user = [p for p in r.plan.fields if p.name == "bif.iScan@UserName"]
    assert user and all(p.action == "drop" and p.field_class == "operator" for p in user)
