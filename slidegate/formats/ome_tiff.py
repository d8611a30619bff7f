"""OME-TIFF: series 0 is the slide (its SubIFD levels the pyramid); every other series and any
page outside series 0 is associated (Bio-Formats writes label and macro as extra series).

Series 0 may be interleaved RGB (YXS) or one page per channel (CYX: the channel pages are
released together as the `c` axis). Time points or focal planes (T/Z > 1) are not supported.

Fields: every element text and attribute of the OME-XML (page 0 ImageDescription) as
`ome.<path>` / `ome.<path>@<attr>` (root attributes `ome@Creator`, `ome@UUID`); Bio-Formats'
OriginalMetadata annotations as `ome.OriginalMetadata.<Key>` and map annotations as
`ome.MapAnnotation.<K>`; the TIFF tags of every page and SubIFD. Nothing of the OME-XML is
copied to the output except what the policy whitelists: no original metadata, no file names.
"""

from __future__ import annotations

from collections.abc import Iterator
from xml.etree import ElementTree

import tifffile

from slidegate.errors import UnsupportedSlideError
from slidegate.formats.tiff import (
    Layout,
    PageRef,
    level_pages,
    local_name,
    parse_xml,
    resolution_mpp,
    tag_fields,
    xml_fields,
)
from slidegate.models import AssociatedKind, MetadataField

FORMAT = "ome-tiff"
SKIP_TAGS = frozenset({"OriginalMetadata", "M", "BinData"})
UM_PER_UNIT = {"µm": 1.0, "um": 1.0, "nm": 1e-3, "mm": 1e3, "cm": 1e4, "m": 1e6, "Å": 1e-4}


def is_ome(tif: tifffile.TiffFile) -> bool:
    return bool(getattr(tif, "is_ome", False))


def _ref(tif: tifffile.TiffFile, page: tifffile.TiffPage) -> PageRef:
    """Where `page` sits: a top-level page, or SubIFD j of top-level page i (by file offset)."""
    for i, top in enumerate(tif.pages):
        if not isinstance(top, tifffile.TiffPage):
            continue
        if top.offset == page.offset:
            return PageRef(page, i, f"page {i}")
        for j, offset in enumerate(top.subifds or ()):
            if offset == page.offset:
                return PageRef(page, i, f"page {i} subifd {j}")
    return PageRef(page, 0, "page ?")


def _kind(name: str) -> AssociatedKind:
    low = name.lower()
    if "label" in low or "barcode" in low:
        return "label"
    if "macro" in low or "overview" in low:
        return "macro"
    return "thumbnail" if "thumb" in low else "other"


def layout(tif: tifffile.TiffFile, path: object) -> Layout:
    series = tif.series[0]
    extra = {ax: n for ax, n in zip(series.axes, series.shape, strict=True) if ax not in "CYXS"}
    if any(n > 1 for n in extra.values()):
        raise UnsupportedSlideError(
            f"slide {path}: OME-TIFF series 0 has time points or focal planes "
            f"({', '.join(sorted(extra))}); export a single plane",
            reason="unsupported: OME-TIFF with T/Z",
        )
    levels: list[PageRef] = []
    used: set[int] = set()
    for lv in series.levels:
        pages = level_pages(lv)
        if pages is None:
            raise UnsupportedSlideError(
                f"slide {path}: an OME-TIFF level has missing planes; re-export the slide",
                reason="unsupported: OME-TIFF layout",
            )
        first = _ref(tif, pages[0])
        levels.append(PageRef(first.page, first.number, first.label, channels=tuple(pages[1:])))
        used.update(int(p.offset) for p in pages)
    out = Layout(levels=levels)
    for other in tif.series[1:]:
        for lv in other.levels:
            for page in level_pages(lv) or ():
                used.add(int(page.offset))
                out.associated.append((_kind(other.name or ""), _ref(tif, page)))
    for page in _all(tif):
        if int(page.offset) not in used:
            out.associated.append(("other", _ref(tif, page)))
    return out


def _all(tif: tifffile.TiffFile) -> Iterator[tifffile.TiffPage]:
    for page in tif.pages:
        if isinstance(page, tifffile.TiffPage):
            yield page
            yield from (s for s in page.pages or () if isinstance(s, tifffile.TiffPage))


def _annotations(root: ElementTree.Element, where: str) -> list[MetadataField]:
    out: list[MetadataField] = []
    for n, el in enumerate(root.iter(), start=1):
        if not isinstance(el.tag, str):
            continue
        tag = local_name(el.tag)
        if tag == "OriginalMetadata":
            kv = {local_name(c.tag): (c.text or "").strip() for c in el}
            key, value = kv.get("Key", ""), kv.get("Value", "")
            if key and value:
                out.append(
                    MetadataField(
                        name=f"ome.OriginalMetadata.{key}",
                        location=f"{where} OriginalMetadata {n}",
                        value=value,
                    )
                )
        elif tag == "M" and (el.text or "").strip():
            out.append(
                MetadataField(
                    name=f"ome.MapAnnotation.{el.attrib.get('K', '')}",
                    location=f"{where} MapAnnotation {n}",
                    value=(el.text or "").strip(),
                )
            )
    return out


def fields(tif: tifffile.TiffFile) -> list[MetadataField]:
    out: list[MetadataField] = []
    where = "page 0 tag 270 ImageDescription"
    root = parse_xml(tif.pages.first.description or "")
    if root is not None:
        out.extend(xml_fields(root, "ome", where, skip_tags=SKIP_TAGS))
        out.extend(_annotations(root, where))
    for page in _all(tif):
        ref = _ref(tif, page)
        out.extend(tag_fields(ref, skip_description=root is not None and page is tif.pages.first))
    return out


def mpp(tif: tifffile.TiffFile, layout_: Layout) -> tuple[float | None, float | None]:
    """PhysicalSizeY/X of the first Image (with its unit), else the resolution tags."""
    root = parse_xml(tif.pages.first.description or "")
    pixels = None
    if root is not None:
        pixels = next((e for e in root.iter() if local_name(str(e.tag)) == "Pixels"), None)
    if pixels is None:
        return resolution_mpp(layout_.levels[0].page)

    def one(axis: str) -> float | None:
        try:
            value = float(pixels.attrib[f"PhysicalSize{axis}"])
        except (KeyError, ValueError):
            return None
        factor = UM_PER_UNIT.get(pixels.attrib.get(f"PhysicalSize{axis}Unit", "µm"))
        return value * factor if factor and value > 0 else None

    y, x = one("Y"), one("X")
    return (y, x) if y and x else resolution_mpp(layout_.levels[0].page)
