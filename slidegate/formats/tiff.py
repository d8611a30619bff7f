"""Shared TIFF plumbing: read-only opening with corruption checks, page layout, tag fields.

Vendor modules (svs.py, generic_tiff.py) decide which pages form the pyramid and which are
associated images; this module turns pages into `LevelFacts` / `AssociatedImage` /
`MetadataField` and guarantees that a file which opened here has every data block inside it.
Messages name the file and the problem, never a tag value.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from xml.etree import ElementTree

import numpy as np
import tifffile

from slidegate.errors import CorruptSlideError, TransientIOError, UnsupportedSlideError
from slidegate.formats.recognise import check_header
from slidegate.formats.sanity import check_claim, check_ifd_chain, check_tile_table
from slidegate.models import AssociatedImage, AssociatedKind, LevelFacts, MetadataField
from slidegate.sources import SourceRef, open_binary

#: descriptive tags that are fields even though tifffile knows them (name -> code)
DESCRIPTIVE_TAGS = {
    269: "DocumentName",
    270: "ImageDescription",
    271: "Make",
    272: "Model",
    285: "PageName",
    305: "Software",
    306: "DateTime",
    315: "Artist",
    316: "HostComputer",
    700: "XMP",
    33432: "Copyright",
}
#: string/bytes-valued tags that only describe how pixels are stored: not metadata fields
STRUCTURAL_BYTES_TAGS = frozenset({347})  # JPEGTables
_XML_DECL = re.compile(r"^<\?xml[^>]*\?>")
#: first private tag code: private tags are fields whatever their type (text or one number)
PRIVATE_TAGS = 32768


@dataclass(frozen=True)
class PageRef:
    """A page plus the integer stored in LevelFacts.page / AssociatedImage.page."""

    page: tifffile.TiffPage
    number: int  # top-level page index (a SubIFD level reports its parent's index)
    label: str  # human location, e.g. "page 0" or "page 0 subifd 1"
    #: further pages of the same level, one per channel (QPTIFF, planar OME-TIFF, SCN
    #: fluorescence): the level's samples are `page`'s samples followed by theirs
    channels: tuple[tifffile.TiffPage, ...] = ()

    @property
    def pages(self) -> tuple[tifffile.TiffPage, ...]:
        return (self.page, *self.channels)


def find_level(levels: list[PageRef], facts: LevelFacts, path: object) -> PageRef:
    """The candidate level that the inventory kept as `facts` (same page, same shape)."""
    for ref in levels:
        if ref.number == facts.page and (
            int(ref.page.imagelength),
            int(ref.page.imagewidth),
        ) == (facts.height, facts.width):
            return ref
    raise CorruptSlideError(
        f"slide {path} has no pyramid level {facts.index} of the inventoried page and shape "
        "any more; the source changed since the inventory: rerun the inventory",
        reason="corrupt: source changed",
    )


@dataclass
class Layout:
    """Which pages form the pyramid (largest first) and which are associated images."""

    levels: list[PageRef]
    associated: list[tuple[AssociatedKind, PageRef]] = field(default_factory=list)
    #: associated images stored inside metadata (Philips base64 label/macro in the XML)
    embedded: list[AssociatedImage] = field(default_factory=list)


class _Capture(logging.Handler):
    """Collects tifffile log records emitted by this thread while a file is parsed."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.thread = threading.get_ident()
        self.problems: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread:
            return
        text = record.getMessage().lower()
        if record.levelno >= logging.ERROR or ("invalid" in text and "offset" in text):
            self.problems.append("invalid IFD or data offset")


def _all_pages(tif: tifffile.TiffFile) -> Iterator[tifffile.TiffPage]:
    for page in tif.pages:
        if not isinstance(page, tifffile.TiffPage):
            continue
        yield page
        for sub in page.pages or ():
            if isinstance(sub, tifffile.TiffPage):
                yield sub


def _check_data_inside(tif: tifffile.TiffFile, path: SourceRef, size: int) -> None:
    for page in _all_pages(tif):
        check_tile_table(page, path)
        check_claim(page, path, size)
        offsets = np.asarray(page.dataoffsets, dtype=np.uint64)
        counts = np.asarray(page.databytecounts, dtype=np.uint64)
        if offsets.shape != counts.shape:
            raise CorruptSlideError(
                f"slide {path}: page {page.index} has mismatched tile offsets and byte counts; "
                "the file is damaged, restore it from the scanner archive",
                reason="corrupt: bad tile table",
            )
        used = counts > 0  # zero-length tiles are an Aperio encoder quirk: allowed
        if used.any() and int((offsets[used] + counts[used]).max()) > size:
            raise CorruptSlideError(
                f"slide {path}: page {page.index} points at data beyond the end of the file "
                f"({size} bytes): the file is truncated; copy it again from the scanner archive",
                reason="corrupt: truncated",
            )


@contextmanager
def open_tiff(path: SourceRef) -> Iterator[tifffile.TiffFile]:
    """Open `path` read-only, parse every IFD (and SubIFD), check every data block lies inside
    the file. Any parse problem is a CorruptSlideError; non-TIFF files fail in check_header."""
    check_header(path)
    check_ifd_chain(path)
    fh = open_binary(path)  # a local file, or ranged GETs on S3
    capture = _Capture()
    logger = logging.getLogger("tifffile")
    logger.addHandler(capture)
    tif: tifffile.TiffFile | None = None
    try:
        try:
            size = fh.seek(0, 2)
            fh.seek(0)
            tif = tifffile.TiffFile(fh)
            pages = list(_all_pages(tif))
            if not pages:
                raise ValueError("no pages")
            for page in pages:
                _ = page.shape, page.dtype, page.description
        except (CorruptSlideError, UnsupportedSlideError, TransientIOError):
            raise
        except Exception as exc:  # tifffile raises many kinds on damaged files
            raise CorruptSlideError(
                f"slide {path} cannot be parsed as TIFF ({type(exc).__name__}); it is truncated "
                "or damaged; restore it from the scanner archive",
                reason="corrupt: unparseable TIFF",
            ) from None
        finally:
            logger.removeHandler(capture)
        if capture.problems:
            raise CorruptSlideError(
                f"slide {path}: {capture.problems[0]} (the IFD chain is broken, usually a "
                "truncated copy); copy the file again from the scanner archive",
                reason="corrupt: broken IFD chain",
            )
        _check_data_inside(tif, path, size)
        yield tif
    finally:
        if tif is not None:
            tif.close()
        fh.close()


def compression_name(page: tifffile.TiffPage) -> str:
    comp = page.compression
    return getattr(comp, "name", str(comp))


def page_samples(page: tifffile.TiffPage) -> int:
    return int(page.samplesperpixel)


def ref_samples(ref: PageRef) -> int:
    return sum(page_samples(p) for p in ref.pages)


def level_facts(index: int, ref: PageRef, level0: PageRef) -> LevelFacts:
    page = ref.page
    return LevelFacts(
        index=index,
        page=ref.number,
        height=int(page.imagelength),
        width=int(page.imagewidth),
        samples=ref_samples(ref),
        dtype=np.dtype(page.dtype).name,
        tile_height=int(page.tilelength) if page.is_tiled else None,
        tile_width=int(page.tilewidth) if page.is_tiled else None,
        compression=compression_name(page),
        downsample=float(level0.page.imagewidth) / float(page.imagewidth),
    )


def associated_image(kind: AssociatedKind, ref: PageRef) -> AssociatedImage:
    return AssociatedImage(
        kind=kind,
        page=ref.number,
        height=int(ref.page.imagelength),
        width=int(ref.page.imagewidth),
        compression=compression_name(ref.page),
    )


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value.strip("\x00")
    if isinstance(value, bytes | bytearray):
        raw = bytes(value).rstrip(b"\x00")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("latin-1")
    return None


def _scalar(value: Any) -> str | None:
    """Text of a single number (private tags): None for arrays, tuples and enums."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return str(value)


def tag_fields(
    ref: PageRef, *, skip_description: bool, skip: frozenset[int] = frozenset()
) -> list[MetadataField]:
    """Every descriptive tag of one page as `tiff.<TagName>` (or `tiff.tag<code>`), and every
    private tag (code >= 32768) holding text or a single number; `skip` lists codes a vendor
    module reports itself."""
    out: list[MetadataField] = []
    for tag in ref.page.tags:
        code = int(tag.code)
        if code in STRUCTURAL_BYTES_TAGS or code in skip or (skip_description and code == 270):
            continue
        name = DESCRIPTIVE_TAGS.get(code) or (tag.name if not str(tag.name).isdigit() else "")
        name = name or f"tag{code}"
        where = f"{ref.label} tag {code} {name}"
        value = tag.value
        if isinstance(value, dict):  # EXIF / GPS IFDs
            for key, item in value.items():
                text = _text(item) if isinstance(item, str | bytes) else str(item)
                if text:
                    out.append(MetadataField(name=f"tiff.{name}.{key}", location=where, value=text))
            continue
        text = _text(value)
        if text is None and code >= PRIVATE_TAGS:
            text = _scalar(value)
        if text:
            out.append(MetadataField(name=f"tiff.{name}", location=where, value=text))
    return out


def resolution_mpp(page: tifffile.TiffPage) -> tuple[float | None, float | None]:
    """Micrometres per pixel from X/YResolution + ResolutionUnit (inch or cm), else None."""
    unit_tag = page.tags.get(296)
    unit = int(unit_tag.value) if unit_tag is not None else 2  # TIFF default: inch
    per_unit_um = {2: 25400.0, 3: 10000.0}.get(unit)
    if per_unit_um is None:
        return None, None

    def one(code: int) -> float | None:
        tag = page.tags.get(code)
        if tag is None:
            return None
        value = tag.value
        try:
            ppu = value[0] / value[1] if isinstance(value, tuple) else float(value)
        except (TypeError, ZeroDivisionError, IndexError):
            return None
        return per_unit_um / ppu if ppu > 0 else None

    return one(283), one(282)  # (y, x)


def named(page: tifffile.TiffPage) -> AssociatedKind | None:
    """'label' / 'macro' if the description or page name says so."""
    texts = [page.description or ""]
    page_name = page.tags.get(285)
    if page_name is not None and isinstance(page_name.value, str):
        texts.append(page_name.value)
    joined = " ".join(texts).lower()
    if "label" in joined:
        return "label"
    if "macro" in joined or "overview" in joined:
        return "macro"
    return None


def same_pixels(a: tifffile.TiffPage, b: tifffile.TiffPage) -> bool:
    return (
        a.samplesperpixel == b.samplesperpixel
        and a.dtype == b.dtype
        and a.planarconfig == b.planarconfig
    )


def parse_xml(text: str) -> ElementTree.Element | None:
    """The root element of an XML description (any declared encoding), None if not XML."""
    body = _XML_DECL.sub("", text.lstrip("\ufeff \r\n\t"), count=1)
    try:
        return ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return None


def local_name(tag: str) -> str:
    """Tag or attribute name without its `{namespace}` or `prefix:`."""
    return tag.rsplit("}", 1)[-1].rsplit(":", 1)[-1]


def xml_fields(
    root: ElementTree.Element,
    prefix: str,
    where: str,
    *,
    include_root: bool = False,
    skip_attrs: frozenset[str] = frozenset(),
    skip_tags: frozenset[str] = frozenset(),
) -> list[MetadataField]:
    """Every element text and attribute of an XML tree as a field named by its path:
    `<prefix>.<a>.<b>` for text, `<prefix>.<a>.<b>@<attr>` for attributes (namespaces
    stripped; the root element's name only with `include_root`). Locations number the
    elements so repeated paths stay distinct. `skip_attrs` / `skip_tags`: serialisation
    plumbing and subtrees the caller reports itself."""
    out: list[MetadataField] = []
    counter = [0]

    def walk(el: ElementTree.Element, path: str) -> None:
        counter[0] += 1
        loc = f"{where} xml element {counter[0]}"
        for key, value in el.attrib.items():
            attr = local_name(key)
            if attr in skip_attrs or not value.strip():
                continue
            out.append(MetadataField(name=f"{path}@{attr}", location=loc, value=value.strip()))
        text = (el.text or "").strip()
        if text:
            out.append(MetadataField(name=path, location=loc, value=text))
        for child in el:
            if not isinstance(child.tag, str):
                continue  # comments, processing instructions
            name = local_name(child.tag)
            if name not in skip_tags:
                walk(child, f"{path}.{name}")

    walk(root, f"{prefix}.{local_name(root.tag)}" if include_root else prefix)
    return out


def level_pages(level: tifffile.TiffPageSeries) -> list[tifffile.TiffPage] | None:
    """The pages of one series level as full TiffPages (tifffile hands out lightweight
    TiffFrames for pages that share the first page's structure); None if one is missing."""
    out: list[tifffile.TiffPage] = []
    for item in level.pages:
        if isinstance(item, tifffile.TiffFrame):
            item = item.aspage()
        if not isinstance(item, tifffile.TiffPage):
            return None
        out.append(item)
    return out or None
