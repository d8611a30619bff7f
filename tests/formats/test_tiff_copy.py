"""De-identified SVS / generic TIFF copies in their own format (formats/tiff_copy.py), checked
independently: OpenSlide (vendor, associated images, levels, MPP), tifffile (only the pyramid
pages, only whitelisted tags), every tile byte-identical to the source's tile (read here from
the raw tile offsets, not through slidegate), and no planted value in any byte of the copy."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import imagecodecs
import numpy as np
import openslide
import pytest
import tifffile

from slidegate.audit.copy_check import check_copy
from slidegate.deid.plan import plan_deid
from slidegate.deid.policy import load_deid_policy
from slidegate.formats import read_facts
from slidegate.formats.tiff_copy import ALLOWED_TAGS, CopyNotPossible, write_tiff_copy
from slidegate.models import DeidPlan
from slidegate.payload import clean_j2k, clean_jpeg
from slidegate.synth.canary import ScanTime
from slidegate.synth.label import render_label, render_macro
from slidegate.synth.svs import SvsMeta, write_svs
from slidegate.synth.texture import tissue_image
from slidegate.synth.tiff import TiffMeta, write_generic_tiff
from slidegate.synth.vendors.svs_j2k import write_svs_j2k
from tests.formats.conftest import write_generic_pyramid

POLICIES = Path(__file__).resolve().parents[2] / "policies" / "deid"
PSEUDONYM = "s-00000000000000cc"


def _canary(tag: str) -> str:
    return f"CANARY{tag}{uuid.uuid4().hex[:12]}"


def _copy(source: Path, out: Path) -> tuple[DeidPlan, Path]:
    facts = read_facts(source, source.name)
    plan = plan_deid(facts, load_deid_policy(POLICIES / f"{facts.format}.yaml"), PSEUDONYM)
    write_tiff_copy(source, plan, out)
    return plan, out


def _raw_tiles(page: tifffile.TiffPage) -> list[bytes]:
    fh = page.parent.filehandle
    out = []
    for offset, count in zip(page.dataoffsets, page.databytecounts, strict=True):
        fh.seek(offset)
        out.append(fh.read(count))
    return out


def _cleaned(tile: bytes, compression: int) -> bytes:
    if not tile or compression not in (7, 33003, 33005, 34712):
        return tile
    return clean_jpeg(tile) if compression == 7 else clean_j2k(tile)


def _assert_clean_copy(
    source: Path, out: Path, vendor: str, canaries: list[str]
) -> tuple[DeidPlan, Path]:
    plan, copy = _copy(source, out)
    assert check_copy(copy, plan, source) == []
    with openslide.OpenSlide(str(copy)) as slide:
        assert slide.properties["openslide.vendor"] == vendor
        assert dict(slide.associated_images) == {}
        assert slide.level_dimensions == tuple((lv.width, lv.height) for lv in plan.levels)
    with tifffile.TiffFile(str(source)) as src, tifffile.TiffFile(str(copy)) as dst:
        pages = list(dst.pages)
        assert len(pages) == len(plan.levels)  # only the pyramid: no label, macro, thumbnail
        for page, lv in zip(pages, plan.levels, strict=True):
            assert isinstance(page, tifffile.TiffPage) and not page.subifds
            assert {int(t.code) for t in page.tags} <= ALLOWED_TAGS
            src_page = src.pages[lv.page]
            if lv.index > 0 and lv.page == 0:  # a SubIFD level of page 0 (generic TIFF)
                src_page = src.pages[0].pages[lv.index - 1]  # type: ignore[union-attr,index]
            assert isinstance(src_page, tifffile.TiffPage)
            # every tile byte for byte, once cleaned (OpenJPEG's COM, for one, is removed)
            assert _raw_tiles(page) == [
                _cleaned(t, int(src_page.compression)) for t in _raw_tiles(src_page)
            ]
        np.testing.assert_array_equal(dst.pages[0].asarray(), src.pages[0].asarray())
    data = copy.read_bytes()
    lowered = data.lower()
    hits = [
        c
        for c in canaries
        if c.lower().encode() in lowered or c.encode("utf-16-le") in data
    ]  # fmt: skip
    assert hits == []
    facts = read_facts(copy, copy.name)  # slidegate itself sees only the pyramid
    assert facts.associated == () and len(facts.levels) == len(plan.levels)
    return plan, copy


def write_canary_svs(path: Path) -> tuple[SvsMeta, list[str]]:
    """A small JPEG SVS (2 levels, thumbnail, label, macro) with a canary in every identifying
    description key, tag and label line; returns its meta and every planted value."""
    scan = ScanTime(dt.datetime(2024, 3, 5, 10, 11, 12))
    meta = SvsMeta(
        filename=_canary("FILE"),
        scanscope_id=_canary("SCAN"),
        user=str(uuid.uuid4()),
        image_id=str(uuid.uuid4().int)[:9],
        scan=scan,
        software=_canary("SOFT"),
        make=_canary("MAKE"),
        model=_canary("MODL"),
        artist=_canary("ARTS"),
    )
    lines = [_canary("NAME"), _canary("LABL")]
    level0 = tissue_image(5, (1024, 1536))
    label = render_label(lines)
    write_svs(path, level0, meta, label, render_macro(level0, label))
    canaries = [meta.filename, meta.scanscope_id, meta.user, meta.image_id, meta.software,
                meta.make, meta.model, meta.artist, scan.aperio_time, scan.tiff_datetime,
                scan.aperio_date, *lines]  # fmt: skip
    return meta, canaries


def test_synthetic_jpeg_svs_copy(tmp_path: Path) -> None:
    source = tmp_path / "slide.svs"
    meta, canaries = write_canary_svs(source)
    with openslide.OpenSlide(str(source)) as src:  # the oracle sees them in the source
        assert {"label", "macro", "thumbnail"} <= set(src.associated_images)
    plan, copy = _assert_clean_copy(source, tmp_path / "copy.svs", "aperio", canaries)
    assert len(plan.levels) == 2
    with openslide.OpenSlide(str(copy)) as slide:
        assert float(slide.properties["openslide.mpp-x"]) == pytest.approx(meta.mpp)
        assert slide.properties["aperio.AppMag"] == "20"
    with tifffile.TiffFile(str(copy)) as tif:  # every page's description rebuilt
        assert all(p.description.startswith("Aperio Image Library slidegate") for p in tif.pages)


def test_synthetic_j2k_svs_copy(tmp_path: Path) -> None:
    slide = write_svs_j2k(tmp_path / "j2k.svs", seed=12)
    canaries = list(slide.canaries.values())
    plan, _ = _assert_clean_copy(slide.path, tmp_path / "copy.svs", "aperio", canaries)
    assert [lv.compression for lv in plan.levels] == ["APERIO_JP2000_RGB"] * 2


def test_synthetic_generic_tiffs_copy(tmp_path: Path) -> None:
    meta = TiffMeta(
        description=_canary("DESC"),
        datetime="2023:01:02 03:04:05",
        software=_canary("SOFT"),
        artist=_canary("ARTS"),
        host_computer=_canary("HOST"),
        document_name=_canary("DOCN"),
    )
    label_text = _canary("LABL")
    source = tmp_path / "subifd.tiff"  # JPEG, SubIFD pyramid, label page
    write_generic_tiff(source, tissue_image(6, (1024, 1024)), meta, render_label([label_text]))
    canaries = [meta.description, meta.datetime, meta.software, meta.artist,
                meta.host_computer, meta.document_name, label_text]  # fmt: skip
    plan, copy = _assert_clean_copy(source, tmp_path / "copy.tiff", "generic-tiff", canaries)
    assert len(plan.levels) == 3
    with openslide.OpenSlide(str(copy)) as slide:
        assert float(slide.properties["openslide.mpp-x"]) == pytest.approx(meta.mpp, rel=1e-3)
    planted = write_generic_pyramid(tmp_path / "pages.tif")  # zlib, top-level levels, tag 65000
    _assert_clean_copy(
        planted.path, tmp_path / "copy2.tiff", "generic-tiff", list(planted.canaries.values())
    )


def test_real_cmu1_svs_copy(real_slides: Path, tmp_path: Path) -> None:
    source = real_slides / "aperio-svs" / "CMU-1-Small-Region.svs"
    user = next(f.value for f in read_facts(source, "x").fields if f.name == "aperio.User")
    known = ["CPAPERIOCS", "CMU-1", "12/29/09", "09:59:15", "1004486", user]  # SOURCES.md
    _, copy = _assert_clean_copy(source, tmp_path / "copy.svs", "aperio", known)
    assert copy.stat().st_size < source.stat().st_size  # thumbnail, label, macro not in it


def test_real_boxes_tiff_copy(real_slides: Path, tmp_path: Path) -> None:
    source = real_slides / "generic-tiff" / "boxes.tiff"
    _assert_clean_copy(source, tmp_path / "copy.tiff", "generic-tiff", [])
    with tifffile.TiffFile(str(tmp_path / "copy.tiff")) as tif:
        assert all(34675 not in p.tags for p in tif.pages)  # ICC profile dropped


def test_copy_check_finds_changed_tile_and_extra_tag(tmp_path: Path) -> None:
    planted = write_generic_pyramid(tmp_path / "src.tif")
    plan, copy = _copy(planted.path, tmp_path / "copy.tiff")
    data = bytearray(copy.read_bytes())
    with tifffile.TiffFile(str(copy)) as tif:
        offset = int(tif.pages[1].dataoffsets[0])  # type: ignore[union-attr]
    data[offset + 20] ^= 0xFF
    bad = tmp_path / "bad.tiff"
    bad.write_bytes(bytes(data))
    assert any("tiles differ" in p for p in check_copy(bad, plan, planted.path))
    tagged = tmp_path / "tagged.tiff"  # a page with a DateTime tag is not a clean copy
    with tifffile.TiffWriter(tagged) as w:
        for page in tifffile.TiffFile(str(copy)).pages:
            w.write(page.asarray(), tile=(128, 128), datetime="2020:01:01 00:00:00")
    assert any("whitelist" in p for p in check_copy(tagged, plan, planted.path))


def _jpeg_tiff(path: Path, tiles: list[bytes]) -> Path:
    tifffile.imwrite(
        path,
        iter(tiles),
        shape=(256, 256, 3),
        dtype=np.uint8,
        tile=(128, 128),
        compression="jpeg",
        photometric="rgb",
        metadata=None,
    )
    return path


def test_tile_with_comment_segment_is_copied_cleaned(tmp_path: Path) -> None:
    """A COM segment and text after EOI are removed from the copied tile; the rest of the
    tile is copied byte for byte and decodes to the source's pixels."""
    secret = _canary("COMM").encode()
    plain = bytes(imagecodecs.jpeg8_encode(np.full((128, 128, 3), 90, np.uint8), level=80))
    tile = plain[:2] + b"\xff\xfe" + (len(secret) + 2).to_bytes(2, "big") + secret + plain[2:]
    source = _jpeg_tiff(tmp_path / "comment.tif", [tile, plain + secret, tile, plain])
    facts = read_facts(source, source.name)
    plan = plan_deid(facts, load_deid_policy(POLICIES / "tiff.yaml"), PSEUDONYM)
    copy = tmp_path / "copy.tiff"
    write_tiff_copy(source, plan, copy)
    assert secret not in copy.read_bytes()
    assert check_copy(copy, plan, source) == []
    with tifffile.TiffFile(str(copy)) as tif:
        page = tif.pages[0]
        assert isinstance(page, tifffile.TiffPage)
        assert _raw_tiles(page) == [plain] * 4
        np.testing.assert_array_equal(page.asarray(), tifffile.imread(source))


def test_tile_that_cannot_be_walked_gets_no_copy(tmp_path: Path) -> None:
    """A truncated tile cannot be cleaned losslessly: no copy, no file."""
    plain = bytes(imagecodecs.jpeg8_encode(np.full((128, 128, 3), 90, np.uint8), level=80))
    source = _jpeg_tiff(tmp_path / "cut.tif", [plain, plain[:-40], plain, plain])
    facts = read_facts(source, source.name)
    plan = plan_deid(facts, load_deid_policy(POLICIES / "tiff.yaml"), PSEUDONYM)
    with pytest.raises(CopyNotPossible, match="payload rule jpeg"):
        write_tiff_copy(source, plan, tmp_path / "copy.tiff")
    assert not (tmp_path / "copy.tiff").exists()
    assert not (tmp_path / "copy.tiff.part").exists()
