"""Synthetic Philips TIFF (IntelliSite UFS export) in the real layout.

Page 0 is the tiled JPEG base level with the `<DataObject ObjectType="DPUfsImport">` XML as
ImageDescription and Software `Philips DP v1.0`; reduced levels are tiled pages padded to whole
tiles (their true size comes from the XML pixel spacing, as in scanner output); then stripped
`Label` and `Macro` pages. The XML also embeds the label and macro as base64 JPEG
(PIM_DP_IMAGE_DATA, LABELIMAGE / MACROIMAGE). Canaries in DICOM_DEVICE_SERIAL_NUMBER,
PIIM_DP_SCANNER_OPERATOR_ID, rack and slot numbers, PIM_DP_UFS_BARCODE, PIM_DP_SOURCE_FILE,
the calibration date and the acquisition datetime (a date); label text in the pixels.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np
import tifffile

from slidegate.synth.texture import RGB
from slidegate.synth.vendors.common import Planter, VendorSlide, label_and_macro, pyramid

TILE = 128
PLANTED = (
    "philips.DICOM_DEVICE_SERIAL_NUMBER",
    "philips.PIIM_DP_SCANNER_OPERATOR_ID",
    "philips.PIIM_DP_SCANNER_RACK_NUMBER",
    "philips.PIIM_DP_SCANNER_SLOT_NUMBER",
    "philips.PIM_DP_UFS_BARCODE",
    "philips.PIM_DP_SOURCE_FILE",
)


def _attr(name: str, value: str, vr: str = "IString") -> str:
    return (
        f'<Attribute Name="{name}" Group="0x0000" Element="0x0000" PMSVR="{vr}">{value}</Attribute>'
    )


def _jpeg_b64(img: RGB) -> str:
    return base64.b64encode(bytes(imagecodecs.jpeg8_encode(img, level=90))).decode("ascii")


def philips_xml(p: Planter, spacings: list[float], label: RGB, macro: RGB) -> str:
    reps = "".join(
        '<DataObject ObjectType="PixelDataRepresentation">'
        + _attr("DICOM_PIXEL_SPACING", f"&quot;{s:.6f}&quot; &quot;{s:.6f}&quot;", "IDoubleArray")
        + _attr("PIIM_PIXEL_DATA_REPRESENTATION_NUMBER", str(k), "IUInt16")
        + "</DataObject>"
        for k, s in enumerate(spacings)
    )
    images = (
        '<DataObject ObjectType="DPScannedImage">' + _attr("PIM_DP_IMAGE_TYPE", "WSI")
        + _attr("PIIM_PIXEL_DATA_REPRESENTATION_SEQUENCE", f"<Array>{reps}</Array>",
                "IDataObjectArray")
        + "</DataObject>"
        + "".join(
            '<DataObject ObjectType="DPScannedImage">' + _attr("PIM_DP_IMAGE_TYPE", kind)
            + _attr("PIM_DP_IMAGE_DATA", _jpeg_b64(img), "IString") + "</DataObject>"
            for kind, img in (("LABELIMAGE", label), ("MACROIMAGE", macro))
        )
    )  # fmt: skip
    fields = "".join(_attr(name.removeprefix("philips."), p.planted[name]) for name in PLANTED)
    return (
        '<?xml version="1.0" encoding="UTF-8" ?>\n<DataObject ObjectType="DPUfsImport">'
        + _attr("DICOM_ACQUISITION_DATETIME", p.planted["philips.DICOM_ACQUISITION_DATETIME"])
        + _attr("DICOM_DATE_OF_LAST_CALIBRATION",
                f"&quot;{p.planted['philips.DICOM_DATE_OF_LAST_CALIBRATION']}&quot;",
                "IStringArray")
        + _attr("DICOM_MANUFACTURER", "PHILIPS")
        + fields
        + _attr("PIM_DP_SCANNED_IMAGES", f"<Array>{images}</Array>", "IDataObjectArray")
        + "</DataObject>"
    )  # fmt: skip


def _padded(img: RGB) -> RGB:
    h, w = img.shape[:2]
    return np.pad(img, ((0, -h % TILE), (0, -w % TILE), (0, 0)))


def write_philips(path: Path, seed: int = 1) -> VendorSlide:
    p = Planter(seed, "PHIL")
    for name in PLANTED:
        p(name)
    p.date("philips.DICOM_ACQUISITION_DATETIME", "20130405060708.000000")
    p.date("philips.DICOM_DATE_OF_LAST_CALIBRATION", "20130101")
    levels = pyramid(seed, (480, 600), 3)
    lines = (p("label.line1"), p("label.line2"))
    label, macro = label_and_macro(lines, levels[-1], (120, 200), (160, 480))
    xml = philips_xml(p, [0.00025 * 2**k for k in range(len(levels))], label, macro)
    common: dict[str, Any] = {"photometric": "rgb", "metadata": None, "compression": "jpeg",
                              "software": "Philips DP v1.0"}  # fmt: skip
    with tifffile.TiffWriter(path, bigtiff=False) as w:
        w.write(levels[0], tile=(TILE, TILE), description=xml, **common)
        for img in levels[1:]:
            w.write(_padded(img), tile=(TILE, TILE), description="", **common)
        w.write(label, rowsperstrip=32, description="Label", **common)
        w.write(macro, rowsperstrip=32, description="Macro", **common)
    canaries = {k: v for k, v in p.planted.items() if not k.startswith("philips.DICOM_A")}
    canaries.pop("philips.DICOM_DATE_OF_LAST_CALIBRATION")
    canaries["philips.DICOM_DATE_OF_LAST_CALIBRATION"] = '"20130101"'
    return VendorSlide(
        path=path,
        format="philips",
        canaries=canaries,
        label_lines=lines,
        associated=((120, 200), (160, 480)),
        level_shapes=tuple(img.shape[:2] for img in levels),
        extra={"philips.DICOM_ACQUISITION_DATETIME": "20130405060708.000000"},
    )
