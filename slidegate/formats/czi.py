"""Zeiss CZI (ZISRAW): pyramid from subblocks, attachments as associated images, XML fields.

Read with czifile. A CZI holds subblocks (tiles) with a logical position and size in level-0
pixels and a stored size; a stored size smaller than the logical size marks a pyramid subblock
(ZEN writes them for slide scans). Levels are the distinct subsampling factors, level 0 being
the tiles stored at full resolution; each level is the bounding box of its tiles, painted in
mosaic-index order (as czifile's `asarray`). Several channels (C) become the sample axis;
several scenes (S) are painted into one plane at their own positions; more than one Z plane,
time point or other index is not supported (a clear UnsupportedSlideError).

Every element text and attribute of the XML metadata segment is a field named by its path
(`czi.Metadata/Information/Document/UserName`, `czi.<path>@Attr`); subblock XML metadata too
(`czi.subblock.Tags/AcquisitionTime`, one field per distinct value); the file GUIDs as
`czi.header.*`; attachment names as `czi.attachment.name`. Attachments (Label, SlidePreview,
Thumbnail, EventList, TimeStamps...) are associated images (kind by name), never published.
Region access: `slidegate.formats.czi_reader.CziReader`.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from math import ceil
from pathlib import Path
from typing import Any

import numpy as np

from slidegate.errors import CorruptSlideError, UnsupportedSlideError
from slidegate.formats.registry import slide_facts
from slidegate.models import AssociatedImage, AssociatedKind, LevelFacts, MetadataField, SlideFacts

FORMAT = "czi"
MAGIC = b"ZISRAWFILE"
COMPRESSION = {0: "NONE", 1: "JPEG", 2: "LZW", 4: "JPEGXR", 5: "ZSTD", 6: "ZSTD1"}
IMAGE_CONTENT = frozenset({"JPG", "JPEG", "PNG", "BMP", "TIF", "TIFF", "CZI", "JXR"})
ATTACHMENT_KIND: dict[str, AssociatedKind] = {
    "label": "label",
    "slidepreview": "macro",
    "prescan": "macro",
    "overview": "macro",
    "thumbnail": "thumbnail",
}
#: dimensions that may differ between subblocks of one plane (tiles, scenes, channels)
PLANE_DIMS = frozenset({"X", "Y", "C", "S", "M"})


def sniff(path: Path) -> bool:
    """A ZISRAW file header, or a .czi name (a damaged one then gets a CZI error message)."""
    try:
        if not path.is_file():
            return False
        if path.suffix.lower() == ".czi":
            return True
        with open(path, "rb") as fh:
            return fh.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def open_czi(path: Path) -> Any:
    import czifile

    try:
        return czifile.CziFile(str(path), multifile=False)
    except Exception as exc:
        raise CorruptSlideError(
            f"slide {path} is not a readable Zeiss CZI ({type(exc).__name__}); the file is "
            "damaged or truncated: restore it from the archive",
            reason="corrupt: unreadable CZI",
        ) from None


@dataclass(frozen=True)
class Tile:
    """One subblock of a level: its rectangle in that level's pixels."""

    entry: Any  # czifile DirectoryEntryDV
    y: int
    x: int
    h: int
    w: int
    channel: int  # index into the sample axis (0 for RGB data)


@dataclass
class Level:
    factor: float
    height: int = 0
    width: int = 0
    tiles: list[Tile] = field(default_factory=list)


@dataclass
class CziLayout:
    levels: list[Level]
    samples: int
    dtype: np.dtype[Any]
    compression: str


def _dims(entry: Any) -> dict[str, Any]:
    return {d.dimension: d for d in entry.dimension_entries}


def _unsupported(path: Path, what: str) -> UnsupportedSlideError:
    return UnsupportedSlideError(
        f"slide {path}: Zeiss CZI with {what} is not supported yet; export a single-plane "
        "(one Z, one time point) image from ZEN",
        reason=f"unsupported: CZI {what}",
    )


def layout(czi: Any, path: Path) -> CziLayout:
    entries = list(czi.subblock_directory)
    if not entries:
        raise CorruptSlideError(
            f"slide {path}: the CZI has no image subblocks; the file is incomplete",
            reason="corrupt: CZI without image data",
        )
    for name in sorted({d.dimension for e in entries for d in e.dimension_entries} - PLANE_DIMS):
        if len({_dims(e)[name].start for e in entries if name in _dims(e)}) > 1:
            raise _unsupported(path, f"several {name} indexes")
    pixel = {e.dtype for e in entries}
    if len(pixel) > 1:
        raise _unsupported(path, "mixed pixel types")
    dtype = np.dtype(entries[0].dtype)
    base = dtype.base
    per_pixel = int(np.prod(dtype.shape)) if dtype.shape else 1
    channels = sorted({_dims(e)["C"].start for e in entries if "C" in _dims(e)}) or [0]
    if per_pixel > 1 and len(channels) > 1:
        raise _unsupported(path, "several RGB channels")
    cindex = {c: i for i, c in enumerate(channels)}
    stored = [max(_dims(e)["X"].stored_size, _dims(e)["Y"].stored_size) for e in entries]
    factor = dict(zip(map(id, entries), _snap([_factor(e) for e in entries], stored), strict=True))
    full = [e for e in entries if factor[id(e)] == 1.0]
    if not full:
        raise CorruptSlideError(
            f"slide {path}: the CZI has no full-resolution subblocks",
            reason="corrupt: CZI without full-resolution tiles",
        )
    y0 = min(_dims(e)["Y"].start for e in full)
    x0 = min(_dims(e)["X"].start for e in full)
    levels: dict[float, Level] = {}
    # paint order: mosaic index (stable), as czifile's asarray
    ordered = sorted(entries, key=lambda e: (e.mosaic_index is None, e.mosaic_index or 0))
    for e in ordered:
        f = factor[id(e)]
        d = _dims(e)
        lv = levels.setdefault(f, Level(factor=f))
        ty = int((d["Y"].start - y0) // f)
        tx = int((d["X"].start - x0) // f)
        if ty < 0 or tx < 0:
            continue  # a pyramid tile outside the full-resolution area
        c = cindex[d["C"].start] if "C" in d else 0
        lv.tiles.append(Tile(e, ty, tx, d["Y"].stored_size, d["X"].stored_size, c))
    out = []
    height0 = max(t.y + t.h for t in levels[1.0].tiles)
    width0 = max(t.x + t.w for t in levels[1.0].tiles)
    for f in sorted(levels):
        lv = levels[f]
        if not lv.tiles:
            continue
        lv.height = min(max(t.y + t.h for t in lv.tiles), ceil(height0 / f))
        lv.width = min(max(t.x + t.w for t in lv.tiles), ceil(width0 / f))
        if lv.height > 0 and lv.width > 0:
            out.append(lv)
    comp = COMPRESSION.get(int(full[0].compression), f"CZI-{int(full[0].compression)}")
    samples = per_pixel if per_pixel > 1 else len(channels)
    return CziLayout(levels=out, samples=samples, dtype=np.dtype(base), compression=comp)


def _factor(entry: Any) -> float:
    """Subsampling of a subblock, from the axis with the larger stored size (edge tiles can be
    a few pixels thin on the other axis, where rounding would distort the ratio)."""
    d = _dims(entry)
    axis = d["X"] if d["X"].stored_size >= d["Y"].stored_size else d["Y"]
    return round(axis.size / max(axis.stored_size, 1), 2)


def _snap(factors: list[float], sizes: list[int]) -> list[float]:
    """Tiny tiles (< 32 px stored) take the nearest factor of a regular tile."""
    regular = sorted({f for f, s in zip(factors, sizes, strict=True) if s >= 32}) or [1.0]
    return [
        f if s >= 32 or f in regular else min(regular, key=lambda r: abs(r - f))
        for f, s in zip(factors, sizes, strict=True)
    ]


def level_facts(lay: CziLayout) -> tuple[LevelFacts, ...]:
    base = lay.levels[0]
    out = []
    for i, lv in enumerate(lay.levels):
        first = lv.tiles[0]
        out.append(
            LevelFacts(
                index=i,
                page=i,
                height=lv.height,
                width=lv.width,
                samples=lay.samples,
                dtype=lay.dtype.name,
                tile_height=first.h,
                tile_width=first.w,
                compression=lay.compression,
                downsample=round(base.width / lv.width, 6),
            )
        )
    return tuple(out)


def _attachment_kind(name: str) -> AssociatedKind:
    return ATTACHMENT_KIND.get(name.strip().lower(), "other")


def _image_size(data: bytes, content: str) -> tuple[int, int]:
    try:
        if content == "CZI":
            import czifile

            with czifile.CziFile(io.BytesIO(data), filesize=len(data)) as inner:
                shape = inner.shape
                return int(shape[-3]), int(shape[-2])
        from PIL import Image

        with Image.open(io.BytesIO(data)) as img:
            return int(img.height), int(img.width)
    except Exception:
        return 0, 0


def associated(czi: Any) -> tuple[AssociatedImage, ...]:
    out = []
    for i, entry in enumerate(czi.attachment_directory):
        content = str(entry.content_file_type).upper()
        kind = _attachment_kind(str(entry.name))
        height = width = 0
        if content in IMAGE_CONTENT:
            height, width = _image_size(entry.data_segment().data(raw=True), content)
        out.append(
            AssociatedImage(kind=kind, page=i, height=height, width=width, compression=content)
        )
    return tuple(out)


def _walk(el: ET.Element, path: str, loc: str) -> Iterator[tuple[str, str, str]]:
    """(name path, location path, value) for the text and every attribute of each element."""
    text = (el.text or "").strip()
    if text:
        yield path, loc, text
    for attr, value in el.attrib.items():
        if value.strip():
            yield f"{path}@{attr}", f"{loc}@{attr}", value.strip()
    seen: dict[str, int] = {}
    for child in el:
        if not isinstance(child.tag, str):
            continue
        seen[child.tag] = seen.get(child.tag, 0) + 1
        yield from _walk(
            child,
            f"{path}/{child.tag}" if path else child.tag,
            f"{loc}/{child.tag}[{seen[child.tag]}]",
        )


def xml_fields(text: str, prefix: str, where: str) -> list[MetadataField]:
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return [MetadataField(name=f"{prefix}.unparsed", location=where, value=text)]
    return [
        MetadataField(
            name=f"{prefix}.{name}" if name else prefix, location=f"{where} {loc}", value=v
        )
        for name, loc, v in _walk(root, "", root.tag)
    ]


def fields(czi: Any) -> list[MetadataField]:
    out = [
        MetadataField(
            name=f"czi.header.{key}",
            location="file header segment",
            value=str(getattr(czi.header, key)),
        )
        for key in ("primary_file_guid", "file_guid")
    ]
    out.extend(xml_fields(czi.metadata() or "", "czi", "metadata segment xml"))
    seen: set[tuple[str, str]] = set()
    for i, entry in enumerate(czi.subblock_directory):
        text = entry.data_segment().metadata(raw=True)
        if not text:
            continue
        for f in xml_fields(text, "czi.subblock", f"subblock {i} xml"):
            if (f.name, f.value) not in seen:  # tiles repeat most values: record each once
                seen.add((f.name, f.value))
                out.append(f)
    for i, entry in enumerate(czi.attachment_directory):
        out.append(
            MetadataField(
                name="czi.attachment.name", location=f"attachment {i} entry", value=str(entry.name)
            )
        )
    return out


def mpp(field_list: list[MetadataField]) -> tuple[float | None, float | None]:
    """(mpp_y, mpp_x) from Scaling/Items/Distance (metres per pixel) of the metadata XML."""
    ids: dict[str, str] = {}
    values: dict[str, str] = {}
    for f in field_list:
        if f.name == "czi.Metadata/Scaling/Items/Distance@Id":
            ids[f.location.rsplit("@", 1)[0]] = f.value
        elif f.name == "czi.Metadata/Scaling/Items/Distance/Value":
            values[f.location.rsplit("/", 1)[0]] = f.value
    by_axis: dict[str, float] = {}
    for loc, axis in ids.items():
        try:
            metres = float(values.get(loc, ""))
        except ValueError:
            continue
        if metres > 0:
            by_axis[axis.upper()] = metres * 1e6
    return by_axis.get("Y", by_axis.get("X")), by_axis.get("X", by_axis.get("Y"))


def read_facts(path: Path, slide_id: str) -> SlideFacts:
    path = Path(path)
    czi = open_czi(path)
    try:
        lay = layout(czi, path)
        field_list = fields(czi)
        images = associated(czi)
    except (CorruptSlideError, UnsupportedSlideError):
        raise
    except Exception as exc:
        raise CorruptSlideError(
            f"slide {path}: the CZI structure cannot be read ({type(exc).__name__}); the file "
            "is damaged: restore it from the archive",
            reason="corrupt: unreadable CZI",
        ) from None
    finally:
        czi.close()
    return slide_facts(
        path,
        slide_id,
        FORMAT,
        mpp_yx=mpp(field_list),
        levels=level_facts(lay),
        associated=images,
        fields=field_list,
    )
