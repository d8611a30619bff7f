"""Hamamatsu NDPI: real file facts, a synthetic NDPI (real IFD structure) with canaries in every
PHI tag of every IFD, released clean; region reads through tifffile on the restart-marker
"tiles"."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from slidegate.formats import LevelReader, read_facts
from slidegate.formats.ndpi import parse_comments
from slidegate.synth.vendors import write_ndpi
from tests.formats._vendor import assert_clean_release

NDPI = "hamamatsu-ndpi/test3-DAPI-2-387.ndpi"


def test_real_ndpi_facts(real_slides: Path) -> None:
    facts = read_facts(real_slides / NDPI, "n")
    assert facts.format == "ndpi"
    assert [(lv.height, lv.width) for lv in facts.levels] == [
        (4864, 3968), (2432, 1984), (1216, 992), (608, 496)
    ]  # fmt: skip
    assert {(a.kind, a.height, a.width) for a in facts.associated} == {
        ("macro", 406, 1188),
        ("other", 203, 594),  # the map
    }
    assert facts.mpp_x == pytest.approx(10000 / 43826)
    by_name: dict[str, set[str]] = {}
    for f in facts.fields:
        by_name.setdefault(f.name, set()).add(f.value)
    assert by_name["ndpi.ScannerSerialNumber"] == {"950291"}
    assert by_name["tiff.DateTime"] == {"2017:02:07 13:06:43"}
    assert by_name["ndpi.Comments.Created"] == {"2011/05/23"}
    assert by_name["ndpi.Comments.SerialNumber"] == {"950291"}  # inside the shading block
    serial_pages = {f.location.split()[1] for f in facts.fields if f.name.endswith("SerialNumber")}
    assert serial_pages == {"0", "1", "2", "3", "4", "5"}  # every IFD
    assert not any("McuStarts" in f.name for f in facts.fields)


def test_comment_records() -> None:
    text = "A=1\r\nB.x[0]=2,3\r\n;Block;K=v;Date=2017/01/27\r\nnoequals\r\n=x"
    pairs = [(f.name, f.value) for f in parse_comments(text, "page 0 tag 65449 Comments")]
    assert pairs == [
        ("ndpi.Comments.A", "1"),
        ("ndpi.Comments.B.x[0]", "2,3"),
        ("ndpi.Comments", "Block"),
        ("ndpi.Comments.K", "v"),
        ("ndpi.Comments.Date", "2017/01/27"),
        ("ndpi.Comments", "noequals"),
        ("ndpi.Comments", "=x"),
    ]


def test_synthetic_ndpi_released_clean(tmp_path: Path) -> None:
    slide = write_ndpi(tmp_path / "slide.ndpi", seed=5)
    r = assert_clean_release(slide, tmp_path / "out")
    pages = {f.location.split()[1] for f in r.facts.fields if f.name == "ndpi.SlideLabel"}
    assert pages == {"0", "1", "2", "3", "4"}  # 65427 in every IFD, all dropped
    assert all(p.action == "drop" for p in r.plan.fields if p.name == "ndpi.SlideLabel")
    assert r.plan.attributes.get("scan_year") == "2016"
    assert {a.kind for a in r.plan.dropped_images} == {"macro", "other"}


def test_ndpi_region_reads_match_tifffile(real_slides: Path) -> None:
    path = real_slides / NDPI
    facts = read_facts(path, "n")
    with tifffile.TiffFile(path) as tif:
        full = tif.pages[0].asarray()
    start = time.perf_counter()
    with LevelReader(path) as reader:
        region = reader.read(facts.levels[0], 1000, 500, 700, 900)
        edge = reader.read(facts.levels[0], 4864 - 9, 3968 - 5, 9, 5)
    assert time.perf_counter() - start < 30  # generous: a benchmark, not a timing test
    np.testing.assert_array_equal(region, full[1000:1700, 500:1400])
    np.testing.assert_array_equal(edge, full[-9:, -5:])
