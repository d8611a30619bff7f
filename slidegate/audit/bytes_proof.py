"""Byte proof of pass-through levels: every output chunk is the source tile it came from.

A level written by tile pass-through stores each source tile's compressed bytes as one Zarr
chunk (a JPEG tile with the page's JPEGTables spliced in, so the chunk is a self-contained
stream), so decoding both files to compare pixels re-proves at great cost what the bytes prove
at the speed of the disk. Here, for such a level (its serializer is a pass-through codec: the
registered `jpeg` codec without a `quality`, the earlier imagecodecs JPEG codec without a
`level`, or JPEG 2000):

- the source tiles are read with tifffile's own offsets and byte counts (`read_segments`, one
  band of shard rows at a time), never with slidegate's converter; the expected chunk is the
  tile with its SOI replaced by a prefix derived here from the source page (SOI, the Adobe
  marker of RGB-coded tiles, the coding segments of the cleaned JPEGTables); each output chunk
  must equal it byte for byte or, where the copy cleaned the tile, have the same coding digest
  (`slidegate.payload.coding_digest`: sha256 of the stream with its non-coding segments
  removed): the entropy-coded data is the source's, byte for byte;
- every shard file of the output is parsed here (Zarr v3 sharding, index at the end, crc32c),
  and each inner chunk's digest must equal its source tile's; a zero-length source tile must be
  a missing chunk, and every chunk outside the level too; no other file may sit among the
  shards;
- every chunk passes the payload check (`check_jpeg` / `check_j2k`: the whole stream walked,
  coding segments only, nothing after EOI / EOC);
- the codec configuration is the one the source page calls for (`encoded_color_space: "rgb"`
  exactly when tifffile decodes its tiles as RGB-coded; for the earlier codec: tables, header,
  colour spaces as tifffile derives them), the tables cleaned (they must pass the check too);
  a chunk of an RGB-coded level holds no JFIF marker and no Adobe marker but the prefix's
  (either would change a stock decoder's colour space), so the same coding bytes decode to the
  same pixels as tifffile's.

Equal coding bytes under an equal decoder configuration decode to equal pixels: the proof is
as strong as the pixel comparison for these levels. `None` from `prove_level` means the level is not
pass-through (its pixels are compared instead); a list is the problems found (empty = proven).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import google_crc32c
import numpy as np
import tifffile
import zarr
from tifffile.tifffile import jpeg_decode_colorspace
from zarr.codecs import ShardingCodec

from slidegate.payload import (
    PayloadError,
    check_j2k,
    check_jpeg,
    check_jpeg_tables,
    clean_jpeg_tables,
    coding_digest,
)
from slidegate.payload.jpeg import walk as jpeg_walk

JPEG = "jpeg"
LEGACY_JPEG = "numcodecs.imagecodecs_jpeg"
JPEG2K = "numcodecs.imagecodecs_jpeg2k"
_EMPTY = 2**64 - 1
SOI = b"\xff\xd8"
#: Adobe APP14 (version 100, flags 0, transform 0: RGB components)
ADOBE_RGB = b"\xff\xee\x00\x0e" + b"Adobe" + bytes([0, 100, 0, 0, 0, 0, 0])


def _serializer(arr: zarr.Array) -> tuple[ShardingCodec, Any] | None:
    codecs: Any = getattr(arr.metadata, "codecs", None)
    if not codecs or len(codecs) != 1 or not isinstance(codecs[0], ShardingCodec):
        return None
    sharding = codecs[0]
    inner = [c for c in sharding.codecs
             if getattr(c, "name", None) in (JPEG, LEGACY_JPEG, JPEG2K)]  # fmt: skip
    if len(inner) != 1:
        return None
    return sharding, inner[0]


def is_passthrough(arr: zarr.Array) -> bool:
    """True when `arr` is written with a pass-through codec (`jpeg` without `quality`, the
    earlier JPEG codec without `level`, or JPEG 2000): its chunks claim to be source tiles."""
    found = _serializer(arr)
    if found is None:
        return False
    codec = found[1]
    config = codec.configuration or {}
    if codec.name == JPEG:
        return "quality" not in config
    return codec.name == JPEG2K or "level" not in config


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def _rgb_coded(page: tifffile.TiffPage) -> bool:
    cs_jpeg, _ = jpeg_decode_colorspace(
        page.photometric, page.planarconfig, page.extrasamples, page.is_jfif
    )
    return cs_jpeg == 2 and int(page.samplesperpixel) == 3


def _prefix(page: tifffile.TiffPage, name: str) -> bytes | None:
    """What replaces a source tile's SOI in its chunk under codec `name`; None when the tables
    cannot be walked (never passed through)."""
    if name != JPEG or int(page.compression) != 7:
        return SOI
    parts = [SOI, ADOBE_RGB] if _rgb_coded(page) else [SOI]
    if page.jpegtables is not None:
        try:
            tables = clean_jpeg_tables(page.jpegtables)
        except PayloadError:
            return None
        parts += [p for p in jpeg_walk(tables, tables=True).parts[1:-1]
                  if p[1] not in (0xE0, 0xEE)]  # fmt: skip
    return b"".join(parts)


def _expected_config(page: tifffile.TiffPage, name: str) -> dict[str, Any] | None:
    compression = int(page.compression)
    if compression == 7 and name == JPEG:
        return {"encoded_color_space": "rgb"} if _rgb_coded(page) else {}
    if compression == 7 and name == LEGACY_JPEG:
        cs_jpeg, cs_data = jpeg_decode_colorspace(
            page.photometric, page.planarconfig, page.extrasamples, page.is_jfif
        )
        tables = page.jpegtables
        try:
            tables = None if tables is None else clean_jpeg_tables(tables)
        except PayloadError:
            return None  # tables that cannot be walked: never passed through
        config = {
            "tables": _b64(tables),
            "header": _b64(page.jpegheader),
            "bitspersample": int(page.bitspersample),
            "colorspace_jpeg": cs_jpeg,
            "colorspace_data": cs_data,
        }
        return {k: v for k, v in config.items() if v is not None}
    if compression in (33003, 33005, 34712):
        return {}
    return None


def _shard_index(data: bytes, n: int) -> np.ndarray | None:
    size = n * 16
    if len(data) < size + 4:
        return None
    raw, crc = data[-size - 4 : -4], data[-4:]
    if int.from_bytes(crc, "little") != google_crc32c.value(raw):
        return None
    return np.frombuffer(raw, "<u8").reshape(n, 2)


def source_band(
    tf: tifffile.TiffFile, page: tifffile.TiffPage, rows: range, gx: int
) -> dict[int, bytes]:
    """The tiles of tile rows `rows` of `page` (index -> bytes; zero-length tiles left out),
    read with tifffile's own offsets and byte counts in merged sequential reads."""
    idx = [ty * gx + tx for ty in rows for tx in range(gx)]
    offsets = [page.dataoffsets[k] for k in idx]
    counts = [page.databytecounts[k] for k in idx]
    segments: Any = tf.filehandle.read_segments(offsets, counts, idx, sort=True)
    return {index: data for data, index in segments if data}


def payload_problems(i: int, arr: zarr.Array, out: Path) -> list[str]:
    """Every chunk of pass-through level `i` walked by the payload check, whatever the source
    (a DICOM level's pixels are compared too, but a pixel comparison is blind to segments a
    decoder skips). Empty for a level that is not pass-through."""
    found = _serializer(arr)
    if found is None or not is_passthrough(arr):
        return []
    sharding, codec = found
    check = check_j2k if codec.name == JPEG2K else check_jpeg
    shards, chunks = arr.shards, sharding.chunk_shape
    assert shards is not None
    n = int(np.prod([s // c for s, c in zip(shards, chunks, strict=True)]))
    root = Path(out) / str(i) / "c"
    for path in sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []:
        data = path.read_bytes()
        index = _shard_index(data, n)
        if index is None:
            return [f"level {i}: a shard index is damaged"]
        for off, size in index.tolist():
            if off == _EMPTY and size == _EMPTY:
                continue
            try:
                check(data[off : off + size])
            except PayloadError as exc:
                return [f"level {i}: a chunk fails the payload check ({exc.rule})"]
    return []


def _colour_markers(chunk: bytes) -> list[bytes]:
    """The JFIF / Adobe segments of a JPEG stream (they choose a decoder's colour space)."""
    return [p for p in jpeg_walk(chunk).parts if p[:2] in (b"\xff\xe0", b"\xff\xee")]


def prove_level(i: int, arr: zarr.Array, out: Path, tf: tifffile.TiffFile,
                page: tifffile.TiffPage) -> list[str] | None:  # fmt: skip
    """Problems of pass-through output level `i` (`arr`, stored under `out`/i) against source
    `page`; None when the level is not pass-through or the page is not a plain tiled one (its
    pixels are then compared)."""
    found = _serializer(arr)
    if found is None or not is_passthrough(arr):
        return None
    if not page.is_tiled or page.tiledepth != 1 or (page.samplesperpixel > 1
                                                    and page.planarconfig != 1):  # fmt: skip
        return None
    sharding, codec = found
    want = _expected_config(page, codec.name)
    prefix = _prefix(page, codec.name)
    if want is None or prefix is None or dict(codec.configuration or {}) != want:
        return [f"level {i}: codec configuration is not the source page's (tables, colour)"]
    rgb = codec.name == JPEG and want.get("encoded_color_space") == "rgb"
    th, tw = int(page.tilelength), int(page.tilewidth)
    _, ch, cw = (int(v) for v in sharding.chunk_shape)
    if (ch, cw) != (th, tw):
        return [f"level {i}: chunk shape is not the source tile shape"]
    check = check_j2k if codec.name == JPEG2K else check_jpeg
    if want.get("tables"):
        try:
            check_jpeg_tables(base64.b64decode(want["tables"]))
        except PayloadError:
            return [f"level {i}: the JPEG tables fail the payload check"]
    gy, gx = -(-int(page.imagelength) // th), -(-int(page.imagewidth) // tw)
    if len(page.dataoffsets) != gy * gx:
        return [f"level {i}: source tile count does not match its grid"]
    shards = arr.shards
    assert shards is not None
    ky, kx = shards[1] // ch, shards[2] // cw
    ny, nx = -(-gy // ky), -(-gx // kx)
    root = Path(out) / str(i) / "c"
    expected = {root / "0" / str(sy) / str(sx) for sy in range(ny) for sx in range(nx)}
    stray = (
        [p for p in root.rglob("*") if p.is_file() and p not in expected] if root.is_dir() else []
    )
    problems = [f"level {i}: {len(stray)} unexpected file(s) among the shards"] if stray else []
    bad = 0
    for sy in range(ny):
        tiles = source_band(tf, page, range(sy * ky, min(gy, (sy + 1) * ky)), gx)
        for sx in range(nx):
            path = root / "0" / str(sy) / str(sx)
            data = path.read_bytes() if path.is_file() else None
            index = None if data is None else _shard_index(data, ky * kx)
            if data is not None and index is None:
                return [*problems, f"level {i}: shard index of shard ({sy}, {sx}) is damaged"]
            view = memoryview(data or b"")
            for dy in range(ky):
                for dx in range(kx):
                    ty, tx = sy * ky + dy, sx * kx + dx
                    tile = tiles.get(ty * gx + tx) if ty < gy and tx < gx else None
                    off, n = (
                        (_EMPTY, _EMPTY) if index is None else (int(v) for v in index[dy * kx + dx])
                    )
                    if off == _EMPTY and n == _EMPTY:
                        bad += tile is not None
                        continue
                    chunk = view[off : off + n]
                    if tile is None or len(chunk) != n or (prefix != SOI and tile[:2] != SOI):
                        bad += 1
                        continue
                    expect = tile if prefix == SOI else prefix + tile[2:]
                    if chunk != expect and coding_digest(bytes(chunk)) != coding_digest(expect):
                        bad += 1  # other bytes, and (payload cleaned) other coding content
                        continue
                    try:
                        check(bytes(chunk))
                    except PayloadError as exc:
                        return [*problems, f"level {i}: a chunk fails the payload check "
                                f"({exc.rule})"]  # fmt: skip
                    if rgb and _colour_markers(bytes(chunk)) != [ADOBE_RGB]:
                        return [
                            *problems,
                            f"level {i}: a chunk's colour markers are not the "
                            "prefix's alone (a stock decoder would change its colours)",
                        ]
    if bad:
        problems.append(f"level {i}: {bad} chunk(s) are not the source tile they stand for")
    return problems
