"""Every real DICOM WSI sample (real-slides/dicom-wsi) through the release flow, one cohort.

The multi-instance folder is one slide; the single files are one slide each; the EZ-WSI file
holds only a LABEL instance and must be quarantined (no pyramid), never published. No
identifying value of SOURCES.md, no UID and no date/time of any instance may appear in any
output byte; every released level must match pydicom's own decode of the source frames.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pydicom
import pytest
import zarr
from pydicom.pixels import iter_pixels

from slidegate.settings import Settings
from tests.releasing import release_folder

pytestmark = pytest.mark.integration

#: identifying values named in SOURCES.md for these files (name parts included)
KNOWN = [
    "Test^Patient", "Test^Physician", "AA01", "17890505", "S19-1_A_1_1", "S19-1_A", "CBF-1234",
    "abcd", "20190604", "101000", "20190822", "113618", "20091229095915", "20220331", "010953",
    "20210720", "133842", "20220307", "214148", "test12", "Test Manufacturer", "Test Model",
    "Test Version v0.1.0", "wsiget",
]  # fmt: skip
_IDENTIFYING_VRS = {"UI", "DA", "TM", "DT", "PN", "LO", "SH", "LT", "ST", "UT"}
_STANDARD_UID = "1.2.840.10008."


def _files(entry: Path) -> list[Path]:
    return [entry] if entry.is_file() else sorted(p for p in entry.rglob("*") if p.is_file())


def _values(ds: pydicom.Dataset) -> set[str]:
    """Every UID, date, time, name and id-like string of an instance (not standard UIDs)."""
    out: set[str] = set()
    for el in ds.iterall():
        if el.VR not in _IDENTIFYING_VRS or el.value in (None, ""):
            continue
        if el.tag in (0x00080016, 0x00020002, 0x00020010):  # SOP class / transfer syntax
            continue
        for v in el.value if isinstance(el.value, list) else [el.value]:
            text = str(v).strip()
            long_enough = el.VR in ("UI", "DA", "TM", "DT", "PN") and len(text) >= 6
            if long_enough and not text.startswith(_STANDARD_UID):
                out.add(text)
    return out


def _without_hex(data: bytes) -> bytes:
    """`data` without hex runs of 12+ characters (sha256 sums, pseudonyms): random hex holds a
    short value such as the DeviceSerialNumber "abcd" by chance."""
    return re.sub(rb"[0-9a-f]{12,}", b"-", data)


def _gx_asset(path: Path) -> bool:
    """A Great Expectations data-docs asset (logo, font, style) shipped byte for byte by the
    package: it carries no slide data, but its SVG path numbers may contain a 6-digit DICOM
    time by chance (e.g. "101000")."""
    import great_expectations

    if "static" not in path.parts:
        return False
    static = Path(great_expectations.__file__).parent / "render" / "view" / "static"
    shipped = static / Path(*path.parts[path.parts.index("static") + 1 :])
    return shipped.is_file() and shipped.read_bytes() == path.read_bytes()


def _is_label_only(entry: Path) -> bool:
    types = [pydicom.dcmread(f, stop_before_pixels=True).ImageType[2] for f in _files(entry)]
    return "VOLUME" not in types


def _pydicom_levels(entry: Path) -> dict[tuple[int, int], np.ndarray]:
    """(height, width) -> level assembled from pydicom's decode of its frames (TILED_FULL)."""
    out = {}
    for file in _files(entry):
        ds = pydicom.dcmread(file, stop_before_pixels=True)
        if ds.ImageType[2] != "VOLUME":
            continue
        h, w = int(ds.TotalPixelMatrixRows), int(ds.TotalPixelMatrixColumns)
        th, tw = int(ds.Rows), int(ds.Columns)
        cols = -(-w // tw)
        level = np.zeros((-(-h // th) * th, cols * tw, 3), np.uint8)
        for i, frame in enumerate(iter_pixels(str(file))):
            r, c = divmod(i, cols)
            level[r * th : (r + 1) * th, c * tw : (c + 1) * tw] = frame
        out[(h, w)] = level[:h, :w]
    return out


def test_real_dicom_release_scrubbed_label_quarantined_pixels_match(
    real_slides: Path, prefect_server: object, tmp_path: Path
) -> None:
    from slidegate.pseudonym import load_or_create_key
    from slidegate.stages.context import key_path

    source = real_slides / "dicom-wsi"
    entries = sorted(p for p in source.iterdir() if not p.name.startswith("."))
    assert {"cmu-1-small-region-wsi2dcm", "ezwsi_label_test_wsi.dcm"} <= {p.name for p in entries}
    before = {f: hashlib.sha256(f.read_bytes()).hexdigest() for e in entries for f in _files(e)}
    needles = set(KNOWN)
    for e in entries:
        for f in _files(e):
            needles |= _values(pydicom.dcmread(f, stop_before_pixels=True))
    raw = b"".join(f.read_bytes() for f in before)
    assert all(n.encode() in raw for n in KNOWN)  # the needles are real: they are in the sources
    rows = [
        f"{e.name},DCMPAT{i},DCMBLK{i},DCMSPC{i},{50 + i},F,C18.7,colon,2021-07-20"
        for i, e in enumerate(entries)
    ]
    result, release = release_folder(tmp_path, source, "dcm-1", rows)
    labels = [e for e in entries if _is_label_only(e)]
    assert result["published"] is True
    assert result["counts"]["approved"] == len(entries) - len(labels)
    files = [p for p in release.rglob("*") if p.is_file() and not _gx_asset(p)]
    hits = set()
    for p in files:
        raw = p.read_bytes()
        short = _without_hex(raw)  # short values are searched outside random hex only
        hits |= {(p.name, n[:4]) for n in needles if n.encode() in (short if len(n) < 12 else raw)}
    assert sorted(hits) == []  # (file, first characters of the value) if this ever fails
    assert not any(n in str(p) for p in files for n in needles)
    name_parts = re.compile(rb"\b(?:Test|Patient|Physician)\b")  # of Test^Patient, Test^Physician
    assert [p.name for p in files if name_parts.search(p.read_bytes())] == []
    pseudo = load_or_create_key(key_path(Settings(work_dir=tmp_path / "work"), "dcm-1"))
    statuses = {
        r["slide"]: r for r in json.loads((release / "reports" / "slides.json").read_text())
    }
    for entry in entries:
        pseudonym = pseudo("s", entry.name)
        zpath = release / "slides" / f"{pseudonym}.ome.zarr"
        if entry in labels:  # a LABEL instance alone: quarantined, never published
            assert statuses[pseudonym]["status"] == "quarantined"
            assert "without pyramid" in statuses[pseudonym]["reason"]
            assert not zpath.exists()
            continue
        assert statuses[pseudonym]["status"] == "approved", statuses[pseudonym]
        group = zarr.open_group(zpath, mode="r")
        expected = _pydicom_levels(source / entry.name)
        keys = sorted(group.array_keys(), key=int)
        assert len(keys) == len(expected)
        for k in keys:
            level = np.asarray(group[k]).transpose(1, 2, 0)
            ref = expected[level.shape[:2]]
            assert np.abs(level.astype(int) - ref.astype(int)).max() <= 2, (entry.name, k)
    after = {f: hashlib.sha256(f.read_bytes()).hexdigest() for f in before}
    assert after == before


def test_synthetic_dicom_release_has_no_canary(prefect_server: object, tmp_path: Path) -> None:
    """Synthetic slides with canaries in every PS3.15 field, private tags and label pixels:
    a multi-instance folder (label, overview, thumbnail), a single file, and a folder whose
    pyramid declares a burned-in annotation (quarantined by policy)."""

    from slidegate.synth.dicom import write_dicom_wsi

    source = tmp_path / "slides"
    slides = {
        "folder": write_dicom_wsi(source / "folder", seed=21),
        "single.dcm": write_dicom_wsi(source / "single.dcm", seed=22, single=True),
        "burned": write_dicom_wsi(source / "burned", seed=23, burned_in_pyramid=True),
    }
    canaries = [
        {"field": f"{name}:{key}", "value": value}
        for name, slide in slides.items()
        for key, value in slide.canaries.items()
    ]
    rows = [
        f"{name},SYNPAT{i},SYNBLK{i},SYNSPC{i},{40 + i},M,C18.7,colon,2020-01-0{i + 1}"
        for i, name in enumerate(slides)
    ]
    result, release = release_folder(tmp_path, source, "dcm-syn", rows, canaries=canaries)
    assert result["counts"]["quarantined"] == 1 and result["counts"]["approved"] == 2
    files = [p for p in release.rglob("*") if p.is_file()]
    values = [c["value"] for c in canaries]
    values += [p for c in canaries for p in c["value"].split("^") if "^" in c["value"]]
    hits = sorted({(p.name, v[:6]) for p in files for v in values if v.encode() in p.read_bytes()})
    assert hits == []
    reports = json.loads((release / "reports" / "slides.json").read_text())
    quarantined = [r for r in reports if r["status"] == "quarantined"]
    assert "burned-in" in quarantined[0]["reason"]
    for zpath in (release / "slides").iterdir():
        group = zarr.open_group(zpath, mode="r")
        shapes = sorted(tuple(group[k].shape) for k in group.array_keys())  # type: ignore[union-attr]
        assert (3, 200, 400) not in shapes and (3, 200, 600) not in shapes  # label, overview
        assert (3, 96, 128) not in shapes  # thumbnail
