"""Hamamatsu NDPI: pyramid by magnification tag, macro and map dropped, every private tag a field.

Layout (tifffile / OpenSlide): every IFD carries the NDPI marker 65420 and its own
Magnification (65421): > 0 is a pyramid level (only focal plane 0, tag 65424 ZOffset == 0),
-1 is the macro photo of the whole slide (label included: NDPI has no separate label IFD), -2 a
"map" image. NDPI is strip-based JPEG with restart markers; tifffile exposes the restart
intervals as tiles, so region reads through `aszarr()` decode only what they touch.

Fields: the standard descriptive tags (`tiff.DateTime`, `tiff.Software`, `tiff.Make`...) and
every NDPI private tag of every page, named by tifffile's NDPI tag registry (`ndpi.SlideLabel`
= 65427 Reference, `ndpi.ScannerSerialNumber` = 65442, ...; unknown ones `ndpi.tag<code>`).
The 65449 property text (`key=value` lines, and `;`-separated shading blocks) becomes one
field per record, `ndpi.Comments.<key>`. Offsets and MCU tables are structure, not fields.
"""

from __future__ import annotations

import tifffile
from tifffile import TIFF

from slidegate.errors import UnsupportedSlideError
from slidegate.formats.tiff import Layout, PageRef, _scalar, _text, resolution_mpp, tag_fields
from slidegate.models import AssociatedKind, MetadataField

FORMAT = "ndpi"
MAGNIFICATION = 65421
FOCAL_PLANE = 65424
COMMENTS = 65449
#: NDPI private tag range and codes that only locate pixel data (never fields)
NDPI_CODES = range(65420, 65536)
STRUCTURE = frozenset({65324, 65325, 65426, 65432})
#: NDPI tags tifffile leaves unnamed but OpenSlide / wsi-anon name
EXTRA_NAMES = {65468: "Barcode", 65477: "BarcodeType"}
KIND: dict[float, AssociatedKind] = {-1.0: "macro", -2.0: "other"}  # -2: "map"


def is_ndpi(tif: tifffile.TiffFile) -> bool:
    return bool(getattr(tif, "is_ndpi", False))


def _tag(page: tifffile.TiffPage, code: int) -> float | None:
    tag = page.tags.get(code)
    try:
        return float(tag.value) if tag is not None else None
    except (TypeError, ValueError):
        return None


def layout(tif: tifffile.TiffFile, path: object) -> Layout:
    pages = [(i, p) for i, p in enumerate(tif.pages) if isinstance(p, tifffile.TiffPage)]
    levels: list[PageRef] = []
    out = Layout(levels=levels)
    widths: set[int] = set()
    for i, page in pages:
        ref = PageRef(page, i, f"page {i}")
        mag = _tag(page, MAGNIFICATION)
        plane = _tag(page, FOCAL_PLANE) or 0.0
        if mag is not None and mag > 0 and plane == 0:
            if int(page.imagewidth) in widths:
                raise UnsupportedSlideError(
                    f"slide {path}: two NDPI pages of the same size and focal plane; this "
                    "layout is not supported; export a single-plane NDPI",
                    reason="unsupported: NDPI layout",
                )
            widths.add(int(page.imagewidth))
            levels.append(ref)
        else:
            kind = KIND.get(mag, "other") if mag is not None else "other"
            out.associated.append((kind, ref))
    if not levels:
        raise UnsupportedSlideError(
            f"slide {path}: NDPI file without any page of positive magnification (tag 65421); "
            "no pyramid to convert",
            reason="unsupported: NDPI without pyramid",
        )
    levels.sort(key=lambda r: -int(r.page.imagewidth))
    return out


def tag_name(code: int) -> str:
    name = EXTRA_NAMES.get(code) or TIFF.NDPI_TAGS.get(code, "")
    return name if name and not name.isdigit() else f"tag{code}"


def parse_comments(text: str, where: str) -> list[MetadataField]:
    """65449 property text: `key=value` per line; a line starting with `;` holds a block of
    `;`-separated `key=value` records (e.g. `;NDP Shading Data;...;Date=...;SerialNumber=...`).
    A record without `=` becomes `ndpi.Comments` itself."""
    out: list[MetadataField] = []
    for n, line in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
        records = line.split(";") if line.startswith(";") else [line]
        for m, record in enumerate(records, start=1):
            rec = record.strip()
            if not rec:
                continue
            loc = f"{where} line {n}" + (f" record {m}" if len(records) > 1 else "")
            key, sep, value = rec.partition("=")
            if sep and key.strip() and value.strip():
                name = f"ndpi.Comments.{key.strip()}"
                out.append(MetadataField(name=name, location=loc, value=value.strip()))
            elif not sep or not key.strip():
                out.append(MetadataField(name="ndpi.Comments", location=loc, value=rec))
    return out


def _ndpi_fields(ref: PageRef) -> list[MetadataField]:
    out: list[MetadataField] = []
    for tag in ref.page.tags:
        code = int(tag.code)
        if code not in NDPI_CODES or code in STRUCTURE:
            continue
        name = tag_name(code)
        where = f"{ref.label} tag {code} {name}"
        if code == COMMENTS:
            text = _text(tag.value)
            if text:
                out.extend(parse_comments(text, where))
            continue
        text = _text(tag.value) or _scalar(tag.value)
        if text:
            out.append(MetadataField(name=f"ndpi.{name}", location=where, value=text))
    return out


def fields(tif: tifffile.TiffFile) -> list[MetadataField]:
    out: list[MetadataField] = []
    for i, page in enumerate(tif.pages):
        if not isinstance(page, tifffile.TiffPage):
            continue
        ref = PageRef(page, i, f"page {i}")
        skip = frozenset(int(t.code) for t in page.tags if int(t.code) in NDPI_CODES)
        out.extend(tag_fields(ref, skip_description=False, skip=skip | STRUCTURE))
        out.extend(_ndpi_fields(ref))
    return out


def mpp(tif: tifffile.TiffFile, layout_: Layout) -> tuple[float | None, float | None]:
    return resolution_mpp(layout_.levels[0].page)
