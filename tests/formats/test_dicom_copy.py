"""De-identified DICOM WSI copy (original format): pyramid frames byte-identical once cleaned,
no label, overview or thumbnail, no identifying attribute, UIDs remapped consistently. Checked with
OpenSlide (its DICOM reader lists associated images) and pydicom."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from slidegate.audit import phi_needles, scan_tree
from slidegate.audit.copy_check import check_copy, copy_needles
from slidegate.deid.plan import plan_deid
from slidegate.deid.policy import load_deid_policy
from slidegate.formats import read_facts
from slidegate.formats.dicom_copy import write_dicom_copy
from slidegate.formats.dicom_reader import open_dicom
from slidegate.payload import clean_j2k, clean_jpeg
from slidegate.synth.dicom import write_dicom_wsi

POLICY = Path(__file__).resolve().parents[2] / "policies" / "deid" / "dicom.yaml"
KEY = b"k" * 32


def _copy(source: Path, out: Path, key: bytes = KEY) -> list[Path]:
    facts = read_facts(source, source.name)
    plan = plan_deid(facts, load_deid_policy(POLICY), "s-00000000000000aa")
    return write_dicom_copy(source, plan, out, key)


def _cleaned(frame: bytes | None) -> bytes | None:
    """A frame without its non-coding segments, padded to even length as DICOM stores it."""
    if frame is None or frame[:2] not in (b"\xff\xd8", b"\xff\x4f"):
        return frame  # native
    out = clean_jpeg(frame) if frame[:2] == b"\xff\xd8" else clean_j2k(frame)
    return out + b"\x00" * (len(out) % 2)


def _same_tiles(a: Path, b: Path) -> bool:
    """Every frame of the copy is the source's, cleaned (bytes after EOI / EOC, JPEG 2000
    COM, any COM / APPn but the bare JFIF header removed)."""
    with open_dicom(a) as src, open_dicom(b) as dst:
        assert [(g.height, g.width) for g in src.grids] == [(g.height, g.width) for g in dst.grids]
        return all(
            _cleaned(src.raw_tile(g.level, r, c)) == dst.raw_tile(g.level, r, c)
            for g in src.grids
            for r in range(g.rows)
            for c in range(g.columns)
        )


def _uids(files: list[Path], keyword: str) -> set[str]:
    return {str(pydicom.dcmread(f, stop_before_pixels=True).get(keyword)) for f in files}


def test_synthetic_copy_is_clean_and_byte_identical(tmp_path: Path) -> None:
    openslide = pytest.importorskip("openslide")
    slide = write_dicom_wsi(tmp_path / "src", seed=31)
    assert sorted(openslide.OpenSlide(str(slide.path / "level-0.dcm")).associated_images) == [
        "label",
        "macro",
        "thumbnail",
    ]  # the oracle sees them in the source
    files = _copy(slide.path, tmp_path / "copy")
    assert sorted(f.name for f in files) == ["level-0.dcm", "level-1.dcm", "level-2.dcm"]
    assert _same_tiles(slide.path, tmp_path / "copy")
    data = b"".join(f.read_bytes() for f in files)
    values = [*slide.canaries.values(), *slide.canaries["PatientName"].split("^")]
    assert [v for v in values if v.encode() in data] == []
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "PyramidUID"):
        (uid,) = _uids(files, keyword)  # all levels share it
        assert uid.startswith("2.25.") and uid != slide.canaries[keyword]
    copy = openslide.OpenSlide(str(files[0]))
    assert list(copy.associated_images) == []
    assert copy.level_dimensions == ((1024, 768), (512, 384), (256, 192))
    for f in files:  # pydicom decodes every frame of the copy
        assert pydicom.dcmread(f).pixel_array.shape[0] == int(pydicom.dcmread(f).NumberOfFrames)
    facts = read_facts(tmp_path / "copy", "copy")
    assert facts.associated == () and len(facts.levels) == 3
    assert not any(f.name.startswith("dicom.0009") for f in facts.fields)  # no private tag


def test_uid_remapping_is_keyed_and_consistent(tmp_path: Path) -> None:
    slide = write_dicom_wsi(tmp_path / "src", seed=32, single=True)
    a = _copy(slide.path, tmp_path / "a")
    b = _copy(slide.path, tmp_path / "b")
    c = _copy(slide.path, tmp_path / "c", key=b"other key")
    assert _uids(a, "StudyInstanceUID") == _uids(b, "StudyInstanceUID")  # same key, same UID
    assert _uids(a, "StudyInstanceUID") != _uids(c, "StudyInstanceUID")  # new key, new UID


def test_real_dicom_copies(real_slides: Path, tmp_path: Path) -> None:
    known = [b"Test^Patient", b"AA01", b"17890505", b"S19-1_A_1_1", b"abcd", b"20190604",
             b"20190822", b"20091229095915", b"20210720", b"133842", b"wsiget"]  # fmt: skip
    for name in ("cmu-1-small-region-wsi2dcm", "highdicom_sm_image.dcm", "wsi2dcm_raw.dcm"):
        source = real_slides / "dicom-wsi" / name
        files = _copy(source, tmp_path / name)
        assert _same_tiles(source, tmp_path / name), name
        src_files = [source] if source.is_file() else sorted(source.iterdir())
        src_uids: set[str] = set()
        for f in src_files:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
            src_uids |= {
                str(el.value)
                for el in ds.iterall()
                if el.VR == "UI" and not str(el.value).startswith("1.2.840.10008.")
            }
        data = b"".join(f.read_bytes() for f in files)
        assert [k for k in known if k in data] == []
        assert [u for u in src_uids if u.encode() in data] == []
        # what the audit stage runs on a copy: no finding, and the re-open check passes
        facts = read_facts(source, source.name)
        plan = plan_deid(facts, load_deid_policy(POLICY), "s-00000000000000aa")
        needles = copy_needles(phi_needles(facts, plan).needles, "dicom")
        assert scan_tree(tmp_path / name, needles) == (), name
        assert check_copy(tmp_path / name, plan, source) == [], name
