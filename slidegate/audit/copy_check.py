"""Independent re-open of an original-format copy (SVS, generic TIFF, DICOM folder).

`check_copy` opens the copy with tifffile (TIFF family) or slidegate's DICOM reader, and with
OpenSlide, and returns the problems found (empty = fine); the audit stage quarantines the slide
on any. Checked: OpenSlide's vendor is the source format's, OpenSlide lists no associated image
(label, macro, thumbnail), the level count and shapes are the plan's, the TIFF holds only the
pyramid pages with only the allowed tags, and every tile of every level is the source's tile
cleaned of its non-coding segments (slidegate.payload; byte-identical to the cleaned source
tile in a TIFF copy, the same coding digest in a DICOM copy, whose frames are padded to even
length) and passes the payload check, streamed a batch of tiles at a time; a TIFF copy's
JPEGTables are the source's cleaned. Problems name levels, tags and payload rules, never values.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import tifffile

from slidegate.convert.tiles import TiffTiles
from slidegate.formats.dicom_copy import STRUCTURE, frame_walk
from slidegate.formats.dicom_reader import open_dicom
from slidegate.formats.tiff_copy import ALLOWED_TAGS, BATCH, LIBRARY, cleaner
from slidegate.models import DeidPlan
from slidegate.payload import (
    PayloadError,
    check_j2k,
    check_jpeg,
    clean_jpeg_tables,
    clean_payloads,
    coding_digest,
)
from slidegate.sources import SourceRef

#: plan format -> OpenSlide's `openslide.vendor` for the copy
VENDORS = {"svs": "aperio", "tiff": "generic-tiff", "dicom": "dicom"}
#: root of the UIDs the DICOM standard itself defines (transfer syntaxes, SOP classes)
STANDARD_UID_ROOT = b"1.2.840.10008."
_LABEL_SUFFIX = re.compile(r"(\[date\])?(#\d+)?$")


def _paths(allowed: Mapping[str, object], prefix: str) -> Iterator[str]:
    for keyword, children in allowed.items():
        if isinstance(children, dict):
            yield from _paths(children, f"{prefix}.{keyword}")
        elif not keyword.endswith("UID"):  # UIDs are remapped: their source value stays a needle
            yield f"{prefix}.{keyword}"


#: DICOM fields a copy carries by design (formats/dicom_copy.py STRUCTURE): pixel geometry,
#: optics codes, offsets on the glass; technical, so not searched for in a DICOM copy
DICOM_STRUCTURAL = frozenset(_paths(STRUCTURE, "dicom"))


def copy_needles(needles: Mapping[str, bytes], fmt: str) -> dict[str, bytes]:
    """The audit's needles for an original-format copy. A TIFF copy carries no source metadata
    value: every needle stays. A DICOM copy carries the technical attributes of
    `DICOM_STRUCTURAL` and standard UIDs (transfer syntax, SOP class): those needles (and parts
    of standard UIDs) are dropped; every identifying value and every canary stays."""
    if fmt != "dicom":
        return dict(needles)
    standard = [v for v in needles.values() if v.startswith(STANDARD_UID_ROOT)]
    return {
        label: value
        for label, value in needles.items()
        if _LABEL_SUFFIX.sub("", label) not in DICOM_STRUCTURAL
        and not any(value in uid for uid in standard)
    }


def _openslide(path: Path, plan: DeidPlan) -> list[str]:
    try:
        import openslide
    except ImportError:  # a pinned dependency: missing means a broken install
        return ["OpenSlide is not installed, so the copy cannot be re-opened"]
    try:
        slide = openslide.OpenSlide(str(path))
    except Exception as exc:
        return [f"OpenSlide cannot open the copy ({type(exc).__name__})"]
    with slide:
        problems = []
        vendor = slide.properties.get("openslide.vendor")
        if vendor != VENDORS.get(plan.format):
            problems.append(f"OpenSlide reads the copy as {vendor!r}, not {plan.format}")
        if slide.associated_images:
            kinds = ", ".join(sorted(slide.associated_images))
            problems.append(f"OpenSlide finds associated images in the copy ({kinds})")
        dims = [(lv.width, lv.height) for lv in plan.levels]
        if list(slide.level_dimensions) != dims:
            problems.append(
                f"OpenSlide sees {slide.level_count} level(s) of other shapes than the "
                f"{len(dims)} planned"
            )
    return problems


def _tiff_pages(copy: Path, plan: DeidPlan) -> list[str]:
    problems = []
    with tifffile.TiffFile(str(copy)) as tif:
        pages = list(tif.pages)
        if len(pages) != len(plan.levels):
            problems.append(f"copy has {len(pages)} page(s), {len(plan.levels)} level(s) planned")
        for i, (page, lv) in enumerate(zip(pages, plan.levels, strict=False)):
            if not isinstance(page, tifffile.TiffPage) or not page.is_tiled:
                problems.append(f"copy page {i} is not a tiled page")
                continue
            if (page.imagelength, page.imagewidth) != (lv.height, lv.width):
                problems.append(f"copy page {i} has other dimensions than level {lv.index}")
            extra = sorted({int(t.code) for t in page.tags} - ALLOWED_TAGS)
            if extra:
                problems.append(f"copy page {i} carries tags outside the whitelist {extra}")
            if page.subifds:
                problems.append(f"copy page {i} has SubIFDs")
            desc = page.description or ""
            if plan.format == "svs" and not desc.startswith(LIBRARY):
                problems.append(f"copy page {i} description is not the rebuilt Aperio one")
    return problems


def _tiff_tiles(copy: Path, plan: DeidPlan, source: SourceRef) -> list[str]:
    problems = []
    with TiffTiles(source) as src, TiffTiles(copy) as dst:
        for i, lv in enumerate(plan.levels):
            a = src.level(lv)
            b = dst.level(lv.model_copy(update={"index": i, "page": i}))
            if a is None or b is None or a.offsets.size != b.offsets.size:
                problems.append(f"copy level {i} tile grid differs from source level {lv.index}")
                continue
            tables = a.page.jpegtables
            if tables is not None and b.page.jpegtables != clean_jpeg_tables(tables):
                problems.append(f"copy level {i} JPEGTables are not the source's cleaned")
            walk = cleaner(a)
            n = int(a.offsets.size)
            for start in range(0, n, BATCH):
                batch = range(start, min(n, start + BATCH))
                want = src.raw(a, batch)
                want = want if walk is None else clean_payloads(walk, want)
                if want != dst.raw(b, batch):
                    problems.append(f"copy level {i} tiles differ from source level {lv.index}"
                                    " (cleaned)")  # fmt: skip
                    break
    return problems


def _frame_ok(src: bytes | None, dst: bytes | None, kind: str | None) -> bool:
    if kind is None or src is None or dst is None:
        return src == dst
    if coding_digest(src) != coding_digest(dst):
        return False
    try:
        (check_jpeg if kind == "jpeg" else check_j2k)(dst)
    except PayloadError:
        return False
    return True


def _dicom_tiles(copy: Path, plan: DeidPlan, source: Path) -> list[str]:
    problems = []
    with open_dicom(source) as src, open_dicom(copy) as dst:
        if len(dst.grids) != len(plan.levels):
            return [f"copy has {len(dst.grids)} level(s), {len(plan.levels)} planned"]
        for i, lv in enumerate(plan.levels):
            a, b = src.grids[lv.index], dst.grids[i]
            if (a.height, a.width, a.rows, a.columns) != (b.height, b.width, b.rows, b.columns):
                problems.append(f"copy level {i} tile grid differs from source level {lv.index}")
                continue
            kind = frame_walk(a.transfer_syntax)
            same = all(
                _frame_ok(src.raw_tile(a.level, r, c), dst.raw_tile(b.level, r, c), kind)
                for r in range(a.rows)
                for c in range(a.columns)
            )
            if not same:
                problems.append(f"copy level {i} tiles differ from source level {lv.index}")
    return problems


def check_copy(copy: Path, plan: DeidPlan, source: SourceRef) -> list[str]:
    """Problems of the original-format copy at `copy` (a file, or a folder for DICOM)."""
    copy = Path(copy)
    try:
        if plan.format == "dicom":
            files = sorted(copy.glob("*.dcm"))
            if not files:
                return ["the DICOM copy folder holds no instance"]
            if not isinstance(source, Path):  # S3 DICOM sources are fetched to scratch first
                return ["the DICOM source is not local; the copy cannot be compared"]
            return _dicom_tiles(copy, plan, source) + _openslide(files[0], plan)
        problems = _tiff_pages(copy, plan)
        if problems:
            return problems
        return _tiff_tiles(copy, plan, source) + _openslide(copy, plan)
    except Exception as exc:  # unreadable copy: a finding, not a crash
        return [f"copy cannot be re-opened ({type(exc).__name__})"]
