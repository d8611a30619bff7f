"""Raw tile access to the pyramid pages of a tiled TIFF-family source (SVS, generic TIFF).

One read-only handle per source; compressed tile bytes are read with `os.pread` (no shared file
position, so threads may read at once; a ranged GET for a slide on S3), neighbouring tiles
coalesced into one read. Regions are decoded tile by tile with tifffile's own decoder for the page
(`page.decode`), so decoded pixels are tifffile's pixels by construction; zero-length tiles
decode to the fill value (0).
Not picklable: open one per task, by path.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
import tifffile

from slidegate.errors import CorruptSlideError
from slidegate.formats.detect import classify, layout_for
from slidegate.formats.tiff import PageRef, find_level, open_tiff
from slidegate.models import LevelFacts
from slidegate.sources import SourceRef, positional_reader

#: coalesce reads of tiles whose gap is at most this many bytes
GAP = 64 * 1024


@dataclass(frozen=True)
class TiledLevel:
    """One tiled, chunky (interleaved samples) pyramid page."""

    page: tifffile.TiffPage
    height: int
    width: int
    tile_h: int
    tile_w: int
    samples: int
    offsets: np.ndarray  # uint64 per tile, row-major over the tile grid
    counts: np.ndarray

    @property
    def grid(self) -> tuple[int, int]:
        return -(-self.height // self.tile_h), -(-self.width // self.tile_w)


def _tiled_level(page: tifffile.TiffPage, path: SourceRef) -> TiledLevel | None:
    if not page.is_tiled or int(page.planarconfig) != 1 or int(page.imagedepth) != 1:
        return None
    offsets = np.asarray(page.dataoffsets, dtype=np.uint64)
    counts = np.asarray(page.databytecounts, dtype=np.uint64)
    level = TiledLevel(
        page=page,
        height=int(page.imagelength),
        width=int(page.imagewidth),
        tile_h=int(page.tilelength),
        tile_w=int(page.tilewidth),
        samples=int(page.samplesperpixel),
        offsets=offsets,
        counts=counts,
    )
    gy, gx = level.grid
    if not offsets.size == gy * gx == counts.size:
        # e.g. dimensions patched to 4 billion pixels: converting would never end
        raise CorruptSlideError(
            f"slide {path}: a pyramid page's tile table ({offsets.size} tiles) does not match "
            f"its dimensions ({gy} x {gx} tiles); the file is damaged, restore it from the "
            "scanner archive",
            reason="corrupt: tile table does not match the level size",
        )
    return level


class TiffTiles:
    """Context manager: `level(i)`, `raw(level, indices)`, `region(level, y, x, h, w)`."""

    def __init__(self, path: SourceRef) -> None:
        self.path = Path(path) if isinstance(path, str) else path
        self._stack: ExitStack | None = None
        self._refs: list[PageRef] = []
        self._levels: dict[tuple[int, int], TiledLevel | None] = {}
        self._read_at: Callable[[int, int], bytes] | None = None
        self._fd = -1  # a local file: positional reads straight into buffers

    def __enter__(self) -> TiffTiles:
        stack = ExitStack()
        try:
            tif = stack.enter_context(open_tiff(self.path))
            refs = layout_for(tif, classify(tif, self.path), self.path).levels
            # a level stored as one page per channel (QPTIFF, planar OME-TIFF) is not one tile grid
            self._refs = refs
            self._read_at = positional_reader(self.path, tif.filehandle)  # pread or ranged GET
            self._fd = tif.filehandle.fileno() if isinstance(self.path, Path) else -1
        except BaseException:
            stack.close()
            raise
        self._stack = stack
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None

    def level(self, facts: LevelFacts) -> TiledLevel | None:
        """The tiled page of `facts`, checked against the inventory; None if not tiled."""
        ref = find_level(self._refs, facts, self.path)
        key = (ref.number, int(ref.page.imagewidth))
        if key not in self._levels:
            self._levels[key] = None if ref.channels else _tiled_level(ref.page, self.path)
        return self._levels[key]

    def raw(self, level: TiledLevel, indices: Sequence[int]) -> list[bytes | None]:
        """Compressed bytes of the tiles `indices` (None for zero-length tiles)."""
        out: list[bytes | None] = [None] * len(indices)
        order = sorted(
            (i for i in range(len(indices)) if level.counts[indices[i]] > 0),
            key=lambda i: int(level.offsets[indices[i]]),
        )
        for run in _runs(order, lambda i: int(level.offsets[indices[i]]),
                         lambda i: int(level.counts[indices[i]])):  # fmt: skip
            start = int(level.offsets[indices[run[0]]])
            end = max(int(level.offsets[indices[i]] + level.counts[indices[i]]) for i in run)
            view = memoryview(self._pread(start, end - start))
            for i in run:
                off = int(level.offsets[indices[i]]) - start
                out[i] = bytes(view[off : off + int(level.counts[indices[i]])])
        return out

    def block(
        self, level: TiledLevel, rows: range, c0: int, c1: int, scratch: bytearray | None = None
    ) -> tuple[memoryview, np.ndarray, np.ndarray] | None:
        """Tiles of tile rows `rows`, columns c0..c1-1 with one sequential read per row into
        one buffer: (buffer, start of each tile in it, byte count of each; 0 = zero-length
        tile), row-major. None when a row's tiles are not stored compactly (more than a quarter
        of its byte range is not theirs): read those with `raw`. The buffer is `scratch` when
        it is large enough (reused between calls: no new pages to fault in)."""
        _, gx = level.grid
        ranges: list[tuple[int, int]] = []
        starts, counts = [], []
        size = 0
        for r in rows:
            offsets = level.offsets[r * gx + c0 : r * gx + c1].astype(np.int64)
            count = level.counts[r * gx + c0 : r * gx + c1].astype(np.int64)
            present = count > 0
            lo = int(offsets[present].min()) if present.any() else 0
            hi = int((offsets + count)[present].max()) if present.any() else 0
            if hi - lo > int(count.sum()) * 5 // 4 + GAP:
                return None
            ranges.append((lo, hi))
            starts.append(np.where(present, offsets - lo + size, 0))
            counts.append(count)
            size += hi - lo
        room = scratch if scratch is not None and len(scratch) >= size else bytearray(size)
        buf = memoryview(room)[:size]
        at = 0
        for lo, hi in ranges:
            if hi > lo and self._fd >= 0:
                if os.preadv(self._fd, [buf[at : at + hi - lo]], lo) != hi - lo:
                    raise self._truncated()
            elif hi > lo:  # S3: one ranged GET per tile row
                buf[at : at + hi - lo] = self._pread(lo, hi - lo)
            at += hi - lo
        return buf, np.concatenate(starts), np.concatenate(counts)

    def _pread(self, start: int, size: int) -> bytes:
        assert self._read_at is not None, "TiffTiles read outside its with block"
        data = self._read_at(start, size)
        if len(data) != size:
            raise self._truncated()
        return data

    def _truncated(self) -> CorruptSlideError:
        return CorruptSlideError(
            f"slide {self.path}: tile data ends early (file truncated); copy the file "
            "again from the scanner archive",
            reason="corrupt: truncated",
        )

    def region(
        self,
        level: TiledLevel,
        y: int,
        x: int,
        h: int,
        w: int,
        pool: Executor | None = None,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """Decoded pixels [y:y+h, x:x+w] as (h, w, samples), decoded with tifffile's decoder,
        into `out` (a reused (h, w, samples) buffer) when given."""
        ty0, tx0 = y // level.tile_h, x // level.tile_w
        ty1, tx1 = -(-(y + h) // level.tile_h), -(-(x + w) // level.tile_w)
        _, gx = level.grid
        cells = [(ty, tx) for ty in range(ty0, ty1) for tx in range(tx0, tx1)]
        indices = [ty * gx + tx for ty, tx in cells]
        datas = self.raw(level, indices)
        if out is None:
            out = np.empty((h, w, level.samples), dtype=level.page.dtype)
        if any(d is None for d in datas):
            out[...] = 0  # zero-length tiles read as the fill value
        dest = out
        decode = level.page.decode
        tables = level.page.jpegtables
        header = level.page.jpegheader

        def one(k: int) -> None:
            data = datas[k]
            if data is None:
                return
            try:
                tile, _, _ = decode(data, indices[k], jpegtables=tables, jpegheader=header)
            except Exception as exc:
                raise CorruptSlideError(
                    f"slide {self.path}: a tile cannot be decoded ({type(exc).__name__}); the "
                    "file is damaged, restore it from the archive",
                    reason="corrupt: undecodable tile",
                ) from None
            tile = np.asarray(tile).reshape(level.tile_h, level.tile_w, level.samples)
            ty, tx = cells[k]
            sy, sx = ty * level.tile_h, tx * level.tile_w
            oy0, ox0 = max(sy, y), max(sx, x)
            oy1, ox1 = min(sy + level.tile_h, y + h), min(sx + level.tile_w, x + w)
            dest[oy0 - y : oy1 - y, ox0 - x : ox1 - x] = tile[
                oy0 - sy : oy1 - sy, ox0 - sx : ox1 - sx
            ]

        if pool is None:
            for k in range(len(cells)):
                one(k)
        else:
            list(pool.map(one, range(len(cells))))
        return out


def _runs(
    order: list[int], offset: Callable[[int], int], count: Callable[[int], int]
) -> Iterator[list[int]]:
    """Group items (sorted by offset) into runs whose byte ranges are at most GAP apart."""
    run: list[int] = []
    end = -1
    for i in order:
        if run and offset(i) - end > GAP:
            yield run
            run = []
        run.append(i)
        end = max(end, offset(i) + count(i))
    if run:
        yield run
