"""Synthetic OME-TIFF as Bio-Formats writes whole-slide exports: series 0 the slide (tiled,
pyramid in SubIFDs), series 1 "label image" and series 2 "macro image" (Bio-Formats names;
canary text in their pixels), one OME-XML in page 0 with canaries in Image@Name, Description,
AcquisitionDate (a date), UUID and UUID@FileName, Creator, Experimenter, the microscope serial
number, OriginalMetadata annotations (`Series 0 Filename`, `... Date`, `... User`, `... DSR ID`,
`... ImageID`, `... ScanScope ID`) and a map annotation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import tifffile

from slidegate.synth.vendors.common import Planter, VendorSlide, label_and_macro, pyramid

NS = "http://www.openmicroscopy.org/Schemas/OME/2016-06"
ORIGINAL = ("Filename", "Date", "User", "DSR ID", "ImageID", "ScanScope ID")


def _image(n: int, name: str, shape: tuple[int, ...], uuid: str, fname: str, extra: str) -> str:
    h, w = shape[:2]
    return (
        f'<Image ID="Image:{n}" Name={quoteattr(name)}>{extra}'
        f'<Pixels ID="Pixels:{n}" DimensionOrder="XYCZT" Type="uint8" SizeX="{w}" SizeY="{h}" '
        'SizeC="3" SizeZ="1" SizeT="1" Interleaved="true" PhysicalSizeX="0.25" '
        'PhysicalSizeY="0.25" PhysicalSizeXUnit="um" PhysicalSizeYUnit="um">'
        f'<Channel ID="Channel:{n}:0" SamplesPerPixel="3"/>'
        f'<TiffData IFD="{n}" PlaneCount="1"><UUID FileName={quoteattr(fname)}>{uuid}</UUID>'
        "</TiffData></Pixels></Image>"
    )


def ome_xml(p: Planter, shapes: list[tuple[int, ...]]) -> str:
    uuid = p.planted["ome.Image.Pixels.TiffData.UUID"]
    fname = p.planted["ome.Image.Pixels.TiffData.UUID@FileName"]
    main_extra = (
        f"<AcquisitionDate>{p.planted['ome.Image.AcquisitionDate']}</AcquisitionDate>"
        '<ExperimenterRef ID="Experimenter:0"/>'
        f"<Description>{p.planted['ome.Image.Description']}</Description>"
    )
    originals = "".join(
        f'<XMLAnnotation ID="Annotation:{k}" Namespace="openmicroscopy.org/OriginalMetadata">'
        f"<Value><OriginalMetadata><Key>Series 0 {key}</Key>"
        f"<Value>{p.planted[f'ome.OriginalMetadata.Series 0 {key}']}</Value>"
        "</OriginalMetadata></Value></XMLAnnotation>"
        for k, key in enumerate(ORIGINAL)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<OME xmlns="{NS}" Creator={quoteattr(p.planted["ome@Creator"])} '
        f"UUID={quoteattr(uuid)}>"
        f'<Experimenter ID="Experimenter:0" FirstName="{p.planted["ome.Experimenter@FirstName"]}"'
        f' LastName="{p.planted["ome.Experimenter@LastName"]}"'
        f' UserName="{p.planted["ome.Experimenter@UserName"]}"/>'
        '<Instrument ID="Instrument:0">'
        f'<Microscope SerialNumber="{p.planted["ome.Instrument.Microscope@SerialNumber"]}"/>'
        '<Objective ID="Objective:0:0" NominalMagnification="20.0"/></Instrument>'
        + _image(0, p.planted["ome.Image@Name"], shapes[0], uuid, fname, main_extra)
        + _image(1, "label image", shapes[1], uuid, fname, "")
        + _image(2, "macro image", shapes[2], uuid, fname, "")
        + f"<StructuredAnnotations>{originals}"
        '<MapAnnotation ID="Annotation:99"><Value>'
        f'<M K="Series 0 Barcode">{p.planted["ome.MapAnnotation.Series 0 Barcode"]}</M>'
        "</Value></MapAnnotation></StructuredAnnotations></OME>"
    )


def write_ome_tiff(path: Path, seed: int = 1) -> VendorSlide:
    p = Planter(seed, "OMET")
    for name in ("ome@Creator", "ome.Image@Name", "ome.Image.Description",
                 "ome.Image.Pixels.TiffData.UUID@FileName", "ome.Experimenter@FirstName",
                 "ome.Experimenter@LastName", "ome.Experimenter@UserName",
                 "ome.Instrument.Microscope@SerialNumber", "ome.MapAnnotation.Series 0 Barcode",
                 *(f"ome.OriginalMetadata.Series 0 {k}" for k in ORIGINAL)):  # fmt: skip
        p(name)
    p.planted["ome.Image.Pixels.TiffData.UUID"] = "urn:uuid:" + p("ome@UUID")
    p.planted["ome@UUID"] = p.planted["ome.Image.Pixels.TiffData.UUID"]
    p.date("ome.Image.AcquisitionDate", "2014-05-06T07:08:09")
    levels = pyramid(seed, (512, 640), 3)
    lines = (p("label.line1"), p("label.line2"))
    label, macro = label_and_macro(lines, levels[-1], (120, 200), (160, 480))
    xml = ome_xml(p, [levels[0].shape, label.shape, macro.shape])
    common: dict[str, Any] = {"photometric": "rgb", "metadata": None, "compression": "zlib"}
    with tifffile.TiffWriter(path, bigtiff=False) as w:
        w.write(levels[0], tile=(128, 128), subifds=len(levels) - 1, description=xml, **common)
        for img in levels[1:]:
            w.write(img, tile=(128, 128), subfiletype=1, **common)
        w.write(label, rowsperstrip=32, **common)
        w.write(macro, rowsperstrip=32, **common)
    canaries = {k: v for k, v in p.planted.items() if k != "ome.Image.AcquisitionDate"}
    return VendorSlide(
        path=path,
        format="ome-tiff",
        canaries=canaries,
        label_lines=lines,
        associated=((120, 200), (160, 480)),
        level_shapes=tuple(img.shape[:2] for img in levels),
        extra={"ome.Image.AcquisitionDate": p.planted["ome.Image.AcquisitionDate"]},
    )
