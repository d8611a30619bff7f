"""Generic tiled pyramidal TIFF: pyramid from SubIFDs of page 0 or reduced top-level pages.

Generic TIFF has no standard marking for label and macro, so every page that is not part of the
pyramid is an associated image and is never published. A level is a tiled SubIFD of page 0 or a
tiled top-level page with NewSubfileType 1 (reduced resolution), with page 0's pixel type, smaller
and with the same aspect ratio, not named label/macro; anything else (stripped pages, full-size
extra images, other shapes) is associated, and so is a page whose content is not the level
above it at its scale (`formats/evidence.py`). Kind is "label"/"macro" when its description or
PageName says so, else "other".
"""

from __future__ import annotations

import tifffile

from slidegate.formats.evidence import same_aspect
from slidegate.formats.tiff import Layout, PageRef, named, same_pixels, tag_fields
from slidegate.models import MetadataField

FORMAT = "tiff"


def _fits(page: tifffile.TiffPage, base: tifffile.TiffPage) -> bool:
    """A reduced copy of `base`: tiled, same pixel type, smaller, same aspect ratio."""
    if not (page.is_tiled and same_pixels(page, base)) or page.subfiletype not in (0, 1):
        return False
    return same_aspect(page, base)


def layout(tif: tifffile.TiffFile, path: object) -> Layout:
    pages = [p for p in tif.pages if isinstance(p, tifffile.TiffPage)]
    base = pages[0]
    out = Layout(levels=[PageRef(base, 0, "page 0")])
    widths = {int(base.imagewidth)}
    for j, sub in enumerate(base.pages or ()):
        if not isinstance(sub, tifffile.TiffPage):
            continue
        ref = PageRef(sub, 0, f"page 0 subifd {j}")
        if _fits(sub, base) and named(sub) is None and int(sub.imagewidth) not in widths:
            widths.add(int(sub.imagewidth))
            out.levels.append(ref)
        else:
            out.associated.append((named(sub) or "other", ref))
    for i, page in enumerate(pages[1:], start=1):
        ref = PageRef(page, i, f"page {i}")
        kind = named(page)
        reduced = page.subfiletype == 1  # top-level levels must say "reduced-resolution"
        if kind is None and reduced and _fits(page, base) and int(page.imagewidth) not in widths:
            widths.add(int(page.imagewidth))
            out.levels.append(ref)
        else:
            out.associated.append((kind or "other", ref))
        for j, sub in enumerate(page.pages or ()):
            if isinstance(sub, tifffile.TiffPage):
                out.associated.append(("other", PageRef(sub, i, f"page {i} subifd {j}")))
    out.levels.sort(key=lambda r: -int(r.page.imagewidth))
    return out


def fields(tif: tifffile.TiffFile) -> list[MetadataField]:
    out: list[MetadataField] = []
    for i, page in enumerate(tif.pages):
        if not isinstance(page, tifffile.TiffPage):
            continue
        out.extend(tag_fields(PageRef(page, i, f"page {i}"), skip_description=False))
        for j, sub in enumerate(page.pages or ()):
            if isinstance(sub, tifffile.TiffPage):
                ref = PageRef(sub, i, f"page {i} subifd {j}")
                out.extend(tag_fields(ref, skip_description=False))
    return out
