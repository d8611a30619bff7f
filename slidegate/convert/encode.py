"""Re-encoded levels, written shard by shard by slidegate (no per-chunk zarr write overhead).

Every re-encoded array stores its chunks in (y, x, samples) byte order behind a Zarr v3
`transpose` codec (order [1, 2, 0]), so a decoded (h, w, samples) region is cut into chunks
without a planar copy. Two chunk formats:
- lossless: [transpose, bytes, blosc zstd]: all Zarr v3 core / numcodecs codecs, so the output
  opens with plain zarr + numcodecs (no imagecodecs);
- jpeg: [transpose, jpeg (quality)]: the registered Zarr v3 `jpeg` codec (zarr-extensions).
Edge chunks are padded with the fill value (0) to the full chunk size, as zarr itself does.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np
import zarr
from numcodecs import Blosc
from zarr.codecs import BloscCodec, BytesCodec, TransposeCodec

from slidegate.convert.codecs import Jpeg
from slidegate.convert.shards import check_layout, write_shard

YXC = TransposeCodec(order=(1, 2, 0))


@dataclass(frozen=True)
class ChunkFormat:
    """How chunks of a re-encoded array are encoded: zarr metadata + the matching encoder."""

    codecs: dict[str, Any]  # create_array keyword arguments (filters, serializer, compressors)
    encode: Callable[[np.ndarray], bytes]  # contiguous (chunk, chunk, samples) -> payload


def lossless(cname: str = "zstd", clevel: int = 5) -> ChunkFormat:
    blosc = Blosc(cname=cname, clevel=clevel, shuffle=Blosc.SHUFFLE)
    return ChunkFormat(
        codecs={
            "filters": [YXC],
            "serializer": BytesCodec(),
            "compressors": BloscCodec(
                cname=cname,  # type: ignore[arg-type]
                clevel=clevel,
                shuffle="shuffle",
                typesize=1,
            ),
        },
        encode=lambda a: bytes(blosc.encode(a)),
    )


def jpeg(quality: int) -> ChunkFormat:
    return ChunkFormat(
        codecs={
            "filters": [YXC],
            "serializer": Jpeg(configuration={"quality": quality}),
            "compressors": None,
        },
        encode=lambda a: bytes(imagecodecs.jpeg8_encode(a, level=quality)),
    )


def create_array(
    group: zarr.Group,
    name: str,
    shape: tuple[int, int, int],
    dtype: np.dtype,
    chunk: int,
    shard: int,
    fmt: ChunkFormat,
) -> zarr.Array:
    """A (samples, y, x) array whose shards `write_region` can fill."""
    s = shape[0]
    arr = group.create_array(
        name=name,
        shape=shape,
        dtype=dtype,
        chunks=(s, chunk, chunk),
        shards=(s, shard, shard),
        fill_value=0,
        dimension_names=["c", "y", "x"],
        **fmt.codecs,
    )
    check_layout(arr)
    return arr


def _chunk(region: np.ndarray, y: int, x: int, chunk: int) -> np.ndarray:
    """Chunk at (y, x) of a region, padded with 0 to chunk x chunk, C-contiguous."""
    part = region[y : y + chunk, x : x + chunk]
    if part.shape[:2] == (chunk, chunk):
        return np.ascontiguousarray(part)
    full = np.zeros((chunk, chunk, region.shape[2]), dtype=region.dtype)
    full[: part.shape[0], : part.shape[1]] = part
    return full


def write_region(
    array_dir: Path,
    sy: int,
    sx: int,
    region: np.ndarray,
    chunk: int,
    shard: int,
    fmt: ChunkFormat,
    pool: Executor | None = None,
) -> int:
    """Encode the (h, w, samples) pixels of shard (sy, sx) (clipped to the array: h, w <=
    shard) and write the shard; chunks beyond the array edge are left out (missing)."""
    k = shard // chunk
    h, w = region.shape[:2]
    cells = [(cy * chunk, cx * chunk) for cy in range(k) for cx in range(k)]

    def one(cell: tuple[int, int]) -> bytes | None:
        y, x = cell
        if y >= h or x >= w:
            return None
        return fmt.encode(_chunk(region, y, x, chunk))

    payloads = list(pool.map(one, cells)) if pool is not None else [one(c) for c in cells]
    return write_shard(array_dir, (0, sy, sx), payloads)
