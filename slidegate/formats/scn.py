"""Leica SCN: XML on page 0 describes a collection of images; one is the macro.

Layout (XML + tifffile `series_scn`, one series per `<image>` in document order): the image
whose `<view>` covers the whole collection (same sizeX/sizeY as `<collection>`) is the macro
(OpenSlide's rule); the remaining image is the slide, its resolutions the pyramid (channel pages
of a fluorescence image are released together as the `c` axis). Several tissue regions or
focal planes are not supported. Every page outside the slide's pyramid is associated.

Fields: every element text and attribute of the XML as `scn.<path>[@attr]` (e.g.
`scn.collection@name`, `scn.collection.barcode`, `scn.collection.image.creationDate`,
`scn.collection.image.device@model`; the macro image's elements as `scn.collection.macro.*`),
plus the TIFF tags of every page.
MPP: the image's view width (nanometres) over its full-resolution width.
"""

from __future__ import annotations

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

FORMAT = "scn"


def is_scn(tif: tifffile.TiffFile) -> bool:
    return bool(getattr(tif, "is_scn", False))


def _children(el: ElementTree.Element, name: str) -> list[ElementTree.Element]:
    return [c for c in el if isinstance(c.tag, str) and local_name(c.tag) == name]


def _images(tif: tifffile.TiffFile) -> tuple[ElementTree.Element, list[ElementTree.Element]]:
    root = parse_xml(tif.pages.first.description or "")
    collections = _children(root, "collection") if root is not None else []
    if len(collections) != 1:
        return ElementTree.Element("none"), []
    return collections[0], _children(collections[0], "image")


def _is_macro(collection: ElementTree.Element, image: ElementTree.Element) -> bool:
    views = _children(image, "view")
    if not views:
        return False
    size = (views[0].attrib.get("sizeX"), views[0].attrib.get("sizeY"))
    return size == (collection.attrib.get("sizeX"), collection.attrib.get("sizeY"))


def _unsupported(path: object, what: str) -> UnsupportedSlideError:
    return UnsupportedSlideError(
        f"slide {path}: Leica SCN with {what} is not supported; export one region",
        reason="unsupported: SCN layout",
    )


def layout(tif: tifffile.TiffFile, path: object) -> Layout:
    collection, images = _images(tif)
    try:
        series = tif.series
    except NotImplementedError:
        raise _unsupported(path, "several focal planes") from None
    if not images or len(series) != len(images):
        raise _unsupported(path, "an XML that does not match its pages")
    main = [i for i, img in enumerate(images) if not _is_macro(collection, img)]
    if len(main) != 1:
        raise _unsupported(path, "several tissue regions" if main else "no tissue region")
    levels: list[PageRef] = []
    used: set[int] = set()
    for lv in series[main[0]].levels:
        pages = level_pages(lv)
        if pages is None:
            raise _unsupported(path, "missing channel pages")
        n = int(pages[0].index)
        levels.append(PageRef(pages[0], n, f"page {n}", channels=tuple(pages[1:])))
        used.update(int(p.index) for p in pages)
    out = Layout(levels=levels)
    macro_pages = {
        int(p.index)
        for k, s in enumerate(series)
        if k != main[0]
        for lv in s.levels
        for p in lv.pages
        if isinstance(p, tifffile.TiffPage)
    }
    for i, page in enumerate(tif.pages):
        if isinstance(page, tifffile.TiffPage) and i not in used:
            kind: AssociatedKind = "macro" if i in macro_pages else "other"
            out.associated.append((kind, PageRef(page, i, f"page {i}")))
    levels.sort(key=lambda r: -int(r.page.imagewidth))
    return out


def fields(tif: tifffile.TiffFile) -> list[MetadataField]:
    out: list[MetadataField] = []
    root = parse_xml(tif.pages.first.description or "")
    if root is not None:
        where = "page 0 tag 270 ImageDescription"
        collection, images = _images(tif)
        out.extend(xml_fields(root, "scn", where, skip_tags=frozenset({"image"})))
        for k, img in enumerate(images):
            # the macro's settings (objective 1.25x...) must not pass for the slide's
            prefix = "scn.collection." + ("macro" if _is_macro(collection, img) else "image")
            out.extend(xml_fields(img, prefix, f"{where} image {k}"))
    for i, page in enumerate(tif.pages):
        if isinstance(page, tifffile.TiffPage):
            skip = root is not None and i == 0
            out.extend(tag_fields(PageRef(page, i, f"page {i}"), skip_description=skip))
    return out


def mpp(tif: tifffile.TiffFile, layout_: Layout) -> tuple[float | None, float | None]:
    collection, images = _images(tif)
    level0 = layout_.levels[0].page
    for img in images:
        views = _children(img, "view")
        if _is_macro(collection, img) or not views:
            continue
        try:
            nm_x, nm_y = float(views[0].attrib["sizeX"]), float(views[0].attrib["sizeY"])
        except (KeyError, ValueError):
            break
        if nm_x > 0 and nm_y > 0:
            return nm_y / level0.imagelength / 1000.0, nm_x / level0.imagewidth / 1000.0
    return resolution_mpp(level0)
