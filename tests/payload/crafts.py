"""Compressed payloads with text hidden where decoders do not look, crafted from raw bytes.

Every helper takes a clean stream made by imagecodecs / Pillow and puts `secret` into one
hiding place; the pixels a decoder returns stay those of the clean stream (that is what makes
them hiding places). Used by the payload unit tests and the release-level attack tests.
"""

from __future__ import annotations

import io

import imagecodecs
import numpy as np


def image(h: int = 64, w: int = 80, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (h // 8 + 1, w // 8 + 1, 3), np.uint8)
    return np.ascontiguousarray(base.repeat(8, 0).repeat(8, 1)[:h, :w])


def jpeg(img: np.ndarray) -> bytes:
    return bytes(imagecodecs.jpeg8_encode(img, level=85))


def progressive(img: np.ndarray) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(img).save(out, format="JPEG", quality=85, progressive=True)
    return out.getvalue()


def j2k(img: np.ndarray) -> bytes:
    return bytes(imagecodecs.jpeg2k_encode(img, level=0, codecformat="j2k"))


def segment(marker: int, body: bytes) -> bytes:
    return bytes([0xFF, marker]) + (len(body) + 2).to_bytes(2, "big") + body


def sos_positions(data: bytes) -> list[int]:
    """Offsets of the SOS markers of a JPEG stream (walked by lengths, then scans)."""
    out, pos = [], 2
    while pos < len(data) - 1:
        marker = data[pos + 1]
        if marker == 0xD9:
            break
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == 0xDA:
            out.append(pos)
            pos += 2 + length
            while not (data[pos] == 0xFF and data[pos + 1] not in (0, *range(0xD0, 0xD8))):
                pos += 1
            continue
        pos += 2 + length
    return out


def after_soi(data: bytes, seg: bytes) -> bytes:
    return data[:2] + seg + data[2:]


def before_eoi(data: bytes, seg: bytes) -> bytes:
    assert data.endswith(b"\xff\xd9")
    return data[:-2] + seg + data[-2:]


def jpeg_hiding_places(clean: bytes, secret: bytes) -> dict[str, bytes]:
    """name -> `clean` with `secret` in that place (all decode like `clean`)."""
    n = max(1, len(secret))  # a thumbnail of n x 1 pixels: 3n bytes, the secret three times
    jfif_thumb = segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01" + bytes([n, 1])
                         + (secret * 3 or b"\x00" * 3))  # fmt: skip
    return {
        "after-eoi": clean + secret,
        "com-after-scan": before_eoi(clean, segment(0xFE, secret)),
        "app9-after-scan": before_eoi(clean, segment(0xE9, secret)),
        "com-before-scan": after_soi(clean, segment(0xFE, secret)),
        "exif-app1": after_soi(clean, segment(0xE1, b"Exif\x00\x00" + secret)),
        "xmp-app1": after_soi(clean, segment(
            0xE1, b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta>" + secret + b"</x:xmpmeta>")),
        "icc-app2": after_soi(clean, segment(0xE2, b"ICC_PROFILE\x00\x01\x01" + secret * 4)),
        "fill-then-com": before_eoi(clean, b"\xff\xff" + segment(0xFE, secret)),
        "jfif-thumbnail": clean[:2] + jfif_thumb + clean[20:] if clean[2:4] == b"\xff\xe0"
        else after_soi(clean, jfif_thumb),
        "adobe-extra": after_soi(clean, segment(0xEE, b"Adobe\x00\x64\x00\x00\x00\x00\x01"
                                                + secret)),
    }  # fmt: skip


def com_between_scans(prog: bytes, secret: bytes) -> bytes:
    second = sos_positions(prog)[1]
    return prog[:second] + segment(0xFE, secret) + prog[second:]


def tables_with_trailer(tables: bytes, secret: bytes) -> bytes:
    return tables + secret


def j2k_main_com(code: bytes, secret: bytes) -> bytes:
    """A COM right after SIZ (main header)."""
    siz_end = 4 + int.from_bytes(code[4:6], "big")  # SOC, SIZ marker, Lsiz
    return code[:siz_end] + segment(0x64, b"\x00\x01" + secret) + code[siz_end:]


def j2k_tile_part_com(code: bytes, secret: bytes) -> bytes:
    """A COM in the first tile-part header, its Psot grown to match."""
    sot = code.find(b"\xff\x90\x00\x0a")
    psot = int.from_bytes(code[sot + 6 : sot + 10], "big")
    com = segment(0x64, b"\x00\x01" + secret)
    head = bytearray(code[sot : sot + 12])
    head[6:10] = (psot + len(com)).to_bytes(4, "big")
    return code[:sot] + bytes(head) + com + code[sot + 12 :]


def jp2_with_xml(img: np.ndarray, secret: bytes) -> bytes:
    """A JP2 file (sRGB) with an `xml ` box before the codestream box."""
    jp2 = bytes(imagecodecs.jpeg2k_encode(img, level=0, codecformat="jp2"))
    xml = b"<x>" + secret + b"</x>"
    box = (len(xml) + 8).to_bytes(4, "big") + b"xml " + xml
    at = jp2.find(b"jp2c") - 4
    return jp2[:at] + box + jp2[at:]
