"""The damaged inputs of issue 16, crafted from the real files with raw bytes: each is a project
error whose message names the slide as the caller did and never repeats the parser's text."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from slidegate.errors import CorruptSlideError, SlidegateError, UnsupportedSlideError
from slidegate.formats import detect_format, open_reader, read_facts
from tests.fuzz.mutate import tiff_ifds

CUT = [
    "aperio-svs/CMU-1-Small-Region.svs",
    "hamamatsu-ndpi/test3-DAPI-2-387.ndpi",
    "perkinelmer-qptiff/small_vectra.qptiff",
    "ome-tiff/OS-2-ndpi.ome.tif",
    "generic-tiff/boxes.tiff",
    "dicom-wsi/highdicom_sm_image.dcm",
    "zeiss-czi/mosaic_test.czi",
]


@pytest.mark.parametrize("name", CUT)
@pytest.mark.parametrize("keep", [0, 4, 7, 12])
def test_file_cut_short_is_a_project_error(
    real_slides: Path, tmp_path: Path, name: str, keep: int
) -> None:
    src = real_slides / name
    path = tmp_path / src.name
    path.write_bytes(src.read_bytes()[:keep])
    try:  # detection may name the format by its extension (a .czi); it never raises another
        detect_format(path)
    except SlidegateError as exc:
        assert "unpack" not in str(exc)
    with pytest.raises((CorruptSlideError, UnsupportedSlideError)) as caught:
        read_facts(path, "cut-slide")
    assert "unpack" not in str(caught.value) and "struct" not in str(caught.value)


def _entry(data: bytes, tag: int) -> tuple[int, str]:
    """Position of tag `tag` in the first IFD, and the byte order."""
    order, big, offsets = tiff_ifds(data)
    assert not big
    (n,) = struct.unpack_from(order + "H", data, offsets[0])
    for i in range(n):
        pos = offsets[0] + 2 + i * 12
        if struct.unpack_from(order + "H", data, pos)[0] == tag:
            return pos, order
    raise AssertionError(f"tag {tag} not in the first IFD")


@pytest.mark.parametrize("tag", [256, 257])
def test_zero_width_qptiff_page_is_corrupt(real_slides: Path, tmp_path: Path, tag: int) -> None:
    data = bytearray((real_slides / "perkinelmer-qptiff/small_vectra.qptiff").read_bytes())
    pos, order = _entry(bytes(data), tag)
    kind = struct.unpack_from(order + "H", data, pos + 2)[0]
    struct.pack_into(order + ("H" if kind == 3 else "I"), data, pos + 8, 0)
    path = tmp_path / "zero.qptiff"
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptSlideError) as caught:
        read_facts(path, "zero-slide")
    assert "ZeroDivision" not in str(caught.value)


def test_absurd_claim_refused_before_any_allocation(real_slides: Path, tmp_path: Path) -> None:
    """Width and length of a small tiled page both 2**31: refused by the claim check."""
    data = bytearray((real_slides / "generic-tiff/boxes.tiff").read_bytes())
    for tag in (256, 257):
        pos, order = _entry(bytes(data), tag)
        struct.pack_into(order + "H", data, pos + 2, 4)  # LONG
        struct.pack_into(order + "I", data, pos + 4, 1)
        struct.pack_into(order + "I", data, pos + 8, 2**31)
    path = tmp_path / "huge.tiff"
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptSlideError) as caught:
        read_facts(path, "huge-slide")
    assert caught.value.reason in {"corrupt: absurd dimensions", "corrupt: bad tile table"}


def test_unknown_dicom_vr_names_no_value(real_slides: Path, tmp_path: Path) -> None:
    """pydicom's NotImplementedError quotes the bytes; the project error does not."""
    raw = (real_slides / "dicom-wsi/highdicom_sm_image.dcm").read_bytes()
    at = raw.index(b"PN", 132)  # the VR of the first person name (PatientName or a physician)
    damaged = raw[:at] + b"\x45\xce" + raw[at + 2 :]
    path = tmp_path / "vr.dcm"
    path.write_bytes(damaged)
    try:
        facts = read_facts(path, "vr-slide")
        with open_reader(path) as reader:
            for level in facts.levels:
                reader.read(level, 0, 0, 1, 1)
    except SlidegateError as exc:
        text = str(exc)
        assert "vr-slide" in text or "vr.dcm" in text
        assert "Test^Patient" not in text and "Representation" not in text and "0x45" not in text
    else:  # pydicom may read the element as UN: then it is simply a readable file
        assert facts.format == "dicom"


def test_foreign_parser_error_message_is_the_projects(tmp_path: Path) -> None:
    """A TIFF whose first IFD count runs past the end: the project's message, no parser text."""
    path = tmp_path / "short-ifd.tif"
    path.write_bytes(b"II*\x00\x08\x00\x00\x00" + struct.pack("<H", 40) + b"\x00" * 30)
    with pytest.raises(CorruptSlideError) as caught:
        read_facts(path, "short-ifd")
    assert "restore it" in str(caught.value)
