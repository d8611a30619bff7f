"""Synthetic Ventana / Roche BIF (iScan) in the real page order.

Page 0 `Label Image` (stripped, canary text in its pixels) with the `<iScan>` XMP (tag 700)
carrying UnitNumber, UserName, Barcode1D, Barcode2D, BaseName, BuildDate and JP2FileName
canaries; page 1 `Thumbnail` (the macro-like overview); then tiled `level=N mag=M quality=90`
pages (level 0 with an `<EncodeInfo>` XMP holding the slide name). Software
`ScanOutputManager 1.1.0.15854`, as tifffile's BIF detection expects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tifffile

from slidegate.synth.texture import downsample
from slidegate.synth.vendors.common import Planter, VendorSlide, label_and_macro, pyramid

ATTRS = ("UnitNumber", "UserName", "Barcode1D", "Barcode2D", "BaseName", "JP2FileName")


def iscan_xmp(p: Planter) -> bytes:
    attrs = " ".join(f'{a}="{p.planted["bif.iScan@" + a]}"' for a in ATTRS)
    build = p.planted["bif.iScan@BuildDate"]
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<iScan {attrs} BuildDate="{build}" ScanRes="0.25" Magnification="40">'
        '<AOI0 Left="10" Top="20" Right="400" Bottom="300"/></iScan>'
    ).encode()


def encode_xmp(p: Planter) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><EncodeInfo Ver="2">'
        f"<SlideInfo><AttachedSlideName>{p.planted['bif.EncodeInfo.SlideInfo.AttachedSlideName']}"
        "</AttachedSlideName></SlideInfo></EncodeInfo>"
    ).encode()


def write_bif(path: Path, seed: int = 1) -> VendorSlide:
    p = Planter(seed, "VBIF")
    for a in ATTRS:
        p("bif.iScan@" + a)
    p("bif.EncodeInfo.SlideInfo.AttachedSlideName")
    p.date("bif.iScan@BuildDate", "11/12/2012 10:09:08 AM")
    levels = pyramid(seed, (512, 512), 3)
    lines = (p("label.line1"), p("label.line2"))
    label, _ = label_and_macro(lines, levels[-1], (160, 120), (160, 480))
    thumb = downsample(levels[0], 5)
    common: dict[str, Any] = {"photometric": "rgb", "metadata": None,
                              "software": "ScanOutputManager 1.1.0.15854"}  # fmt: skip
    with tifffile.TiffWriter(path, bigtiff=False) as w:
        w.write(label, rowsperstrip=32, description="Label Image", compression="lzw",
                extratags=[(700, "B", 0, iscan_xmp(p), True)], **common)  # fmt: skip
        w.write(thumb, rowsperstrip=32, description="Thumbnail", compression="jpeg", **common)
        for k, img in enumerate(levels):
            xmp = [(700, "B", 0, encode_xmp(p), True)] if k == 0 else []
            w.write(img, tile=(128, 128), compression="jpeg", extratags=xmp,
                    description=f"level={k} mag={40 >> k} quality=90", **common)  # fmt: skip
    return VendorSlide(
        path=path,
        format="bif",
        canaries={k: v for k, v in p.planted.items() if k != "bif.iScan@BuildDate"},
        label_lines=lines,
        associated=((160, 120), (102, 102)),
        level_shapes=tuple(img.shape[:2] for img in levels),
        extra={"bif.iScan@BuildDate": p.planted["bif.iScan@BuildDate"]},
    )
