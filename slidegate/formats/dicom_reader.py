"""Tile and region access to the pyramid of a DICOM WSI slide (file or folder), read-only.

`open_dicom(path)` opens every instance of the slide, classifies them (dicom_layout) and gives
per level a `TileGrid` plus the raw encoded bytes of each tile (`raw_tile`, for tile
pass-through) or its decoded pixels (`tile`). Frames are located with TILED_FULL order
(row-major, PS3.3 C.8.12.4.1.2) or, for TILED_SPARSE, the per-frame plane positions; tiles
that a sparse level does not store read as zeros. `DicomRegionReader` is the `RegionReader` the
converter uses: a region read decodes only the frames it touches, through a small LRU cache
bounded in bytes, so memory stays bounded whatever the slide size. Not picklable: open one
reader per task, by path.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import numpy as np
from pydicom.dataset import Dataset

from slidegate.errors import CorruptSlideError, UnsupportedSlideError
from slidegate.formats.dicom_frames import (
    FrameTable,
    compression_name,
    decode,
    dtype_of,
    frame_table,
    open_instance,
)
from slidegate.formats.dicom_layout import Instance, Layout, Level, instance_files, read_layout
from slidegate.models import LevelFacts

CACHE_BYTES = 64 << 20


@dataclass(frozen=True)
class TileGrid:
    """One pyramid level as a grid of encoded tiles (frames)."""

    level: int  # 0 = full resolution
    height: int
    width: int
    tile_height: int
    tile_width: int
    rows: int  # tiles down
    columns: int  # tiles across
    samples: int
    dtype: str
    transfer_syntax: str  # DICOM transfer syntax UID of the level's frames
    compression: str  # "JPEG", "JPEG2000", "NONE", ...
    photometric: str  # DICOM PhotometricInterpretation, e.g. "RGB", "YBR_FULL_422"


def _grid(index: int, level: Level) -> TileGrid:
    inst = level.first
    return TileGrid(
        level=index,
        height=level.height,
        width=level.width,
        tile_height=inst.rows,
        tile_width=inst.columns,
        rows=-(-level.height // inst.rows),
        columns=-(-level.width // inst.columns),
        samples=inst.samples,
        dtype=dtype_of(inst).name,
        transfer_syntax=inst.transfer_syntax,
        compression=compression_name(inst.transfer_syntax),
        photometric=inst.photometric,
    )


def _sparse_positions(ds: Dataset, inst: Instance, offset: int) -> dict[tuple[int, int], int]:
    """(tile row, tile column) -> frame index from the per-frame plane positions (1-based)."""
    out: dict[tuple[int, int], int] = {}
    for i, item in enumerate(ds.get("PerFrameFunctionalGroupsSequence") or []):
        plane = item.get("PlanePositionSlideSequence")
        try:
            row = int(plane[0].RowPositionInTotalImagePixelMatrix) - 1
            col = int(plane[0].ColumnPositionInTotalImagePixelMatrix) - 1
        except (TypeError, AttributeError, IndexError, ValueError):
            raise CorruptSlideError(
                f"DICOM instance {inst.path.name}: TILED_SPARSE frame {i} has no plane position",
                reason="corrupt: DICOM frame positions",
            ) from None
        if row % inst.rows or col % inst.columns:
            raise UnsupportedSlideError(
                f"DICOM instance {inst.path.name}: sparse frames not aligned to the tile grid "
                "are not supported; re-tile the slide",
                reason="unsupported: DICOM unaligned sparse tiles",
            )
        out[(row // inst.rows, col // inst.columns)] = offset + i
    return out


class _Part:
    """One open instance file of a level and its frame table (built on first use)."""

    def __init__(self, inst: Instance, fh: BinaryIO, ds: Dataset, pos: int) -> None:
        self.inst, self.fh, self.ds, self.pos = inst, fh, ds, pos
        self._table: FrameTable | None = None

    @property
    def table(self) -> FrameTable:
        if self._table is None:
            self._table = frame_table(self.fh, self.pos, self.inst, self.ds)
        return self._table


def _frames_of(part: _Part) -> Iterator[bytes]:
    fd = part.fh.fileno()
    for frame in range(len(part.table)):
        yield part.table.read(fd, frame)


class DicomSlide:
    """Context manager over one DICOM WSI slide: `grids`, `raw_tile`, `tile`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.layout: Layout | None = None
        self.grids: list[TileGrid] = []
        self._parts: list[list[_Part]] = []
        self._handles: list[BinaryIO] = []
        self._maps: dict[int, dict[tuple[int, int], int] | None] = {}

    def __enter__(self) -> DicomSlide:
        try:
            self._open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        for fh in self._handles:
            fh.close()
        self._handles.clear()
        self._parts.clear()

    def _open(self) -> None:
        opened: dict[Path, tuple[BinaryIO, Dataset, int]] = {}
        for file in instance_files(self.path):
            fh = open(file, "rb")  # noqa: SIM115 - kept open for the reader's lifetime
            self._handles.append(fh)
            try:
                ds, pos = open_instance(fh)
            except Exception as exc:
                raise CorruptSlideError(
                    f"DICOM instance {file} cannot be parsed ({type(exc).__name__}); restore "
                    "it from the archive",
                    reason="corrupt: unreadable DICOM header",
                ) from None
            opened[file] = (fh, ds, pos)
        self.layout = read_layout(self.path, [(f, v[1]) for f, v in opened.items()])
        for index, level in enumerate(self.layout.levels):
            self.grids.append(_grid(index, level))
            self._parts.append([_Part(inst, *opened[inst.path]) for inst in level.parts])

    def _frame_map(self, level: int) -> dict[tuple[int, int], int] | None:
        """None for TILED_FULL (row-major frames); the position map for TILED_SPARSE."""
        if level not in self._maps:
            parts = self._parts[level]
            mapping: dict[tuple[int, int], int] | None = None
            if any(p.inst.sparse for p in parts):
                mapping, offset = {}, 0
                for p in parts:
                    mapping.update(_sparse_positions(p.ds, p.inst, offset))
                    offset += p.inst.frames
            self._maps[level] = mapping
        return self._maps[level]

    def _locate(self, level: int, row: int, col: int) -> tuple[_Part, int] | None:
        grid = self.grids[level]
        if not (0 <= row < grid.rows and 0 <= col < grid.columns):
            raise ValueError(f"tile ({row}, {col}) is outside level {level}")
        mapping = self._frame_map(level)
        if mapping is None:
            frame: int | None = row * grid.columns + col
        else:
            frame = mapping.get((row, col))
        if frame is None:
            return None
        for part in self._parts[level]:
            if frame < part.inst.frames:
                return part, frame
            frame -= part.inst.frames
        raise CorruptSlideError(
            f"slide {self.path} level {level} has fewer frames than its tile grid needs",
            reason="corrupt: DICOM missing frames",
        )

    def raw_tile(self, level: int, row: int, col: int) -> bytes | None:
        """The encoded bytes of one tile as stored (an encapsulated frame, or the native frame
        bytes); None when a TILED_SPARSE level does not store that tile."""
        found = self._locate(level, row, col)
        if found is None:
            return None
        part, frame = found
        if frame >= len(part.table):
            raise CorruptSlideError(
                f"DICOM instance {part.inst.path.name} has fewer frames than NumberOfFrames",
                reason="corrupt: DICOM missing frames",
            )
        return part.table.read(part.fh.fileno(), frame)

    def stored_frames(self, level: int) -> list[tuple[Instance, Iterator[bytes]]]:
        """Per instance of `level` (concatenation parts in order): the encoded bytes of its
        frames in stored order, read lazily (for a byte-identical copy of the level)."""
        return [(p.inst, _frames_of(p)) for p in self._parts[level]]

    def tile(self, level: int, row: int, col: int) -> np.ndarray | None:
        """Decoded (tile_height, tile_width, samples) pixels of one tile, or None if absent."""
        found = self._locate(level, row, col)
        if found is None:
            return None
        part, _ = found
        data = self.raw_tile(level, row, col)
        assert data is not None
        try:
            return decode(data, part.inst)
        except (CorruptSlideError, UnsupportedSlideError):
            raise
        except Exception as exc:
            raise CorruptSlideError(
                f"slide {self.path} level {level}: a frame cannot be decoded "
                f"({type(exc).__name__}); the file is damaged, restore it from the archive",
                reason="corrupt: undecodable tile",
            ) from None


def open_dicom(path: Path) -> DicomSlide:
    """`with open_dicom(path) as slide:` then `slide.grids[i]`, `slide.raw_tile(i, r, c)`."""
    return DicomSlide(Path(path))


class DicomRegionReader:
    """RegionReader over a DICOM WSI slide: `read(level, y, x, h, w) -> (h, w, samples)`."""

    def __init__(self, path: Path, cache_bytes: int = CACHE_BYTES) -> None:
        self.slide = DicomSlide(Path(path))
        self._cache: OrderedDict[tuple[int, int, int], np.ndarray | None] = OrderedDict()
        self._cached = 0
        self._limit = cache_bytes

    def __enter__(self) -> DicomRegionReader:
        self.slide.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.slide.close()
        self._cache.clear()

    def _tile(self, level: int, row: int, col: int) -> np.ndarray | None:
        key = (level, row, col)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        tile = self.slide.tile(level, row, col)
        self._cache[key] = tile
        self._cached += tile.nbytes if tile is not None else 0
        while self._cached > self._limit and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            self._cached -= old.nbytes if old is not None else 0
        return tile

    def _grid(self, level: LevelFacts) -> TileGrid:
        grids = self.slide.grids
        if not 0 <= level.index < len(grids) or (
            grids[level.index].height,
            grids[level.index].width,
        ) != (level.height, level.width):
            raise CorruptSlideError(
                f"slide {self.slide.path} level {level.index} differs from the inventory; the "
                "source changed: rerun the inventory",
                reason="corrupt: source changed",
            )
        return grids[level.index]

    def read(self, level: LevelFacts, y: int, x: int, h: int, w: int) -> np.ndarray:
        """Exactly the region [y:y+h, x:x+w] of `level`, shape (h, w, samples)."""
        if h <= 0 or w <= 0 or y < 0 or x < 0 or y + h > level.height or x + w > level.width:
            raise ValueError(
                f"region y={y} x={x} h={h} w={w} is outside level {level.index} "
                f"({level.height}x{level.width})"
            )
        g = self._grid(level)
        out = np.zeros((h, w, g.samples), dtype=np.dtype(g.dtype))
        th, tw = g.tile_height, g.tile_width
        for row in range(y // th, (y + h - 1) // th + 1):
            for col in range(x // tw, (x + w - 1) // tw + 1):
                tile = self._tile(level.index, row, col)
                if tile is None:
                    continue
                y0, x0 = max(y, row * th), max(x, col * tw)
                y1, x1 = min(y + h, (row + 1) * th), min(x + w, (col + 1) * tw)
                out[y0 - y : y1 - y, x0 - x : x1 - x] = tile[
                    y0 - row * th : y1 - row * th, x0 - col * tw : x1 - col * tw
                ]
        return out
