"""Synthetic Leica SCN (SCN400 brightfield) in the real layout.

Page 0 carries the `<scn>` XML (namespace leica-microsystems.com/scn/2010/10/01) describing one
collection with two images: the macro (its view covers the whole collection; a photo with the
label, canary text in its pixels) at IFD 0 and 1, and the tissue image whose resolutions are
IFDs 2-4. Canaries in the collection name, uuid and barcode, each image's name and uuid, the
device model and version, and a user; creationDate is a date (coarsened to the year).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from slidegate.synth.texture import downsample
from slidegate.synth.vendors.common import Planter, VendorSlide, label_and_macro, pyramid

NS = "http://www.leica-microsystems.com/scn/2010/10/01"
NM_PER_PX = 250  # 0.25 um


def _image(p: Planter, k: int, kind: str, dims: list[tuple[int, int, int, int, int]],
           view: str, objective: str) -> str:  # fmt: skip
    """dims: (height, width, r, c, ifd) per stored page."""
    dim = "".join(
        f'<dimension sizeX="{w}" sizeY="{h}" r="{r}" c="{c}" ifd="{ifd}"/>'
        for h, w, r, c, ifd in dims
    )
    h0, w0 = dims[0][:2]
    return (
        f'<image name="{p.planted[f"scn.collection.{kind}@name#{k}"]}" '
        f'uuid="{p.planted[f"scn.collection.{kind}@uuid#{k}"]}">'
        f"<creationDate>{p.planted['scn.collection.image.creationDate']}</creationDate>"
        f'<device model="{p.planted["scn.collection.image.device@model"]}" '
        f'version="{p.planted["scn.collection.image.device@version"]}"/>'
        f"<user>{p.planted['scn.collection.image.user']}</user>"
        f'<pixels sizeX="{w0}" sizeY="{h0}">{dim}</pixels>{view}'
        f"<scanSettings><objectiveSettings><objective>{objective}</objective>"
        "</objectiveSettings><illuminationSettings><numericalAperture>0.4</numericalAperture>"
        "<illuminationSource>brightfield</illuminationSource></illuminationSettings>"
        "</scanSettings></image>"
    )


def write_scn(path: Path, seed: int = 1, *, channels: int = 0) -> VendorSlide:
    """Brightfield RGB by default; `channels` > 0 writes a fluorescence image with one 8-bit
    page per channel and resolution (the SCN fluorescence layout)."""
    p = Planter(seed, "LSCN")
    for name in ("scn.collection@name", "scn.collection@uuid", "scn.collection.barcode",
                 "scn.collection.macro@name#0", "scn.collection.image@name#1",
                 "scn.collection.macro@uuid#0",
                 "scn.collection.image@uuid#1", "scn.collection.image.device@model",
                 "scn.collection.image.device@version", "scn.collection.image.user"):  # fmt: skip
        p(name)
    p.date("scn.collection.image.creationDate", "2012-03-04T05:06:07.89Z")
    levels = pyramid(seed, (480, 640), 3)
    lines = (p("label.line1"), p("label.line2"))
    _, macro = label_and_macro(lines, levels[-1], (160, 120), (160, 480))
    macro_levels = [macro, downsample(macro, 2)]
    coll = (160 * 50000, 480 * 50000)  # the macro covers the whole slide (50 um / px)
    macro_dims = [(img.shape[0], img.shape[1], r, 0, r) for r, img in enumerate(macro_levels)]
    n_c = max(channels, 1)
    pages = [
        (img if not channels else np.ascontiguousarray(img[:, :, c % 3]), r, c)
        for r, img in enumerate(levels)
        for c in range(n_c)
    ]
    main_dims = [(im.shape[0], im.shape[1], r, c, 2 + i) for i, (im, r, c) in enumerate(pages)]
    macro_view = f'<view sizeX="{coll[1]}" sizeY="{coll[0]}" offsetX="0" offsetY="0"/>'
    main_view = (
        f'<view sizeX="{640 * NM_PER_PX}" sizeY="{480 * NM_PER_PX}" offsetX="5000000" '
        'offsetY="20000000"/>'
    )
    xml = (
        f'<?xml version="1.0" encoding="utf-8"?><scn xmlns="{NS}">'
        f'<collection name="{p.planted["scn.collection@name"]}" '
        f'uuid="{p.planted["scn.collection@uuid"]}" sizeX="{coll[1]}" sizeY="{coll[0]}">'
        f"<barcode>{p.planted['scn.collection.barcode']}</barcode>"
        + _image(p, 0, "macro", macro_dims, macro_view, "1.25")
        + _image(p, 1, "image", main_dims, main_view, "20")
        + "</collection></scn>"
    )
    common: dict[str, Any] = {"metadata": None, "compression": "jpeg", "tile": (128, 128),
                              "software": "Leica SCN"}  # fmt: skip
    with tifffile.TiffWriter(path, bigtiff=False) as w:
        for k, img in enumerate([*macro_levels, *(im for im, _, _ in pages)]):
            photometric = "rgb" if img.ndim == 3 else "minisblack"
            w.write(img, description=xml if k == 0 else None, photometric=photometric, **common)
    # keys: field names; "#n" tells apart two values of one field (one uuid per image)
    canaries = {k: v for k, v in p.planted.items() if "creationDate" not in k}
    return VendorSlide(
        path=path,
        format="scn",
        canaries=canaries,
        label_lines=lines,
        associated=tuple(img.shape[:2] for img in macro_levels),
        level_shapes=tuple(img.shape[:2] for img in levels),
        extra={"scn.collection.image.creationDate": "2012-03-04T05:06:07.89Z"},
    )
