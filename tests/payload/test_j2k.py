"""JPEG 2000 payloads: bare codestream only, COM removed from every header, nothing after EOC."""

from __future__ import annotations

import imagecodecs
import numpy as np
import pytest

from slidegate.payload import PayloadError, Unparsable, check_j2k, clean_j2k, coding_digest
from tests.payload import crafts

SECRET = b"CANARY-J2K-41c09b"


def _decode(data: bytes) -> np.ndarray:
    return np.asarray(imagecodecs.jpeg2k_decode(data))


@pytest.fixture(scope="module")
def code() -> bytes:
    return clean_j2k(crafts.j2k(crafts.image()))  # OpenJPEG's own COM removed


def test_encoder_com_is_removed_and_pixels_kept() -> None:
    raw = crafts.j2k(crafts.image())
    assert b"OpenJPEG" in raw
    with pytest.raises(PayloadError, match=r"j2k\.com"):
        check_j2k(raw)
    out = clean_j2k(raw)
    assert b"OpenJPEG" not in out and len(out) < len(raw)
    check_j2k(out)
    np.testing.assert_array_equal(_decode(out), _decode(raw))


@pytest.mark.parametrize(
    ("place", "rule"),
    [
        ("main-com", "j2k.com"),
        ("tile-part-com", "j2k.tile-part-com"),
        ("after-eoc", "j2k.after-eoc"),
        ("jp2-xml", "j2k.jp2-box"),
    ],
)
def test_each_hiding_place_is_removed_losslessly(code: bytes, place: str, rule: str) -> None:
    img = crafts.image()
    dirty = {
        "main-com": lambda: crafts.j2k_main_com(code, SECRET),
        "tile-part-com": lambda: crafts.j2k_tile_part_com(code, SECRET),
        "after-eoc": lambda: code + SECRET,
        "jp2-xml": lambda: crafts.jp2_with_xml(img, SECRET),
    }[place]()
    assert SECRET in dirty
    np.testing.assert_array_equal(_decode(dirty), _decode(code))  # decoders skip it
    with pytest.raises(PayloadError) as err:
        check_j2k(dirty)
    assert err.value.rule == rule and SECRET.decode() not in str(err.value)
    out = clean_j2k(dirty)
    assert SECRET not in out and out.startswith(b"\xff\x4f\xff\x51")
    check_j2k(out)
    np.testing.assert_array_equal(_decode(out), _decode(code))
    if place != "jp2-xml":
        assert out == code and coding_digest(dirty) == coding_digest(code)


@pytest.mark.parametrize(
    ("name", "mutate", "rule"),
    [
        ("truncated", lambda d: d[: len(d) - 40], "j2k.psot"),
        ("no soc", lambda d: d[2:], "j2k.no-soc"),
        ("marker in bit stream", lambda d: d[:-30] + b"\xff\xa0" + d[-28:],
         "j2k.marker-in-bitstream"),
        ("unknown main marker", lambda d: crafts.j2k_main_com(d, SECRET).replace(
            b"\xff\x64", b"\xff\x6f", 1), "j2k.marker-6f"),
    ],
)  # fmt: skip
def test_what_cannot_be_walked_is_unparsable(code: bytes, name: str, mutate: object,
                                             rule: str) -> None:  # fmt: skip
    with pytest.raises(Unparsable) as err:
        clean_j2k(mutate(code))  # type: ignore[operator]
    assert err.value.rule == rule, name


def test_jp2_whose_header_changes_the_decode_is_unparsable() -> None:
    jp2 = bytes(imagecodecs.jpeg2k_encode(crafts.image(), level=0, codecformat="jp2"))
    colr = jp2.find(b"colr")
    sycc = jp2[: colr + 7] + (18).to_bytes(4, "big") + jp2[colr + 11 :]  # sYCC: converted
    with pytest.raises(Unparsable, match="jp2-colour"):
        clean_j2k(sycc)


def test_dicom_padding_is_allowed(code: bytes) -> None:
    check_j2k(code + b"\x00")
    assert clean_j2k(code + b"\x00") == code
