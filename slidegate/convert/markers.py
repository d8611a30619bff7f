"""Refuse to pass through compressed tiles that carry metadata segments.

A JPEG stream can hold free text before its scan (COM, APP1..APP15: EXIF, XMP, vendor blocks)
and a JPEG 2000 codestream in its main header (COM). Copied byte for byte, such text would be
published unseen by the de-identification plan. So every pass-through payload (and the shared
JPEG tables) is checked: only coding segments are allowed, plus a plain JFIF APP0 and an Adobe
APP14 colour-transform flag; in JPEG 2000 only a COM that is an encoder signature. Anything else
raises `MetadataInTile` and the level is re-encoded instead. The check reads only the headers
(a few segment lengths per tile), never the entropy-coded data.
"""

from __future__ import annotations

from slidegate.errors import SlidegateError

#: JPEG markers allowed before the scan: SOFn, DHT, DAC, DQT, DRI, DNL, EXP
_JPEG_CODING = {*range(0xC0, 0xD0), 0xDB, 0xDD, 0xDC, 0xDF}
#: JPEG 2000 main-header markers allowed before the first tile-part (SOT)
_J2K_CODING = {0x51, 0x52, 0x53, 0x5C, 0x5D, 0x5E, 0x5F, 0x55, 0x57, 0x60, 0x63, 0x50, 0x59}
_J2K_COM_OK = (b"Created by OpenJPEG", b"Kakadu", b"Kdu", b"Created by Aperio")


class MetadataInTile(SlidegateError):
    """A tile carries a metadata segment: it must not be copied unchanged."""


def _refuse(what: str) -> MetadataInTile:
    return MetadataInTile(
        f"a compressed tile carries a {what} segment; tiles with metadata are re-encoded, "
        "not passed through",
        reason="convert: metadata segment in tile",
    )


def check_jpeg(data: bytes) -> int | None:
    """Segments of a JPEG stream (or abbreviated tables stream) up to its first scan.

    Returns the length L of the header that decided the check: any stream at least L + 2 bytes
    long that starts with the same L bytes passes too (None: the whole stream decided)."""
    if data[:2] != b"\xff\xd8":
        raise _refuse("non-JPEG")
    pos, end = 2, len(data)
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            raise _refuse("malformed JPEG")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xDA, 0xD9):  # start of scan / end of (tables-only) image
            return pos + 2
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        body = data[pos + 4 : pos + 2 + length]
        if marker == 0xE0 and body[:5] == b"JFIF\x00" and length == 16:
            pass  # plain JFIF header, no thumbnail
        elif marker == 0xEE and body[:5] == b"Adobe" and length == 14:
            pass  # colour transform flag
        elif marker not in _JPEG_CODING:
            raise _refuse("COM" if marker == 0xFE else f"APP{marker - 0xE0}" if
                          0xE0 <= marker <= 0xEF else f"0xFF{marker:02X}")  # fmt: skip
        pos += 2 + length
    if data[pos : pos + 2] not in (b"\xff\xd9", b""):
        raise _refuse("truncated JPEG header")
    return None


def check_j2k(data: bytes) -> int | None:
    """Main header of a JPEG 2000 codestream (raw, or in a JP2 box wrapper) up to SOT.
    Returns the length of the deciding header, as `check_jpeg` does."""
    start = data.find(b"\xff\x4f\xff\x51")
    if start < 0:
        raise _refuse("non-JPEG 2000")
    pos, end = start + 2, len(data)
    while pos + 4 <= end:
        marker = data[pos + 1]
        if data[pos] != 0xFF:
            raise _refuse("malformed JPEG 2000")
        if marker == 0x90:  # SOT: first tile-part, main header done
            return pos + 2
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == 0x64:  # COM: Rcom (2 bytes) then text
            text = data[pos + 6 : pos + 2 + length]
            if not text.startswith(_J2K_COM_OK):
                raise _refuse("JPEG 2000 COM")
        elif marker not in _J2K_CODING:
            raise _refuse(f"JPEG 2000 0xFF{marker:02X}")
        pos += 2 + length
    return None
