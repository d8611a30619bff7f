"""JPEG streams cleaned whole: each hiding place removed, pixels and entropy-coded data kept."""

from __future__ import annotations

import imagecodecs
import numpy as np
import pytest

from slidegate.payload import (
    PayloadError,
    Unparsable,
    check_jpeg,
    check_jpeg_tables,
    clean_jpeg,
    clean_jpeg_tables,
    coding_digest,
)
from tests.payload import crafts

SECRET = b"CANARY-PAYLOAD-7d1e"


def _scan_data(data: bytes) -> bytes:
    """The bytes from the first SOS to the EOI: what a cleaner must never change."""
    return data[crafts.sos_positions(data)[0] :]


@pytest.mark.parametrize("place", sorted(crafts.jpeg_hiding_places(b"\xff\xd8\xff\xd9", b"x")))
def test_each_hiding_place_is_removed_losslessly(place: str) -> None:
    img = crafts.image()
    clean = crafts.jpeg(img)
    dirty = crafts.jpeg_hiding_places(clean, SECRET)[place]
    assert SECRET[:3] in dirty
    with pytest.raises(PayloadError) as err:
        check_jpeg(dirty)
    assert err.value.rule.startswith("jpeg.") and SECRET.decode() not in str(err.value)
    out = clean_jpeg(dirty)
    assert SECRET[:3] not in out and len(out) < len(dirty)
    check_jpeg(out)  # nothing left to remove
    np.testing.assert_array_equal(imagecodecs.jpeg8_decode(out), imagecodecs.jpeg8_decode(clean))
    assert _scan_data(out).endswith(_scan_data(clean)[:-2] + b"\xff\xd9")
    assert coding_digest(dirty) == coding_digest(out)


def test_bare_jfif_and_adobe_headers_are_kept() -> None:
    clean = crafts.jpeg(crafts.image())
    assert clean[2:4] == b"\xff\xe0"  # imagecodecs writes a bare JFIF APP0
    assert clean_jpeg(clean) is clean
    adobe = crafts.after_soi(clean, crafts.segment(0xEE, b"Adobe\x00\x64\x00\x00\x00\x00\x01"))
    assert clean_jpeg(adobe) == adobe
    thumb = crafts.jpeg_hiding_places(clean, SECRET)["jfif-thumbnail"]
    assert clean_jpeg(thumb)[2:20] == clean[2:20]  # the bare 16-byte JFIF header stays


def test_progressive_stream_with_com_between_scans() -> None:
    img = crafts.image(96, 96)
    prog = crafts.progressive(img)
    assert len(crafts.sos_positions(prog)) > 2
    check_jpeg(prog)
    dirty = crafts.com_between_scans(prog, SECRET)
    with pytest.raises(PayloadError, match=r"jpeg\.com"):
        check_jpeg(dirty)
    out = clean_jpeg(dirty)
    assert out == prog  # Pillow writes no COM of its own: the original comes back exactly
    np.testing.assert_array_equal(imagecodecs.jpeg8_decode(out), imagecodecs.jpeg8_decode(prog))


def test_tables_stream_with_trailing_text_and_com() -> None:
    tables = crafts.segment(0xDB, bytes([0]) + bytes(range(1, 65)))
    stream = b"\xff\xd8" + tables + b"\xff\xd9"
    check_jpeg_tables(stream)
    dirty = crafts.after_soi(crafts.tables_with_trailer(stream, SECRET),
                             crafts.segment(0xFE, SECRET))  # fmt: skip
    with pytest.raises(PayloadError):
        check_jpeg_tables(dirty)
    assert clean_jpeg_tables(dirty) == stream
    with pytest.raises(Unparsable):  # a table stream holds no frame
        clean_jpeg_tables(crafts.jpeg(crafts.image()))


@pytest.mark.parametrize(
    ("name", "mutate", "rule"),
    [
        ("truncated", lambda d: d[: len(d) // 2], "jpeg.no-eoi"),
        ("no soi", lambda d: d[2:], "jpeg.no-soi"),
        ("marker in scan", lambda d: d[:-40] + b"\xff\x55" + d[-38:], "jpeg.marker-55"),
        ("slack in DQT", lambda d: d[:2] + crafts.segment(0xDB, bytes(65) + SECRET) + d[2:],
         "jpeg.marker-db-fields"),
        ("bytes between segments", lambda d: d[:2] + SECRET + d[2:], "jpeg.bytes-outside-segment"),
        ("bad length", lambda d: d[:4] + b"\xff\xff" + d[6:], "jpeg.segment-length"),
    ],
)  # fmt: skip
def test_what_cannot_be_walked_is_unparsable(name: str, mutate: object, rule: str) -> None:
    data = mutate(crafts.jpeg(crafts.image()))  # type: ignore[operator]
    with pytest.raises(Unparsable) as err:
        clean_jpeg(data)
    assert err.value.rule == rule, name
    assert SECRET.decode() not in str(err.value) and SECRET.decode() not in err.value.reason


def test_restart_markers_and_dicom_padding_are_coding_data() -> None:
    img = crafts.image(64, 64)
    rst = bytes(imagecodecs.jpeg8_encode(img, level=85))
    # a restart interval of one MCU row: re-encode through Pillow, which supports it
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=85, restart_marker_rows=1)
    with_rst = buf.getvalue()
    assert b"\xff\xd0" in with_rst and b"\xff\xdd" in with_rst
    check_jpeg(with_rst)
    check_jpeg(rst + b"\x00")  # one pad byte of an odd-length DICOM fragment
    assert clean_jpeg(rst + b"\x00") == rst
    with pytest.raises(PayloadError, match="after-eoi"):
        check_jpeg(rst + b"\x00\x00")
