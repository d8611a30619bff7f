"""Ventana / Roche BIF: tiled pyramid (`level=N` descriptions), metadata in XMP (tag 700).

Layout (tifffile `series_bif`): pages whose description contains `level=` form the pyramid;
`Label Image` / `Label_Image` is the label; `Thumbnail` and `Probability_Image` are
thumbnails; anything else is associated. BIF tiles overlap slightly; tifffile (and so
slidegate) reads them as stored, without stitching.

Fields: every element and attribute of each page's XMP as `bif.<root>.<path>[@attr]` (e.g.
`bif.iScan@UnitNumber`, `bif.iScan@UserName`, `bif.iScan@Barcode1D`), the ImageDescription
and other TIFF tags of every page. MPP: `ScanRes` of the iScan element (micrometres).
"""

from __future__ import annotations

import tifffile

from slidegate.errors import UnsupportedSlideError
from slidegate.formats.tiff import (
    Layout,
    PageRef,
    _text,
    parse_xml,
    resolution_mpp,
    tag_fields,
    xml_fields,
)
from slidegate.models import AssociatedKind, MetadataField

FORMAT = "bif"
XMP = 700
KINDS: dict[str, AssociatedKind] = {"Label": "label", "Thumbnail": "thumbnail"}


def is_bif(tif: tifffile.TiffFile) -> bool:
    return bool(getattr(tif, "is_bif", False))


def layout(tif: tifffile.TiffFile, path: object) -> Layout:
    base = next((s for s in tif.series if s.name == "Baseline"), None)
    if base is None:
        raise UnsupportedSlideError(
            f"slide {path}: Ventana BIF without a `level=0` image; nothing to convert",
            reason="unsupported: BIF without pyramid",
        )
    levels = [
        PageRef(lv.keyframe, int(lv.keyframe.index), f"page {lv.keyframe.index}")
        for lv in base.levels
    ]
    used = {int(r.page.index) for r in levels}
    out = Layout(levels=levels)
    for i, page in enumerate(tif.pages):
        if not isinstance(page, tifffile.TiffPage) or i in used:
            continue
        desc = page.description or ""
        kind: AssociatedKind = "other"
        if desc.startswith("Label"):
            kind = "label"
        elif desc == "Thumbnail" or desc.startswith("Probability"):
            kind = "thumbnail"
        out.associated.append((kind, PageRef(page, i, f"page {i}")))
    levels.sort(key=lambda r: -int(r.page.imagewidth))
    return out


def fields(tif: tifffile.TiffFile) -> list[MetadataField]:
    out: list[MetadataField] = []
    for i, page in enumerate(tif.pages):
        if not isinstance(page, tifffile.TiffPage):
            continue
        ref = PageRef(page, i, f"page {i}")
        tag = page.tags.get(XMP)
        root = parse_xml(_text(tag.value) or "") if tag is not None else None
        if root is not None:
            where = f"page {i} tag 700 XMP"
            out.extend(xml_fields(root, "bif", where, include_root=True))
            out.extend(tag_fields(ref, skip_description=False, skip=frozenset({XMP})))
        else:
            out.extend(tag_fields(ref, skip_description=False))
    return out


def mpp(tif: tifffile.TiffFile, layout_: Layout) -> tuple[float | None, float | None]:
    for f in fields(tif):
        if f.name.endswith("@ScanRes"):
            try:
                value = float(f.value)
            except ValueError:
                continue
            if value > 0:
                return value, value
    return resolution_mpp(layout_.levels[0].page)
