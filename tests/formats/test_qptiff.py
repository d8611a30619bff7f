"""PerkinElmer / Akoya QPTIFF: real file facts (channels as the c axis, Overview and Label
dropped), a synthetic tiled multi-resolution QPTIFF with canaries in every XML field,
released clean and pixel-equal (the audit compares every channel page)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile

from slidegate.formats import LevelReader, read_facts
from slidegate.synth.vendors.qptiff import write_qptiff
from tests.formats._vendor import assert_clean_release

QPTIFF = "perkinelmer-qptiff/small_vectra.qptiff"


def test_real_qptiff_facts(real_slides: Path) -> None:
    path = real_slides / QPTIFF
    facts = read_facts(path, "q")
    assert facts.format == "qptiff"
    assert [(lv.height, lv.width, lv.samples) for lv in facts.levels] == [(1440, 1920, 3)]
    assert {(a.kind, a.page) for a in facts.associated} == {
        ("thumbnail", 3),
        ("macro", 4),  # ImageType Overview
        ("label", 5),
    }
    values = {(f.name, f.value) for f in facts.fields}
    assert ("qptiff.SlideID", "RTM61_1") in values
    assert ("qptiff.ComputerName", "WIN-518AEG3GFG2") in values
    assert ("qptiff.Identifier", "688b0669-3edf-4fcf-957a-47b06bacfa36") in values
    assert ("qptiff.ScanProfile.root.Name", "albert_einstein_3channel_fluor") in values
    assert not any(f.name.endswith("@ref") for f in facts.fields)  # serialisation plumbing
    with tifffile.TiffFile(path) as tif:
        expected = tif.series[0].asarray()  # (3, 1440, 1920)
    with LevelReader(path) as reader:
        region = reader.read(facts.levels[0], 100, 200, 300, 400)
    np.testing.assert_array_equal(region, expected[:, 100:400, 200:600].transpose(1, 2, 0))


def test_synthetic_qptiff_released_clean(tmp_path: Path) -> None:
    slide = write_qptiff(tmp_path / "slide.qptiff", seed=6)
    r = assert_clean_release(slide, tmp_path / "out")
    assert [lv.samples for lv in r.facts.levels] == [3, 3, 3]
    assert {a.kind for a in r.plan.dropped_images} == {"thumbnail", "macro", "label"}
    assert r.plan.attributes.get("scan_year") == "2015"
    assert r.plan.attributes.get("qptiff.Name") == "DAPI"
