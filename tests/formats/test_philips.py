"""Philips TIFF (no real file is public and small enough): a synthetic UFS export in the real
layout, padded reduced levels, label/macro pages and base64 label/macro in the XML, canaries in
every XML field phi-locations.md names, released clean."""

from __future__ import annotations

from pathlib import Path

import pytest

from slidegate.synth.vendors.philips import write_philips
from tests.formats._vendor import assert_clean_release


def test_synthetic_philips_released_clean(tmp_path: Path) -> None:
    slide = write_philips(tmp_path / "slide.tiff", seed=8)
    r = assert_clean_release(slide, tmp_path / "out")
    # tifffile's padding fix: reduced levels have their true size, not whole tiles
    assert [(lv.height, lv.width) for lv in r.facts.levels] == [(480, 600), (240, 300), (120, 150)]
    assert r.facts.mpp_x == pytest.approx(0.25)
    kinds = sorted((a.kind, a.compression) for a in r.plan.dropped_images)
    assert ("label", "XML base64") in kinds and ("macro", "XML base64") in kinds
    assert all(p.action == "drop" for p in r.plan.fields if p.name == "philips.PIM_DP_IMAGE_DATA")
    assert r.plan.attributes.get("philips.DICOM_MANUFACTURER") == "PHILIPS"
