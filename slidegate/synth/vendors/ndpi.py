"""Synthetic Hamamatsu NDPI in the real NDPI file structure.

tifffile cannot write NDPI (its IFDs differ from TIFF: an 8-byte next-IFD offset after the
entries, then one 4-byte high-offset word per entry), so this module writes the bytes itself:
little-endian classic header, then per page one JPEG strip (or raw bytes for the map) and an
NDPI IFD. Pages as in scanner output: levels with Magnification (65421) 40, 20, 10 and
focal plane (65424) 0, the macro (65421 = -1; a photo with the paper label, canary text in its
pixels), the map (-2). Every page carries Make, Model, Software, DateTime, the NDPI marker
65420, Reference / SlideLabel 65427, AuthCode 65428, the scanner serial 65442, a barcode
65468 and the 65449 property text, all canaries.
"""

from __future__ import annotations

import struct
from pathlib import Path

import imagecodecs
import numpy as np

from slidegate.synth.vendors.common import Planter, VendorSlide, gray, label_and_macro, pyramid

ASCII, SHORT, LONG, RATIONAL, SLONG, FLOAT = 2, 3, 4, 5, 9, 11
Tag = tuple[int, int, int, bytes]  # code, type, count, value bytes


def _ascii(code: int, text: str) -> Tag:
    data = text.encode("ascii") + b"\0"
    return code, ASCII, len(data), data


def _num(code: int, typ: int, *values: float) -> Tag:
    fmt = {SHORT: "H", LONG: "I", SLONG: "i", FLOAT: "f", RATIONAL: "II"}[typ]
    if typ == RATIONAL:
        data = b"".join(struct.pack("<II", int(v), 1) for v in values)
    else:
        data = struct.pack(f"<{len(values)}{fmt}", *values)
    return code, typ, len(values), data


def _ifd(tags: list[Tag], at: int, next_ifd: int) -> bytes:
    """One NDPI IFD at file offset `at`: entries, 8-byte next offset, high words, then the
    values that do not fit inline."""
    tags = sorted(tags)
    n = len(tags)
    heap_at = at + 2 + n * 12 + 8 + n * 4
    entries, heap = b"", b""
    for code, typ, count, data in tags:
        if len(data) <= 4:
            field = data.ljust(4, b"\0")
        else:
            field = struct.pack("<I", heap_at + len(heap))
            heap += data + (b"\0" if len(data) % 2 else b"")
        entries += struct.pack("<HHI", code, typ, count) + field
    return struct.pack("<H", n) + entries + struct.pack("<Q", next_ifd) + b"\0" * (4 * n) + heap


def _page_tags(p: Planter, mag: float, shape: tuple[int, ...], jpeg: bool) -> list[Tag]:
    h, w = shape[:2]
    samples = shape[2] if len(shape) == 3 else 1
    px_per_cm = 10000 / 0.23 * 40 / mag if mag > 0 else 150
    tags = [
        _num(256, LONG, w),
        _num(257, LONG, h),
        _num(258, SHORT, *([8] * samples)),
        _num(259, SHORT, 7 if jpeg else 1),
        _num(262, SHORT, 6 if jpeg else 1),
        _num(277, SHORT, samples),
        _num(278, LONG, h),
        _num(282, RATIONAL, round(px_per_cm)),
        _num(283, RATIONAL, round(px_per_cm)),
        _num(296, SHORT, 3),
        _ascii(271, "Hamamatsu"),
        _ascii(272, p.planted["tiff.Model"]),
        _ascii(305, p.planted["tiff.Software"]),
        _ascii(306, p.planted["tiff.DateTime"]),
        _num(65420, LONG, 1),
        _num(65421, FLOAT, mag),
        _num(65424, SLONG, 0),
        _ascii(65427, p.planted["ndpi.SlideLabel"]),
        _num(65428, LONG, int(p.planted["ndpi.AuthCode"])),
        _ascii(65442, p.planted["ndpi.ScannerSerialNumber"]),
        _ascii(65468, p.planted["ndpi.Barcode"]),
        _ascii(65449, p.planted["_comments"]),
    ]
    if jpeg and samples == 3:
        tags.append(_num(530, SHORT, 1, 1))
    return tags


def _plant(p: Planter) -> None:
    p("tiff.Model")
    p("tiff.Software")
    p.date("tiff.DateTime", "2016:11:22 08:09:10")
    p("ndpi.SlideLabel")
    p.date("ndpi.AuthCode", "3141592653")
    p("ndpi.ScannerSerialNumber")
    p("ndpi.Barcode")
    created = p.date("ndpi.Comments.Created", "2009/04/05")
    sn = p("ndpi.Comments.NDP.S/N")
    macro_sn = p("ndpi.Comments.Macro.S/N")
    shading_sn = p("ndpi.Comments.SerialNumber")
    barcode = p("ndpi.Comments.BarcodeNoR")
    p.planted["_comments"] = (
        f"Created={created}\r\nUpdated=2016/11/21\r\nProduct=C9600-12\r\nNDP.S/N={sn}\r\n"
        f"Macro.S/N={macro_sn}\r\nroi.barcode.macro=948,281,1253,682\r\n"
        f"Objective.Lens.Magnificant=35.16\r\n;NDP Shading Data;Version=0004;Date=2016/11/20;"
        f"SerialNumber={shading_sn};BarcodeNoR={barcode}\r\n"
    )


def write_ndpi(path: Path, seed: int = 1) -> VendorSlide:
    p = Planter(seed, "NDPI")
    _plant(p)
    levels = pyramid(seed, (384, 512), 3)
    lines = (p("label.line1"), p("label.line2"))
    _, macro = label_and_macro(lines, levels[-1], (160, 120), (160, 480))
    pages: list[tuple[float, np.ndarray, bool]] = [
        (40.0 / 2**i, img, True) for i, img in enumerate(levels)
    ]
    pages += [(-1.0, macro, True), (-2.0, gray(macro[::2, ::2]), False)]
    blobs = [
        bytes(imagecodecs.jpeg8_encode(img, level=92)) if jpeg else img.tobytes()
        for _, img, jpeg in pages
    ]
    out = bytearray(b"II*\0" + b"\0" * 8)  # NDPI: 8-byte first-IFD offset
    data_at = []
    for blob in blobs:
        data_at.append(len(out))
        out += blob + (b"\0" if len(blob) % 2 else b"")
    ifd_at = len(out)
    struct.pack_into("<Q", out, 4, ifd_at)
    for k, ((mag, img, jpeg), blob) in enumerate(zip(pages, blobs, strict=True)):
        tags = _page_tags(p, mag, img.shape, jpeg)
        tags += [_num(273, LONG, data_at[k]), _num(279, LONG, len(blob))]
        probe = _ifd(tags, ifd_at, 0)
        nxt = ifd_at + len(probe) if k + 1 < len(pages) else 0
        out += _ifd(tags, ifd_at, nxt)
        ifd_at = len(out)
    path.write_bytes(bytes(out))
    canaries = {k: v for k, v in p.planted.items() if not k.startswith("_")}
    return VendorSlide(
        path=path,
        format="ndpi",
        canaries=canaries,
        label_lines=lines,
        associated=((160, 480), (80, 240)),
        level_shapes=tuple(img.shape[:2] for img in levels),
    )
