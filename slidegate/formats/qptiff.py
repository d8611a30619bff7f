"""PerkinElmer / Akoya QPTIFF (Vectra, Polaris): multi-channel pyramid, XML on every page.

Layout (tifffile `series_qpi`): the first run of equal-sized pages is the full-resolution image,
one page per channel; then a thumbnail; then (tiled files) reduced levels, again one page per
channel; then Overview (the macro photo) and Label. Each page's XML ImageDescription says what
it is (`<ImageType>FullResolution | Thumbnail | Overview | Label</ImageType>`), so the pyramid is
the first channel set and its reduced copies (tifffile's series 0 and its levels); every other
page is associated and dropped, its kind taken from ImageType.

Channels: a level's channel pages are released together as the `c` axis (one page per
channel, in file order); `LevelFacts.samples` is the channel count.

Fields: every element text (and attribute, except the `ref`/`s_v`/`dim`/`subtype`
serialisation plumbing of the ScanProfile) of every page's XML, `qptiff.<path>` (e.g.
`qptiff.SlideID`, `qptiff.ScanProfile.root.Name`), plus the TIFF tags.
"""

from __future__ import annotations

import tifffile

from slidegate.errors import UnsupportedSlideError
from slidegate.formats.tiff import (
    Layout,
    PageRef,
    level_pages,
    parse_xml,
    resolution_mpp,
    tag_fields,
    xml_fields,
)
from slidegate.models import AssociatedKind, MetadataField

FORMAT = "qptiff"
PLUMBING = frozenset({"ref", "s_v", "dim", "subtype"})
KINDS: dict[str, AssociatedKind] = {
    "thumbnail": "thumbnail",
    "overview": "macro",
    "macro": "macro",
    "label": "label",
}


def is_qptiff(tif: tifffile.TiffFile) -> bool:
    return bool(getattr(tif, "is_qpi", False))


def image_type(page: tifffile.TiffPage) -> str:
    root = parse_xml(page.description or "")
    node = root.find("ImageType") if root is not None else None
    return (node.text or "").strip().lower() if node is not None else ""


def _level_ref(pages: list[tifffile.TiffPage]) -> PageRef:
    first = pages[0]
    number = int(first.index)
    return PageRef(first, number, f"page {number}", channels=tuple(pages[1:]))


def layout(tif: tifffile.TiffFile, path: object) -> Layout:
    series = tif.series[0]
    levels: list[PageRef] = []
    used: set[int] = set()
    for lv in series.levels:
        pages = level_pages(lv)
        if pages is None:
            raise UnsupportedSlideError(
                f"slide {path}: a QPTIFF level has missing channel pages; re-export the slide",
                reason="unsupported: QPTIFF layout",
            )
        levels.append(_level_ref(pages))
        used.update(int(p.index) for p in pages)
    if any(image_type(ref.page) not in ("fullresolution", "") for ref in levels[:1]):
        raise UnsupportedSlideError(
            f"slide {path}: the first QPTIFF page is not a full-resolution image",
            reason="unsupported: QPTIFF layout",
        )
    out = Layout(levels=levels)
    for i, page in enumerate(tif.pages):
        if isinstance(page, tifffile.TiffPage) and int(page.index) not in used:
            out.associated.append((KINDS.get(image_type(page), "other"), PageRef(page, i, "")))
    return out


def page_fields(page: tifffile.TiffPage, i: int) -> list[MetadataField]:
    ref = PageRef(page, i, f"page {i}")
    where = f"page {i} tag 270 ImageDescription"
    root = parse_xml(page.description or "")
    if root is None:
        return tag_fields(ref, skip_description=False)
    out = xml_fields(root, "qptiff", where, skip_attrs=PLUMBING)
    out.extend(tag_fields(ref, skip_description=True))
    return out


def fields(tif: tifffile.TiffFile) -> list[MetadataField]:
    out: list[MetadataField] = []
    for i, page in enumerate(tif.pages):
        if isinstance(page, tifffile.TiffPage):
            out.extend(page_fields(page, i))
    return out


def mpp(tif: tifffile.TiffFile, layout_: Layout) -> tuple[float | None, float | None]:
    return resolution_mpp(layout_.levels[0].page)
