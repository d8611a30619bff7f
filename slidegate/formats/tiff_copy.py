"""A de-identified copy of an Aperio SVS or a generic tiled TIFF in its own format.

Only the pyramid levels of the de-identification plan are written, one top-level IFD each
(largest first; NewSubfileType 0 for the base level, 1 "reduced" for the others), in the source's
byte order (BigTIFF when the tiles need more than 4 GB). Label, macro, thumbnail and any other
page are not in the file at all. Each level's compressed tiles are copied byte for byte from the
source's tile offsets, a batch at a time (memory stays bounded), with only the tags that decode
and place the pixels (`PIXEL_TAGS`, copied from the source page) and the geometry written here:
no DateTime, Make, Model, Software, Artist, HostComputer, XMP, ICC, private tag or original
ImageDescription. An SVS copy gets an Aperio ImageDescription rebuilt on every page from the
plan's kept `aperio.*` values only (so OpenSlide still detects `aperio` and reports the MPP); a
generic TIFF copy gets X/YResolution (per cm) from the plan's MPP. Every JPEG / JPEG 2000
tile and the JPEGTables are walked whole and cleaned first (slidegate.payload: COM, APPn but a
bare JFIF / Adobe header, JP2 boxes, bytes after EOI / EOC removed; the entropy-coded data,
so the pixels, unchanged). One that cannot be walked: `CopyNotPossible`, the slide gets no copy.
"""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from slidegate.convert.tiles import TiffTiles, TiledLevel
from slidegate.errors import SlidegateError
from slidegate.models import DeidPlan, LevelFacts
from slidegate.payload import BandCleaner, Unparsable, clean_jpeg_tables, clean_payloads
from slidegate.sources import SourceRef

#: plan format -> file suffix of its copy
SUFFIXES = {"svs": ".svs", "tiff": ".tiff"}
LIBRARY = "Aperio Image Library slidegate"

BYTE, ASCII, SHORT, LONG, RATIONAL, UNDEFINED, LONG8 = 1, 2, 3, 4, 5, 7, 16
_ITEM = {BYTE: "B", ASCII: "B", SHORT: "H", LONG: "I", RATIONAL: "I", UNDEFINED: "B", LONG8: "Q"}
#: source tags copied unchanged (code -> TIFF type written): what a reader needs to decode
PIXEL_TAGS = {
    258: SHORT,  # BitsPerSample
    259: SHORT,  # Compression
    262: SHORT,  # PhotometricInterpretation
    277: SHORT,  # SamplesPerPixel
    284: SHORT,  # PlanarConfiguration
    317: SHORT,  # Predictor
    338: SHORT,  # ExtraSamples
    339: SHORT,  # SampleFormat
    347: UNDEFINED,  # JPEGTables
    530: SHORT,  # YCbCrSubSampling
    531: SHORT,  # YCbCrPositioning
    532: RATIONAL,  # ReferenceBlackWhite
}
#: tags written here: NewSubfileType, size, description (SVS), resolution (TIFF), tiles
GEOMETRY_TAGS = frozenset({254, 256, 257, 270, 282, 283, 296, 322, 323, 324, 325})
#: every tag a copy may hold (the audit's copy check holds the copy to it)
ALLOWED_TAGS = frozenset({*PIXEL_TAGS, *GEOMETRY_TAGS})
JPEG_CODES = frozenset({7})
J2K_CODES = frozenset({33003, 33004, 33005, 34712})
#: tiles read and written per batch
BATCH = 256

Entry = tuple[int, int, "tuple[int, ...] | bytes"]


class CopyNotPossible(SlidegateError):
    """This slide cannot be copied in its own format; it is released without the copy."""

    category = "copy"


def _tag_values(value: Any) -> tuple[int, ...] | bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, tuple | list | np.ndarray):
        flat: list[int] = []
        for item in value:
            flat.extend(_tag_values(item) if isinstance(item, tuple | list) else [int(item)])
        return tuple(flat)
    return (int(value),)


class _TiffOut:
    """Minimal TIFF / BigTIFF writer: data first, then each IFD, linked as it is written."""

    def __init__(self, fh: BinaryIO, byteorder: str, big: bool) -> None:
        self.fh, self.bo, self.big = fh, byteorder, big
        self.off = "Q" if big else "I"
        mark = b"II" if byteorder == "<" else b"MM"
        if big:
            fh.write(mark + struct.pack(f"{byteorder}HHHQ", 43, 8, 0, 0))
            self.link = 8
        else:
            fh.write(mark + struct.pack(f"{byteorder}HI", 42, 0))
            self.link = 4

    def align(self) -> None:
        if self.fh.tell() % 2:
            self.fh.write(b"\0")

    def ifd(self, entries: list[Entry]) -> None:
        bo, fh, inline = self.bo, self.fh, 8 if self.big else 4
        rows: list[tuple[int, int, int, bytes]] = []
        for code, typ, vals in sorted(entries, key=lambda e: e[0]):
            if isinstance(vals, bytes):
                data, count = vals, len(vals)
            else:
                data = struct.pack(f"{bo}{len(vals)}{_ITEM[typ]}", *vals)
                count = len(vals) // 2 if typ == RATIONAL else len(vals)
            if len(data) > inline:
                self.align()
                pos = fh.tell()
                fh.write(data)
                data = struct.pack(f"{bo}{self.off}", pos)
            rows.append((code, typ, count, data.ljust(inline, b"\0")))
        self.align()
        start = fh.tell()
        fh.write(struct.pack(f"{bo}{self.off if self.big else 'H'}", len(rows)))
        for code, typ, count, data in rows:
            fh.write(struct.pack(f"{bo}HH{self.off}", code, typ, count) + data)
        nxt = fh.tell()
        fh.write(struct.pack(f"{bo}{self.off}", 0))
        fh.seek(self.link)
        fh.write(struct.pack(f"{bo}{self.off}", start))
        fh.seek(0, 2)
        self.link = nxt


def aperio_description(plan: DeidPlan, lv: LevelFacts, level: TiledLevel) -> str:
    """A minimal Aperio ImageDescription from the plan's kept `aperio.*` values only."""
    base = plan.levels[0]
    if lv.index == base.index:
        comp = {7: "JPEG/RGB", 33003: "J2K/YCbCr", 33005: "J2K/RGB"}
        name = comp.get(int(level.page.compression), "RAW/RGB")
        size = f"{lv.width}x{lv.height} [0,0 {lv.width}x{lv.height}] "
        head = f"{size}({level.tile_w}x{level.tile_h}) {name}"
    else:
        head = f"{base.width}x{base.height} -> {lv.width}x{lv.height}"
    kept = [
        f"{key.removeprefix('aperio.')} = {value}"
        for key, value in sorted(plan.attributes.items())
        if key.startswith("aperio.") and not set(value) & set("|\r\n")
    ]
    return "|".join([f"{LIBRARY}\r\n{head}", *kept])


def _resolution(plan: DeidPlan, lv: LevelFacts) -> list[Entry]:
    if not plan.mpp_x or not plan.mpp_y:
        return []

    def per_cm(mpp: float) -> tuple[int, int]:
        frac = Fraction(10000.0 / (mpp * lv.downsample)).limit_denominator(1000)
        return frac.numerator, frac.denominator

    return [(282, RATIONAL, per_cm(plan.mpp_x)), (283, RATIONAL, per_cm(plan.mpp_y)),
            (296, SHORT, (3,))]  # fmt: skip


def _entries(
    plan: DeidPlan, lv: LevelFacts, level: TiledLevel, offsets: list[int], counts: list[int],
    big: bool,
) -> list[Entry]:  # fmt: skip
    table = LONG8 if big else LONG
    out: list[Entry] = [
        (254, LONG, (0 if lv.index == plan.levels[0].index else 1,)),
        (256, LONG, (level.width,)),
        (257, LONG, (level.height,)),
        (322, LONG, (level.tile_w,)),
        (323, LONG, (level.tile_h,)),
        (324, table, tuple(offsets)),
        (325, table, tuple(counts)),
    ]
    for tag in level.page.tags:
        code = int(tag.code)
        if code == 347:  # JPEGTables: cleaned like the tiles
            out.append((code, UNDEFINED, clean_jpeg_tables(bytes(tag.value))))
        elif code in PIXEL_TAGS:
            out.append((code, PIXEL_TAGS[code], _tag_values(tag.value)))
    if plan.format == "svs":
        out.append((270, ASCII, aperio_description(plan, lv, level).encode("ascii") + b"\0"))
    else:
        out.extend(_resolution(plan, lv))
    return out


def cleaner(level: TiledLevel) -> BandCleaner | None:
    """The payload walk of `level`'s tiles (None: not JPEG / JPEG 2000, copied as they are)."""
    code = int(level.page.compression)
    if code in JPEG_CODES:
        return BandCleaner("jpeg")
    return BandCleaner("j2k") if code in J2K_CODES else None


def _copy_tiles(tiles: TiffTiles, level: TiledLevel, fh: BinaryIO) -> tuple[list[int], list[int]]:
    offsets: list[int] = []
    counts: list[int] = []
    n = int(level.offsets.size)
    walk = cleaner(level)
    for start in range(0, n, BATCH):
        batch = tiles.raw(level, range(start, min(n, start + BATCH)))
        for data in batch if walk is None else clean_payloads(walk, batch):
            if data is None:  # zero-length tile (Aperio quirk): stays empty
                offsets.append(0)
                counts.append(0)
                continue
            offsets.append(fh.tell())
            counts.append(len(data))
            fh.write(data)
    return offsets, counts


def _tiled(tiles: TiffTiles, lv: LevelFacts, source: SourceRef) -> TiledLevel:
    level = tiles.level(lv)
    if level is None or int(level.page.compression) == 6:
        raise CopyNotPossible(
            f"slide {source}: pyramid level {lv.index} is not one tiled, interleaved page "
            "(strips, one page per channel or old-style JPEG); no original-format copy is "
            "written for it, the OME-Zarr output is not affected",
            reason="copy: level not tiled",
        )
    return level


def write_tiff_copy(source: SourceRef, plan: DeidPlan, out: Path) -> int:
    """Write the de-identified copy of `source` (SVS or generic TIFF) to the file `out`;
    return its size in bytes. A partial file never stays behind."""
    if plan.format not in SUFFIXES:
        raise CopyNotPossible(
            f"slide {source}: no original-format copy writer for format {plan.format!r}",
            reason=f"copy: no writer for {plan.format}",
        )
    out = Path(out)
    part = out.with_name(out.name + ".part")
    try:
        with TiffTiles(source) as tiles, open(part, "wb") as fh:
            levels = [(lv, _tiled(tiles, lv, source)) for lv in plan.levels]
            byteorder = levels[0][1].page.parent.byteorder
            payload = sum(int(level.counts.sum()) for _, level in levels)
            big = payload + (1 << 24) >= 1 << 32
            writer = _TiffOut(fh, byteorder, big)
            for lv, level in levels:
                offsets, counts = _copy_tiles(tiles, level, fh)
                writer.ifd(_entries(plan, lv, level, offsets, counts, big))
        part.replace(out)
    except Unparsable as exc:
        part.unlink(missing_ok=True)
        raise CopyNotPossible(
            f"slide {source}: a compressed tile cannot be walked (payload rule {exc.rule}), so "
            "it cannot be cleaned losslessly; no original-format copy is written for this slide",
            reason=f"copy: {exc.reason}",
        ) from None
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return out.stat().st_size
