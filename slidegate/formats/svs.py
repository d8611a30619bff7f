"""Aperio SVS: page layout (pyramid, thumbnail, label, macro) and ImageDescription fields.

Layout (Aperio doc quoted in OpenSlide): IFD0 = full-resolution tiled level; IFD1 = stripped
thumbnail; further tiled IFDs = reduced levels; then stripped label (NewSubfileType 1, second
description line "label ...") and macro (NewSubfileType 9, "macro ..."). GT450 files mark label
and macro only by NewSubfileType: both markers are honoured.

Every page's ImageDescription is parsed: the free-text header becomes `aperio.header`, each
`key = value` segment becomes `aperio.<key>`. Empty segments, any key order and repeated keys
are tolerated; every occurrence is its own MetadataField (location names page and segment).
"""

from __future__ import annotations

import tifffile

from slidegate.errors import UnsupportedSlideError
from slidegate.formats.tiff import Layout, PageRef, named, same_pixels, tag_fields
from slidegate.models import AssociatedKind, MetadataField

FORMAT = "svs"


def is_svs(tif: tifffile.TiffFile) -> bool:
    return (tif.pages.first.description or "").startswith("Aperio")


def _marked(page: tifffile.TiffPage) -> AssociatedKind | None:
    """Label/macro by NewSubfileType or by the second description line."""
    if page.subfiletype == 9:
        return "macro"
    lines = (page.description or "").splitlines()
    second = lines[1].strip().lower() if len(lines) > 1 else ""
    if second.startswith("label"):
        return "label"
    if second.startswith("macro"):
        return "macro"
    if page.subfiletype == 1 and not page.is_tiled:
        return "label"
    return named(page) if not page.is_tiled else None


def layout(tif: tifffile.TiffFile, path: object) -> Layout:
    pages = [p for p in tif.pages if isinstance(p, tifffile.TiffPage)]
    base = pages[0]
    levels = [PageRef(base, 0, "page 0")]
    out = Layout(levels=levels)
    shapes = {(base.imagelength, base.imagewidth)}
    for i, page in enumerate(pages[1:], start=1):
        ref = PageRef(page, i, f"page {i}")
        kind = _marked(page)
        smaller = page.imagewidth < base.imagewidth and page.imagelength < base.imagelength
        if kind is None and page.is_tiled and same_pixels(page, base) and smaller:
            dims = (page.imagelength, page.imagewidth)
            if dims in shapes:
                raise UnsupportedSlideError(
                    f"slide {path} has several focal planes (z-stack SVS), not supported yet; "
                    "export a single focal plane",
                    reason="unsupported: multi-focal-plane SVS",
                )
            shapes.add(dims)
            levels.append(ref)
        elif kind is not None:
            out.associated.append((kind, ref))
        elif i == 1 and not page.is_tiled:
            out.associated.append(("thumbnail", ref))
        else:
            out.associated.append(("other", ref))
    levels.sort(key=lambda r: -int(r.page.imagewidth))
    return out


def parse_description(text: str, where: str) -> list[MetadataField]:
    """Split an Aperio ImageDescription into `aperio.header` + `aperio.<key>` fields."""
    segments = text.split("|")
    out: list[MetadataField] = []
    header = segments[0].strip()
    if header:
        out.append(MetadataField(name="aperio.header", location=f"{where} header", value=header))
    for n, segment in enumerate(segments[1:], start=1):
        seg = segment.strip()
        if not seg:
            continue  # tolerate "||"
        loc = f"{where} segment {n}"
        key, sep, value = seg.partition("=")
        key = key.strip()
        if not sep or not key:
            out.append(MetadataField(name="aperio.header", location=loc, value=seg))
            continue
        value = value.strip()
        if value:
            out.append(MetadataField(name=f"aperio.{key}", location=loc, value=value))
    return out


def fields(tif: tifffile.TiffFile) -> list[MetadataField]:
    out: list[MetadataField] = []
    for i, page in enumerate(tif.pages):
        if not isinstance(page, tifffile.TiffPage):
            continue
        ref = PageRef(page, i, f"page {i}")
        if page.description:
            out.extend(parse_description(page.description, f"page {i} tag 270 ImageDescription"))
        out.extend(tag_fields(ref, skip_description=True))
    return out


def mpp(fields_: list[MetadataField]) -> tuple[float | None, float | None]:
    """(mpp_y, mpp_x) from `aperio.MPP` of page 0 (Aperio pixels are square)."""
    for f in fields_:
        if f.name == "aperio.MPP" and f.location.startswith("page 0 "):
            try:
                value = float(f.value)
            except ValueError:
                return None, None
            return (value, value) if value > 0 else (None, None)
    return None, None
