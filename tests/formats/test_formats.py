from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from PIL import Image

from slidegate.errors import CorruptSlideError, UnsupportedSlideError
from slidegate.formats import LevelReader, detect_format, read_facts
from slidegate.formats.svs import parse_description

SVS = "aperio-svs/CMU-1-Small-Region.svs"
CMU_PHI = ["CPAPERIOCS", "CMU-1", "12/29/09", "09:59:15", "b414003d-95c6-48b0-9369-8010ed517ba7"]


def _values(facts, name):
    return [f.value for f in facts.fields if f.name == name]


def test_svs_facts(real_slides: Path) -> None:
    path = real_slides / SVS
    facts = read_facts(path, "cmu/small.svs")
    assert facts.format == "svs" == detect_format(path)
    assert facts.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert facts.size == path.stat().st_size
    assert facts.mpp_x == facts.mpp_y == pytest.approx(0.499)
    assert [(lv.height, lv.width, lv.samples, lv.compression) for lv in facts.levels] == [
        (2967, 2220, 3, "JPEG")
    ]
    assert {(a.kind, a.page) for a in facts.associated} == {
        ("thumbnail", 1),
        ("label", 2),
        ("macro", 3),
    }
    assert _values(facts, "aperio.ScanScope ID") == ["CPAPERIOCS", "CPAPERIOCS"]  # pages 0, 1
    assert _values(facts, "aperio.Filename") == ["CMU-1", "CMU-1"]
    assert _values(facts, "aperio.Date")[0] == "12/29/09"
    assert _values(facts, "aperio.ImageID")[0] == "1004486"
    assert _values(facts, "aperio.OriginalWidth")[:2] == ["46920", "46000"]  # repeated key
    locations = {f.location for f in facts.fields if f.name == "aperio.User"}
    assert len(locations) == 2
    headers = [f for f in facts.fields if f.name == "aperio.header"]
    assert {f.location.split()[1] for f in headers} == {"0", "1", "2", "3"}  # every page
    assert not any(f.name.startswith("tiff.TileOffsets") for f in facts.fields)


def test_aperio_description_variants() -> None:
    text = "Aperio X\nhead|B = 2||A = 07/24/2023|Time Zone = GMT-0400|noequals| = x|Empty = "
    fields = parse_description(text, "page 0 tag 270 ImageDescription")
    pairs = [(f.name, f.value) for f in fields]
    assert pairs == [
        ("aperio.header", "Aperio X\nhead"),
        ("aperio.B", "2"),
        ("aperio.A", "07/24/2023"),
        ("aperio.Time Zone", "GMT-0400"),
        ("aperio.header", "noequals"),
        ("aperio.header", "= x"),
    ]


def test_gt450_subfiletype_only(gt450_svs: Path) -> None:
    facts = read_facts(gt450_svs, "gt450")
    assert facts.format == "svs"
    assert [lv.width for lv in facts.levels] == [768, 192]
    assert facts.levels[1].downsample == 4.0
    assert {(a.kind, a.page) for a in facts.associated} == {
        ("thumbnail", 1),
        ("label", 3),
        ("macro", 4),
    }
    assert _values(facts, "aperio.Filename") == ["CANARY-FN-9931", "CANARY-FN-9931"]
    assert facts.mpp_x == pytest.approx(0.263)


def test_generic_tiff_facts(generic_pyramid) -> None:
    facts = read_facts(generic_pyramid.path, "g")
    assert facts.format == "tiff"
    assert [(lv.height, lv.width) for lv in facts.levels] == [(600, 800), (300, 400), (150, 200)]
    assert [(a.kind, a.page) for a in facts.associated] == [("label", 3)]
    found = {f.name: f for f in facts.fields if f.location.startswith("page 0 ")}
    for name, value in generic_pyramid.canaries.items():
        if name != "label":
            assert found[name].value == value, name
    assert found["tiff.tag65000"].location == "page 0 tag 65000 tag65000"
    assert facts.mpp_x == pytest.approx(0.25) and facts.mpp_y == pytest.approx(0.25)


def test_subifd_pyramid(subifd_pyramid) -> None:
    facts = read_facts(subifd_pyramid.path, "s")
    assert [(lv.width, lv.page) for lv in facts.levels] == [(800, 0), (400, 0), (200, 0)]
    assert [a.kind for a in facts.associated] == ["label"]
    with LevelReader(subifd_pyramid.path) as reader:
        lv = facts.levels[1]
        got = reader.read(lv, 0, 0, lv.height, lv.width)
    assert np.array_equal(got, subifd_pyramid.base[::2, ::2])


def test_boxes_tiff(real_slides: Path) -> None:
    facts = read_facts(real_slides / "generic-tiff/boxes.tiff", "boxes")
    assert facts.format == "tiff"
    assert [lv.width for lv in facts.levels] == [300, 150, 75, 37]
    assert facts.associated == ()
    with (
        LevelReader(real_slides / "generic-tiff/boxes.tiff") as reader,
        tifffile.TiffFile(real_slides / "generic-tiff/boxes.tiff") as tif,
    ):
        for i, lv in enumerate(facts.levels):
            expect = tif.series[0].levels[i].asarray()
            assert np.array_equal(reader.read(lv, 0, 0, lv.height, lv.width), expect)


def test_level_reader_region(real_slides: Path) -> None:
    path = real_slides / SVS
    facts = read_facts(path, "x")
    expect = tifffile.imread(path)
    lv = facts.levels[0]
    with LevelReader(path) as reader:
        got = reader.read(lv, 233, 479, 301, 250)  # crosses 240-px tile borders
        assert got.shape == (301, 250, 3)
        assert np.array_equal(got, expect[233:534, 479:729])
        with pytest.raises(ValueError):
            reader.read(lv, 2900, 0, 100, 10)


def _assert_clean(exc: Exception, path: Path) -> None:
    text = str(exc)
    assert str(path) in text
    assert not any(v in text for v in CMU_PHI[:1] + CMU_PHI[2:])
    assert exc.reason and str(path) not in exc.reason  # type: ignore[attr-defined]


@pytest.mark.parametrize("cut", [100, 5000, 969477, 1937955, 1938945])
def test_truncated_svs_is_corrupt(real_slides: Path, tmp_path: Path, cut: int) -> None:
    data = (real_slides / SVS).read_bytes()
    bad = tmp_path / "truncated.svs"
    bad.write_bytes(data[:cut])
    start = time.perf_counter()
    with pytest.raises(CorruptSlideError) as err:
        read_facts(bad, "t")
    assert time.perf_counter() - start < 2
    _assert_clean(err.value, bad)


def test_truncated_tile_data_is_corrupt(generic_pyramid, tmp_path: Path) -> None:
    data = generic_pyramid.path.read_bytes()
    bad = tmp_path / "cut.tif"
    bad.write_bytes(data[:-10])  # IFDs intact, last strip runs past the end
    with pytest.raises(CorruptSlideError, match="truncated"):
        detect_format(bad)


def test_non_slides(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello, not a slide\n")
    with pytest.raises(UnsupportedSlideError, match="not a whole-slide format slidegate knows"):
        detect_format(text)
    fake = tmp_path / "fake.svs"
    fake.write_text("hello, not a slide\n")
    with pytest.raises(CorruptSlideError, match="no TIFF header"):
        detect_format(fake)
    png = tmp_path / "image.png"
    Image.new("RGB", (8, 8)).save(png)
    with pytest.raises(UnsupportedSlideError, match="PNG") as err:
        read_facts(png, "png")
    assert str(png) not in str(err.value)  # the caller names the slide; no source path
    empty = tmp_path / "empty.tif"
    empty.write_bytes(b"")
    with pytest.raises(CorruptSlideError):
        detect_format(empty)
    stripped = tmp_path / "stripped.tif"
    tifffile.imwrite(stripped, np.zeros((32, 32), np.uint8))
    with pytest.raises(UnsupportedSlideError, match="not tiled"):
        detect_format(stripped)


def test_other_vendors_unsupported(real_slides: Path) -> None:
    dcm = next((real_slides / "dicom-wsi").glob("*.dcm"))
    assert detect_format(dcm) == "dicom"  # supported now (tests/formats/test_dicom.py)
    # NDPI and OME-TIFF are supported now (tests/formats/test_ndpi.py, test_ome_tiff.py)


def test_source_untouched(real_slides: Path) -> None:
    path = real_slides / SVS
    before = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    facts = read_facts(path, "x")
    with LevelReader(path) as reader:
        reader.read(facts.levels[0], 0, 0, 64, 64)
    assert (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns) == before


def test_generic_unmarked_tiled_page_is_associated(tmp_path: Path) -> None:
    """A tiled page that does not say "reduced resolution" (e.g. a tiled macro) is dropped."""
    path = tmp_path / "extra.tif"
    base = np.zeros((512, 768, 3), np.uint8)
    opts: dict[str, Any] = {"photometric": "rgb", "metadata": None, "tile": (128, 128)}
    with tifffile.TiffWriter(path) as w:
        w.write(base, **opts)
        w.write(base[::2, ::2], subfiletype=1, **opts)
        w.write(base[::4, ::4], **opts)  # same aspect, but not marked reduced
        w.write(np.zeros((256, 128, 3), np.uint8), subfiletype=1, **opts)  # other aspect
    facts = read_facts(path, "extra")
    assert [lv.width for lv in facts.levels] == [768, 384]
    assert [(a.kind, a.page) for a in facts.associated] == [("other", 2), ("other", 3)]
