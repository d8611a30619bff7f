"""Aperio SVS with JPEG 2000 tiles (compression 33005): a synthetic file in the Aperio layout
with canaries in every identifying description key of every page, released clean."""

from __future__ import annotations

from pathlib import Path

from slidegate.synth.vendors.svs_j2k import write_svs_j2k
from tests.formats._vendor import assert_clean_release


def test_synthetic_j2k_svs_released_clean(tmp_path: Path) -> None:
    slide = write_svs_j2k(tmp_path / "slide.svs", seed=11)
    r = assert_clean_release(slide, tmp_path / "out")
    assert [lv.compression for lv in r.facts.levels] == ["APERIO_JP2000_RGB"] * 2
    assert {a.kind for a in r.plan.dropped_images} == {"thumbnail", "label", "macro"}
    pages = {f.location.split()[1] for f in r.facts.fields if f.name == "aperio.Filename"}
    assert pages == {"0", "1", "2"}  # every page's description scrubbed, not only the first
    assert r.plan.attributes.get("scan_year") == "2015"
