"""Synthetic PerkinElmer / Akoya QPTIFF in the real page order (Vectra Polaris style).

Pages: the full-resolution channel pages (one 8-bit page per channel, tiled), an RGB
thumbnail, the reduced levels (again one page per channel, each half the size), the Overview
(macro photo with the label, canary text in its pixels) and the Label. Every page has the
`<PerkinElmer-QPI-ImageDescription>` XML with SlideID, Barcode, ComputerName, Identifier,
ValidationCode, a filter calibration Date and the ScanProfile name (canaries), Software
`PerkinElmer-QPI` and DateTime.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from slidegate.synth.texture import downsample
from slidegate.synth.vendors.common import Planter, VendorSlide, label_and_macro, pyramid

CHANNELS = ("DAPI", "FITC", "Cy3")


def description(p: Planter, image_type: str, channel: str | None) -> str:
    name = f"  <Name>{channel}</Name>\r\n" if channel else ""
    return (
        '<?xml version="1.0" encoding="utf-16"?>\r\n<PerkinElmer-QPI-ImageDescription>\r\n'
        "  <DescriptionVersion>2</DescriptionVersion>\r\n"
        "  <AcquisitionSoftware>VectraPolaris 1.0</AcquisitionSoftware>\r\n"
        f"  <ImageType>{image_type}</ImageType>\r\n"
        f"  <Identifier>{p.planted['qptiff.Identifier']}</Identifier>\r\n"
        f"  <SlideID>{p.planted['qptiff.SlideID']}</SlideID>\r\n"
        f"  <Barcode>{p.planted['qptiff.Barcode']}</Barcode>\r\n"
        f"  <ComputerName>{p.planted['qptiff.ComputerName']}</ComputerName>\r\n"
        f"{name}  <Objective>10x</Objective>\r\n"
        "  <Responsivity><Filter><Name>DAPI</Name>"
        f"<Date>{p.planted['qptiff.Responsivity.Filter.Date']}</Date></Filter></Responsivity>\r\n"
        '  <ScanProfile><root s_v="1" ref="ref0"><V>8</V>'
        f"<Name>{p.planted['qptiff.ScanProfile.root.Name']}</Name>"
        '<ScanResolution ref="ref2"><PixelSizeMicrons>0.5</PixelSizeMicrons>'
        "</ScanResolution></root></ScanProfile>\r\n"
        f"  <ValidationCode>{p.planted['qptiff.ValidationCode']}</ValidationCode>\r\n"
        "</PerkinElmer-QPI-ImageDescription>"
    )


def write_qptiff(path: Path, seed: int = 1) -> VendorSlide:
    p = Planter(seed, "QPTF")
    for name in ("qptiff.Identifier", "qptiff.SlideID", "qptiff.Barcode", "qptiff.ComputerName",
                 "qptiff.ScanProfile.root.Name", "qptiff.ValidationCode"):  # fmt: skip
        p(name)
    p.date("qptiff.Responsivity.Filter.Date", "2015-06-07T08:09:10.1234567Z")
    p.date("tiff.DateTime", "2015:06:08 09:10:11")
    rgb = pyramid(seed, (512, 384), 3)
    lines = (p("label.line1"), p("label.line2"))
    label, macro = label_and_macro(lines, rgb[-1], (96, 160), (160, 480))
    common: dict[str, Any] = {
        "software": "PerkinElmer-QPI",
        "datetime": p.planted["tiff.DateTime"],
        "metadata": None,
        "compression": "zlib",
        "resolution": (20000.0, 20000.0),
        "resolutionunit": "CENTIMETER",
    }
    with tifffile.TiffWriter(path) as w:
        for level, img in enumerate(rgb):
            if level == 1:
                thumb = downsample(rgb[0], 5)
                w.write(thumb, photometric="rgb", description=description(p, "Thumbnail", None),
                        **common)  # fmt: skip
            for c, channel in enumerate(CHANNELS):
                plane = np.ascontiguousarray(img[:, :, c])
                w.write(
                    plane,
                    photometric="minisblack",
                    tile=(128, 128),
                    description=description(p, "FullResolution", channel),
                    **common,
                )
        w.write(macro, photometric="rgb", description=description(p, "Overview", None), **common)
        w.write(label, photometric="rgb", description=description(p, "Label", None), **common)
    return VendorSlide(
        path=path,
        format="qptiff",
        canaries={k: v for k, v in p.planted.items() if k != "tiff.DateTime"},
        label_lines=lines,
        associated=((102, 76), (160, 480), (96, 160)),
        level_shapes=tuple(img.shape[:2] for img in rgb),
        extra={"tiff.DateTime": p.planted["tiff.DateTime"]},
    )
