"""Tile pass-through: a source level's compressed tiles become the Zarr chunks, unchanged.

Chunk shape = tile shape (samples, tile_h, tile_w); shards hold a whole number of tiles
(the largest multiple of the tile not above the requested shard edge). The array is (c, y, x)
as NGFF 0.5 requires, while a JPEG tile decodes to (y, x, c): a Zarr v3 `transpose` codec
(order [1, 2, 0]) before the JPEG bytes codec maps one onto the other, so every chunk payload is
the source tile byte for byte. Edge tiles are full-size in the source and edge chunks are
full-size in Zarr, so they match too. Zero-length source tiles become missing chunks (fill 0).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from pathlib import Path

import numpy as np
import zarr

from slidegate.convert.codecs import JPEG2K, PASSTHROUGH_COMPRESSIONS, jpeg2k_available
from slidegate.convert.codecs import tile_codec as _tile_codec
from slidegate.convert.encode import YXC  # chunk (c, y, x) <-> stored tile (y, x, c)
from slidegate.convert.markers import MetadataInTile, check_j2k, check_jpeg
from slidegate.convert.shards import (
    check_layout,
    put_shard,
    shard_from_buffer,
    shard_path,
    write_shard,
)
from slidegate.convert.tiles import TiffTiles, TiledLevel


def eligible(level: TiledLevel | None) -> bool:
    """True if this level's tiles can be copied as chunks and decode exactly as in tifffile."""
    if level is None or level.page.dtype != np.uint8 or level.samples not in (1, 3):
        return False
    kind = PASSTHROUGH_COMPRESSIONS.get(int(level.page.compression))
    if kind is None or int(level.page.bitspersample) != 8:
        return False
    if level.page.jpegtables is not None:
        try:
            check_jpeg(level.page.jpegtables)  # the tables go into the codec configuration
        except MetadataInTile:
            return False
    return kind != JPEG2K or jpeg2k_available()


def shard_edge(tile: int, target: int, extent: int) -> int:
    """Whole tiles per shard: as many as fit in `target`, but no more than the level needs
    (a 1-pixel frame must not make a shard of 4096 x 4096 chunks)."""
    return max(1, min(target // tile, -(-extent // tile))) * tile


def create_array(
    group: zarr.Group, name: str, level: TiledLevel, shard: int, fill_value: int = 0
) -> zarr.Array:
    s = level.samples
    arr = group.create_array(
        name=name,
        shape=(s, level.height, level.width),
        dtype=level.page.dtype,
        chunks=(s, level.tile_h, level.tile_w),
        shards=(
            s,
            shard_edge(level.tile_h, shard, level.height),
            shard_edge(level.tile_w, shard, level.width),
        ),
        filters=[YXC],
        serializer=_tile_codec(level.page),
        compressors=None,
        fill_value=fill_value,
        dimension_names=["c", "y", "x"],
    )
    check_layout(arr)
    return arr


def tiles_per_shard(arr: zarr.Array) -> tuple[int, int]:
    shards, chunks = arr.shards, arr.chunks
    assert shards is not None
    return shards[1] // chunks[1], shards[2] // chunks[2]


def shard_tiles(level: TiledLevel, ky: int, kx: int, sy: int, sx: int) -> list[int | None]:
    """Source tile index for each inner chunk of shard (sy, sx), C order; None outside."""
    gy, gx = level.grid
    out: list[int | None] = []
    for dy in range(ky):
        for dx in range(kx):
            ty, tx = sy * ky + dy, sx * kx + dx
            out.append(ty * gx + tx if ty < gy and tx < gx else None)
    return out


def copy_shard(
    tiles: TiffTiles, level: TiledLevel, arr: zarr.Array, array_dir: Path, sy: int, sx: int
) -> int:
    """Copy the source tiles of shard (sy, sx) into its shard file; return bytes written."""
    ky, kx = tiles_per_shard(arr)
    wanted = shard_tiles(level, ky, kx, sy, sx)
    present = [i for i in wanted if i is not None]
    raw = iter(tiles.raw(level, present))
    payloads = [None if i is None else next(raw) for i in wanted]
    check = check_jpeg if int(level.page.compression) == 7 else check_j2k
    for payload in payloads:
        if payload is not None:
            check(payload)  # no metadata segment leaves with the pixels
    return write_shard(array_dir, (0, sy, sx), payloads)


def shard_grid(arr: zarr.Array) -> Iterator[tuple[int, int]]:
    shards = arr.shards
    assert shards is not None
    ny = -(-arr.shape[1] // shards[1])
    nx = -(-arr.shape[2] // shards[2])
    for sy in range(ny):
        for sx in range(nx):
            yield sy, sx


def copy_level(
    tiles: TiffTiles, level: TiledLevel, arr: zarr.Array, array_dir: Path, pool: Executor | None
) -> None:
    """Copy every tile of `level` into `arr`'s shards, one band of shards (the tile rows of
    one shard row) at a time, a few shards per read (one sequential read per tile row), each
    shard written from views of that buffer with one gathered write; bands in parallel with
    `pool`."""
    ky, _ = tiles_per_shard(arr)
    headers = HeaderCheck(check_jpeg if int(level.page.compression) == 7 else check_j2k)
    bands = range(-(-level.grid[0] // ky))
    if pool is None:
        for sy in bands:
            copy_band(tiles, level, arr, array_dir, sy, headers)
    else:
        list(pool.map(lambda sy: copy_band(tiles, level, arr, array_dir, sy, headers), bands))


#: tiles read at once (a few MB): memory stays flat however wide the slide
READ_TILES = 1024


def copy_band(
    tiles: TiffTiles,
    level: TiledLevel,
    arr: zarr.Array,
    array_dir: Path,
    sy: int,
    headers: HeaderCheck,
) -> int:
    """Copy the shards of shard row `sy`, a few shards at a time; return bytes written."""
    ky, kx = tiles_per_shard(arr)
    gy, gx = level.grid
    rows = range(sy * ky, min(gy, (sy + 1) * ky))
    nx = -(-gx // kx)
    group = max(1, READ_TILES // (ky * kx))  # shards per read
    folder = shard_path(array_dir, (0, sy))
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    scratch = bytearray()
    for g0 in range(0, nx, group):
        c0, c1 = g0 * kx, min(gx, (g0 + group) * kx)
        got = tiles.block(level, rows, c0, c1, scratch)
        if got is None:  # tiles scattered in the file: read them shard by shard
            for sx in range(g0, min(nx, g0 + group)):
                written += copy_shard(tiles, level, arr, array_dir, sy, sx)
            continue
        buf, starts, counts = got
        scratch = buf.obj if isinstance(buf.obj, bytearray) else scratch
        headers.verify(buf, starts, counts)
        starts, counts = starts.reshape(len(rows), c1 - c0), counts.reshape(len(rows), c1 - c0)
        for sx in range(g0, min(nx, g0 + group)):
            x0 = sx * kx - c0
            cols = min(c1 - c0, x0 + kx) - x0
            s_grid = np.zeros((ky, kx), np.int64)
            c_grid = np.zeros((ky, kx), np.int64)  # outside the level: missing chunks
            s_grid[: len(rows), :cols] = starts[:, x0 : x0 + cols]
            c_grid[: len(rows), :cols] = counts[:, x0 : x0 + cols]
            data = shard_from_buffer(buf, s_grid.ravel(), c_grid.ravel())
            if data is not None:
                written += put_shard(folder / str(sx), data)
    return written


class HeaderCheck:
    """`check` (check_jpeg / check_j2k) of many tiles at the cost of a comparison: a tile
    whose stream starts with a header that already passed passes too (the check reads nothing
    beyond it); only tiles with a header not seen yet are parsed."""

    MAX_HEADERS = 8

    def __init__(self, check: Callable[[bytes], int | None]) -> None:
        self.check = check
        self.known: list[bytes] = []

    def verify(self, buf: memoryview, starts: np.ndarray, counts: np.ndarray) -> None:
        """Raise MetadataInTile if any tile buf[start : start + count] (count > 0) fails."""
        todo = np.flatnonzero(counts > 0)
        data = np.frombuffer(buf, np.uint8)
        while todo.size:
            todo = self._unknown(data, starts, counts, todo)
            if not todo.size:
                return
            first, todo = int(todo[0]), todo[1:]
            payload = bytes(buf[int(starts[first]) : int(starts[first] + counts[first])])
            decided = self.check(payload)  # raises on a metadata segment
            if decided is None or len(self.known) >= self.MAX_HEADERS:
                for i in todo.tolist():  # headers all different: parse every tile
                    self.check(bytes(buf[int(starts[i]) : int(starts[i] + counts[i])]))
                return
            self.known.append(payload[:decided])

    def _unknown(
        self, data: np.ndarray, starts: np.ndarray, counts: np.ndarray, todo: np.ndarray
    ) -> np.ndarray:
        """The tiles of `todo` that start with none of the known headers (vectorised)."""
        for header in self.known:
            n = len(header)
            long_enough = todo[counts[todo] >= n + 2]
            if not long_enough.size or data.size < n:
                continue
            heads = np.lib.stride_tricks.sliding_window_view(data, n)[starts[long_enough]]
            same = (heads == np.frombuffer(header, np.uint8)).all(axis=1)
            todo = np.setdiff1d(todo, long_enough[same], assume_unique=True)
        return todo
