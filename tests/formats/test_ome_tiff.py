"""OME-TIFF: the real QuPath export (single resolution), a synthetic Bio-Formats-style pyramid
(SubIFDs) with label and macro series and canaries in every OME-XML field phi-locations.md
names, released clean."""

from __future__ import annotations

from pathlib import Path

import pytest

from slidegate.formats import read_facts
from slidegate.synth.vendors.ome_tiff import write_ome_tiff
from tests.formats._vendor import assert_clean_release

OME = "ome-tiff/OS-2-ndpi.ome.tif"


def test_real_ome_tiff_facts(real_slides: Path) -> None:
    facts = read_facts(real_slides / OME, "o")
    assert facts.format == "ome-tiff"
    assert [(lv.height, lv.width, lv.samples) for lv in facts.levels] == [(2202, 2202, 3)]
    assert facts.associated == ()
    assert facts.mpp_x == pytest.approx(0.2270972430394695)
    assert facts.mpp_y == pytest.approx(0.22710240047237298)
    values = {(f.name, f.value) for f in facts.fields}
    assert ("ome@Creator", "OME Bio-Formats 6.7.0") in values
    assert ("ome.Image.Pixels.TiffData.UUID@FileName", "OS-2-ndpi.ome.tif") in values


def test_synthetic_ome_tiff_released_clean(tmp_path: Path) -> None:
    slide = write_ome_tiff(tmp_path / "slide.ome.tif", seed=7)
    r = assert_clean_release(slide, tmp_path / "out")
    assert [lv.page for lv in r.facts.levels] == [0, 0, 0]  # SubIFDs of page 0
    assert {(a.kind, a.page) for a in r.plan.dropped_images} == {("label", 1), ("macro", 2)}
    assert r.plan.attributes.get("scan_year") == "2014"
    dropped = {p.name for p in r.plan.fields if p.action == "drop"}
    assert "ome.OriginalMetadata.Series 0 Filename" in dropped


def test_planar_multichannel_ome_tiff_channels_as_c(tmp_path: Path) -> None:
    """One page per channel (tifffile hands out TiffFrames for channels 2..n), SubIFD levels:
    all channels released as the c axis, equal to tifffile's decode (audit re-open)."""
    import numpy as np
    import tifffile
    import zarr

    from slidegate.audit import audit_output
    from slidegate.convert.ome_zarr import write_ome_zarr
    from slidegate.deid.plan import plan_deid
    from slidegate.deid.policy import load_deid_policy
    from tests.formats._vendor import POLICIES

    path = tmp_path / "planar.ome.tif"
    data = np.random.default_rng(3).integers(0, 4000, (3, 256, 320), dtype=np.uint16)
    meta = {"axes": "CYX", "Channel": {"Name": ["DAPI", "CD3", "CD8"]}, "PhysicalSizeX": 0.5}
    with tifffile.TiffWriter(path, ome=True) as w:
        w.write(data, tile=(64, 64), subifds=1, photometric="minisblack", metadata=meta)
        w.write(data[:, ::2, ::2], tile=(64, 64), subfiletype=1, photometric="minisblack")
    facts = read_facts(path, "p")
    assert [(lv.samples, lv.height) for lv in facts.levels] == [(3, 256), (3, 128)]
    plan = plan_deid(facts, load_deid_policy(POLICIES / "ome-tiff.yaml"), "s-00")
    out = tmp_path / "out.ome.zarr"
    write_ome_zarr(path, plan, out)
    result = audit_output(out, facts, plan)
    assert result.findings == () and result.problems == ()
    np.testing.assert_array_equal(zarr.open_group(out, mode="r")["1"][:], data[:, ::2, ::2])
    assert plan.attributes.get("ome.Image.Pixels.Channel@Name") == "DAPI"
