"""Synthetic Aperio SVS with JPEG 2000 tiles (Aperio compression 33005, as JP2K-33003-1.svs and
GT450 scanners write), in the real Aperio page layout: J2K base level, stripped thumbnail,
J2K reduced level, LZW label (NewSubfileType 1, "label WxH"), JPEG macro (9, "macro WxH").
Every description carries the `|key = value` tail with canaries in each identifying key of
phi-locations.md 4.2, and DateTime / Software / Make / Model / Artist / HostComputer /
DocumentName tags are canaries too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np
import tifffile

from slidegate.synth.texture import RGB, downsample
from slidegate.synth.vendors.common import Planter, VendorSlide, label_and_macro, pyramid

TILE = 128
KEYS = ("Filename", "User", "ScanScope ID", "DSR ID", "ImageID", "Title", "Barcode", "Rack",
        "Slide", "Accession", "Patient", "CustomField.PatientName")  # fmt: skip
TAGS = {271: "tiff.Make", 272: "tiff.Model", 315: "tiff.Artist", 316: "tiff.HostComputer",
        269: "tiff.DocumentName"}  # fmt: skip


def j2k_tiles(img: RGB) -> Iterator[bytes]:
    h, w = img.shape[:2]
    padded = np.pad(img, ((0, -h % TILE), (0, -w % TILE), (0, 0)), mode="edge")
    for y in range(0, h, TILE):
        for x in range(0, w, TILE):
            tile = np.ascontiguousarray(padded[y : y + TILE, x : x + TILE])
            yield bytes(imagecodecs.jpeg2k_encode(tile, level=0, codecformat="j2k"))


def write_svs_j2k(path: Path, seed: int = 1) -> VendorSlide:
    p = Planter(seed, "SVSJ")
    tail = "|AppMag = 40|MPP = 0.2500" + "".join(f"|{k} = {p('aperio.' + k)}" for k in KEYS)
    tail += f"|Date = {p.date('aperio.Date', '03/04/15')}|Time = 11:12:13|Time Zone = GMT+01:00"
    extratags = [(code, "s", 0, p(name), True) for code, name in TAGS.items()]
    software = p("tiff.Software")
    levels = pyramid(seed, (512, 640), 3)[::2]  # downsample 1 and 4
    lines = (p("label.line1"), p("label.line2"))
    label, macro = label_and_macro(lines, levels[-1], (160, 120), (160, 480))
    thumb = downsample(levels[0], 5)
    head = "Aperio Image Library v12.0.15 \r\n"
    j2k: dict[str, Any] = {"compression": 33005, "photometric": "rgb", "dtype": np.uint8,
                           "metadata": None, "tile": (TILE, TILE), "software": software,
                           "datetime": "2015:03:04 11:12:13", "extratags": extratags}  # fmt: skip
    plain: dict[str, Any] = {"photometric": "rgb", "metadata": None, "software": False}
    with tifffile.TiffWriter(path, bigtiff=False) as w:
        h, w_ = levels[0].shape[:2]
        w.write(
            j2k_tiles(levels[0]),
            shape=levels[0].shape,
            subfiletype=0,
            **j2k,
            description=f"{head}{w_}x{h} [0,0 {w_}x{h}] ({TILE}x{TILE}) J2K/KDU Q=70{tail}",
        )
        w.write(
            thumb,
            rowsperstrip=16,
            compression="jpeg",
            subfiletype=0,
            **plain,
            description=f"{head}{w_}x{h} -> {thumb.shape[1]}x{thumb.shape[0]} - {tail}",
        )
        lv = levels[1]
        w.write(
            j2k_tiles(lv),
            shape=lv.shape,
            subfiletype=0,
            **j2k,
            description=f"{head}{w_}x{h} -> {lv.shape[1]}x{lv.shape[0]} - {tail}",
        )
        w.write(
            label,
            rowsperstrip=16,
            compression="lzw",
            subfiletype=1,
            **plain,
            description=f"{head}label {label.shape[1]}x{label.shape[0]}",
        )
        w.write(macro, rowsperstrip=16, compression="jpeg", subfiletype=9, **plain,
                description=f"{head}macro {macro.shape[1]}x{macro.shape[0]}")  # fmt: skip
    return VendorSlide(
        path=path,
        format="svs",
        canaries={k: v for k, v in p.planted.items() if k != "aperio.Date"},
        label_lines=lines,
        associated=(thumb.shape[:2], label.shape[:2], macro.shape[:2]),
        level_shapes=tuple(img.shape[:2] for img in levels),
        extra={"aperio.Date": "03/04/15"},
    )
