"""Tile pass-through: a source level's compressed tiles become the Zarr chunks, cleaned.

Chunk shape = tile shape (samples, tile_h, tile_w); shards hold a whole number of tiles
(the largest multiple of the tile not above the requested shard edge). The array is (c, y, x)
as NGFF 0.5 requires, while a JPEG tile decodes to (y, x, c): a Zarr v3 `transpose` codec
(order [1, 2, 0]) before the bytes codec maps one onto the other. Every tile is walked whole
and cleaned first (slidegate.payload, a band of tiles at a time, vectorised: COM, APPn, bytes
after EOI, JPEG 2000 COM removed losslessly). A JPEG chunk is then made self-contained for the
registered `jpeg` codec (codecs.py): `chunk_prefix` (SOI, an Adobe APP14 marker with transform
0 when the tiles are RGB-coded, then the coding segments of the shared JPEGTables, cleaned)
replaces the tile's SOI. The tile's own segments and entropy-coded data follow byte for byte,
so a stock decoder reads the tables first, as tifffile does, and decodes the same pixels. A
JPEG 2000 chunk is the cleaned tile. A tile that cannot be walked raises `Unparsable` (the
level is re-encoded). Edge tiles are full-size in the source and edge chunks are full-size in
Zarr, so they match too. Zero-length source tiles become missing chunks (fill 0).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import Executor
from pathlib import Path

import numpy as np
import zarr

from slidegate.convert.codecs import (
    JPEG,
    JPEG2K,
    PASSTHROUGH_COMPRESSIONS,
    jpeg2k_available,
    rgb_coded,
    standard_decode,
)
from slidegate.convert.codecs import tile_codec as _tile_codec
from slidegate.convert.encode import YXC  # chunk (c, y, x) <-> stored tile (y, x, c)
from slidegate.convert.shards import (
    check_layout,
    put_shard,
    shard_bytes,
    shard_from_buffer,
    shard_path,
    spliced_from_buffer,
    write_shard,
)
from slidegate.convert.tiles import TiffTiles, TiledLevel
from slidegate.payload import BandCleaner, Unparsable, clean_jpeg_tables, clean_payloads
from slidegate.payload.jpeg import walk

SOI = b"\xff\xd8"
#: Adobe APP14, version 100, flags 0, transform 0: the components are RGB (no YCbCr transform)
ADOBE_RGB = b"\xff\xee\x00\x0eAdobe\x00\x64\x00\x00\x00\x00\x00"


def eligible(level: TiledLevel | None) -> bool:
    """True if this level's tiles can be copied as chunks and decode exactly as in tifffile."""
    if level is None or level.page.dtype != np.uint8 or level.samples not in (1, 3):
        return False
    kind = PASSTHROUGH_COMPRESSIONS.get(int(level.page.compression))
    if kind is None or int(level.page.bitspersample) != 8:
        return False
    if level.page.jpegheader is not None:  # NDPI: tiles are fragments of one stream
        return False
    if kind == JPEG and not standard_decode(level.page):
        return False
    if level.page.jpegtables is not None:
        try:
            clean_jpeg_tables(level.page.jpegtables)  # they are spliced into every chunk
        except Unparsable:
            return False
    return kind != JPEG2K or jpeg2k_available()


def chunk_prefix(level: TiledLevel) -> bytes:
    """What replaces each tile's SOI in its chunk: SOI, the Adobe marker of RGB-coded tiles,
    the coding segments of the cleaned JPEGTables (their JFIF / Adobe headers left out, so only
    the tile's own markers tell the decoder its colour space, as when tifffile decodes it).
    Just SOI (the tile unchanged) for JPEG 2000 and for JPEG without tables."""
    page = level.page
    if int(page.compression) != 7:
        return SOI
    parts = [SOI, ADOBE_RGB] if rgb_coded(page) else [SOI]
    if page.jpegtables is not None:
        tables = walk(clean_jpeg_tables(page.jpegtables), tables=True).parts[1:-1]
        parts += [p for p in tables if p[1] not in (0xE0, 0xEE)]
    return b"".join(parts)


def check_colour_markers(level: TiledLevel, cleaner: BandCleaner) -> None:
    """For RGB-coded tiles (the chunk prefix carries the Adobe RGB marker), raise Unparsable
    when a tile header the cleaner has seen holds a JFIF or Adobe segment of its own: a stock
    decoder would follow it (JFIF means YCbCr) where tifffile forces RGB. The audit's byte
    proof checks every chunk for the same."""
    if not rgb_coded(level.page):
        return
    for head, clean_head in cleaner.known:
        data, pos = clean_head or head, 2
        while pos + 4 <= len(data):
            marker = data[pos + 1]
            if marker in (0xE0, 0xEE):
                raise Unparsable("jpeg.colour-marker", pos)
            pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")


def splice(prefix: bytes, payloads: Sequence[bytes | None]) -> list[bytes | None]:
    """Each (cleaned) tile with its SOI replaced by `prefix`."""
    if prefix == SOI:
        return list(payloads)
    return [None if p is None else prefix + bytes(p[2:]) for p in payloads]


def cleaner_for(level: TiledLevel) -> BandCleaner:
    return BandCleaner("jpeg" if int(level.page.compression) == 7 else "j2k")


def serializer(level: TiledLevel) -> object:
    """The chunk codec of `level`: `jpeg` (with `encoded_color_space: "rgb"` for RGB-coded
    tiles) or JPEG 2000; nothing of the source's tables or headers reaches zarr.json."""
    return _tile_codec(level.page)


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
        serializer=serializer(level),  # type: ignore[arg-type]
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
    tiles: TiffTiles,
    level: TiledLevel,
    arr: zarr.Array,
    array_dir: Path,
    sy: int,
    sx: int,
    cleaner: BandCleaner | None = None,
) -> int:
    """Copy the cleaned source tiles of shard (sy, sx) into its shard file; return bytes
    written."""
    ky, kx = tiles_per_shard(arr)
    wanted = shard_tiles(level, ky, kx, sy, sx)
    present = [i for i in wanted if i is not None]
    raw = iter(tiles.raw(level, present))
    payloads = [None if i is None else next(raw) for i in wanted]
    cleaner = cleaner or cleaner_for(level)
    payloads = clean_payloads(cleaner, payloads)
    check_colour_markers(level, cleaner)
    return write_shard(array_dir, (0, sy, sx), splice(chunk_prefix(level), payloads))


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
    cleaner = cleaner_for(level)  # shared: headers learnt once per level
    bands = range(-(-level.grid[0] // ky))
    if pool is None:
        for sy in bands:
            copy_band(tiles, level, arr, array_dir, sy, cleaner)
    else:
        list(pool.map(lambda sy: copy_band(tiles, level, arr, array_dir, sy, cleaner), bands))


#: tiles read at once (a few MB): memory stays flat however wide the slide
READ_TILES = 1024


def copy_band(
    tiles: TiffTiles,
    level: TiledLevel,
    arr: zarr.Array,
    array_dir: Path,
    sy: int,
    cleaner: BandCleaner,
) -> int:
    """Copy the shards of shard row `sy`, a few shards at a time, each tile cleaned; return
    bytes written."""
    ky, kx = tiles_per_shard(arr)
    gy, gx = level.grid
    rows = range(sy * ky, min(gy, (sy + 1) * ky))
    nx = -(-gx // kx)
    group = max(1, READ_TILES // (ky * kx))  # shards per read
    folder = shard_path(array_dir, (0, sy))
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    scratch = bytearray()
    prefix = chunk_prefix(level)
    for g0 in range(0, nx, group):
        c0, c1 = g0 * kx, min(gx, (g0 + group) * kx)
        got = tiles.block(level, rows, c0, c1, scratch)
        if got is None:  # tiles scattered in the file: read them shard by shard
            for sx in range(g0, min(nx, g0 + group)):
                written += copy_shard(tiles, level, arr, array_dir, sy, sx, cleaner)
            continue
        buf, starts, counts = got
        scratch = buf.obj if isinstance(buf.obj, bytearray) else scratch
        changed = cleaner.clean(buf, starts, counts)  # flat index -> cleaned tile
        check_colour_markers(level, cleaner)
        width = c1 - c0
        starts, counts = starts.reshape(len(rows), width), counts.reshape(len(rows), width)
        for sx in range(g0, min(nx, g0 + group)):
            x0 = sx * kx - c0
            cols = min(c1 - c0, x0 + kx) - x0
            s_grid = np.zeros((ky, kx), np.int64)
            c_grid = np.zeros((ky, kx), np.int64)  # outside the level: missing chunks
            s_grid[: len(rows), :cols] = starts[:, x0 : x0 + cols]
            c_grid[: len(rows), :cols] = counts[:, x0 : x0 + cols]
            data: bytes | list[bytes | memoryview] | None
            if changed and any(r * width + x in changed for r in range(len(rows))
                               for x in range(x0, x0 + cols)):  # fmt: skip
                data = _cleaned_shard(buf, s_grid, c_grid, changed, width, x0, prefix)
            elif prefix == SOI:  # the tiles as they are: views of runs of the buffer
                data = shard_from_buffer(buf, s_grid.ravel(), c_grid.ravel())
            else:
                data = spliced_from_buffer(buf, s_grid.ravel(), c_grid.ravel(), prefix)
            if data is not None:
                written += put_shard(folder / str(sx), data)
    return written


def _cleaned_shard(buf: memoryview, s_grid: np.ndarray, c_grid: np.ndarray,
                   changed: dict[int, bytes], width: int, x0: int,
                   prefix: bytes) -> bytes | None:  # fmt: skip
    """A shard whose tiles (some cleaned) are assembled in memory."""
    ky, kx = s_grid.shape
    payloads: list[bytes | None] = []
    for dy in range(ky):
        for dx in range(kx):
            flat = dy * width + x0 + dx
            n = int(c_grid[dy, dx])
            if not n:
                payloads.append(None)
            elif flat in changed:
                payloads.append(changed[flat])
            else:
                s = int(s_grid[dy, dx])
                payloads.append(bytes(buf[s : s + n]))
    return shard_bytes(splice(prefix, payloads))
