"""Structural sanity checks that run before any pixel is read, so damaged files fail in
milliseconds instead of hanging a reader: the IFD chain (loops, offsets outside the file) and
each tiled page's tile table against its dimensions (absurd sizes), and each page's claimed pixel
bytes against the file's size (a few KB cannot hold a terapixel image)."""

from __future__ import annotations

import math
import struct
from typing import Any

from slidegate.errors import CorruptSlideError
from slidegate.sources import SourceRef, open_binary

MAX_IFDS = 100_000
_4GB = 1 << 32
#: one decoded tile larger than this is no whole-slide tile (they are 256-4096 px squares)
MAX_TILE_BYTES = 1 << 30
#: decoded bytes a page may claim per stored byte (JPEG of blank glass reaches ~200:1, deflate
#: of an empty plane ~1000:1) ...
MAX_RATIO = 4096
#: ... and a floor so a small legitimate file is never refused
MIN_CLAIM = 1 << 28


def check_ifd_chain(path: SourceRef) -> None:
    """Raise CorruptSlideError if the IFD chain loops, points outside the file or never ends."""
    with open_binary(path) as fh:
        size = fh.seek(0, 2)
        fh.seek(0)
        head = fh.read(16)
        if len(head) < 8 or head[:2] not in (b"II", b"MM"):
            _corrupt(path, "the TIFF header is cut short", "truncated")
        order = "<" if head[:2] == b"II" else ">"
        big = struct.unpack(order + "H", head[2:4])[0] == 43
        if big and len(head) < 16:
            _corrupt(path, "the BigTIFF header is cut short", "truncated")
        if not big and size >= _4GB:
            return  # NDPI-style >4 GB classic files keep high offset bits elsewhere
        offset_fmt, count_fmt, entry = (
            (order + "Q", order + "Q", 20) if big else (order + "I", order + "H", 12)
        )
        offset = struct.unpack(offset_fmt, head[8:16] if big else head[4:8])[0]
        seen: set[int] = set()
        while offset:
            if offset in seen:
                _corrupt(path, "the IFD chain loops back on itself", "IFD loop")
            if offset + struct.calcsize(count_fmt) > size or len(seen) >= MAX_IFDS:
                _corrupt(path, "the IFD chain points outside the file", "bad IFD offset")
            seen.add(offset)
            fh.seek(offset)
            raw = fh.read(struct.calcsize(count_fmt))
            if len(raw) < struct.calcsize(count_fmt):
                _corrupt(path, "an IFD runs past the end of the file", "truncated")
            count = struct.unpack(count_fmt, raw)[0]
            fh.seek(offset + struct.calcsize(count_fmt) + count * entry)
            raw = fh.read(struct.calcsize(offset_fmt))
            if len(raw) < struct.calcsize(offset_fmt):
                _corrupt(path, "an IFD runs past the end of the file", "truncated")
            offset = struct.unpack(offset_fmt, raw)[0]


def _corrupt(path: SourceRef, what: str, reason: str) -> None:
    raise CorruptSlideError(
        f"slide {path}: {what}; the file is damaged, restore it from the scanner archive",
        reason=f"corrupt: {reason}",
    )


def check_tile_table(page: Any, path: SourceRef) -> None:
    """A tiled page must have exactly one tile entry per tile its dimensions imply, tiles of a
    sane size; no page may claim more decoded bytes than its file can hold (`check_claim`)."""
    if not page.is_tiled:
        return
    if min(page.tilewidth, page.tilelength, page.imagewidth, page.imagelength) <= 0:
        _corrupt(path, f"page {page.index} has a zero width, length or tile size", "bad tile table")
    tile = page.tilewidth * page.tilelength * max(page.tiledepth, 1)
    if tile * page.samplesperpixel * max(page.bitspersample, 8) // 8 > MAX_TILE_BYTES:
        _corrupt(path, f"page {page.index} claims tiles of over 1 GiB", "absurd tile size")
    across = math.ceil(page.imagewidth / page.tilewidth)
    down = math.ceil(page.imagelength / page.tilelength)
    deep = math.ceil(page.imagedepth / max(page.tiledepth, 1))
    planes = page.samplesperpixel if page.planarconfig == 2 else 1
    if across * down * deep * planes != len(page.dataoffsets):
        _corrupt(
            path,
            f"page {page.index} claims {page.imagewidth}x{page.imagelength} pixels but holds "
            f"{len(page.dataoffsets)} tiles",
            "bad tile table",
        )


def check_claim(page: Any, path: SourceRef, size: int) -> None:
    """Refuse a page whose decoded pixels could not come from a file of `size` bytes."""
    if page.imagewidth <= 0 or page.imagelength <= 0 or page.samplesperpixel <= 0:
        _corrupt(path, f"page {page.index} has a zero width, length or sample count", "empty page")
    dims = (page.imagewidth, page.imagelength, max(page.imagedepth, 1), page.samplesperpixel)
    claimed = math.prod(int(d) for d in dims) * max(int(page.bitspersample), 8) // 8
    if claimed > max(size * MAX_RATIO, MIN_CLAIM):
        _corrupt(
            path,
            f"page {page.index} claims {page.imagewidth}x{page.imagelength} pixels, more than "
            f"a file of {size} bytes can hold",
            "absurd dimensions",
        )
