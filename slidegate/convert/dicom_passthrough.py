"""Frame pass-through for DICOM WSI: each encoded frame (tile) becomes a chunk, cleaned.

Same layout as TIFF pass-through (passthrough.py): chunk = frame size, shards of whole frames,
(c, y, x) with a `transpose` codec before the bytes codec: the registered `jpeg` codec (a
DICOM baseline frame is a self-contained JPEG stream already) or JPEG 2000. Each frame is
walked whole and cleaned first (slidegate.payload: COM, APPn, bytes after EOI / EOC removed,
the pixels unchanged); a frame that cannot be walked raises `Unparsable` (re-encoded). The
codec configuration is empty: the slide reader decodes frames with imagecodecs' defaults
(`dicom_frames.decode`), as a stock JPEG decoder does. Frames a TILED_SPARSE level does not
store become missing chunks (fill 0), as the reader returns zeros for them.
"""

from __future__ import annotations

from concurrent.futures import Executor
from pathlib import Path

import zarr

from slidegate.convert.codecs import ImagecodecsJpeg2k, Jpeg, jpeg2k_available
from slidegate.convert.encode import YXC
from slidegate.convert.passthrough import shard_edge, shard_grid
from slidegate.convert.shards import check_layout, write_shard
from slidegate.formats.dicom_reader import DicomSlide, TileGrid
from slidegate.payload import BandCleaner, clean_payloads

_TS = "1.2.840.10008.1.2.4."
JPEG_BASELINE = (_TS + "50",)  # 8-bit baseline only: what jpeg8_decode reads exactly
JPEG2000 = (_TS + "90", _TS + "91")


def eligible(grid: TileGrid) -> bool:
    if grid.dtype != "uint8" or grid.samples not in (1, 3):
        return False
    return grid.transfer_syntax in JPEG_BASELINE or (
        grid.transfer_syntax in JPEG2000 and jpeg2k_available()
    )


def create_array(group: zarr.Group, name: str, grid: TileGrid, shard: int) -> zarr.Array:
    s = grid.samples
    jpeg = grid.transfer_syntax in JPEG_BASELINE
    serializer = Jpeg() if jpeg else ImagecodecsJpeg2k()
    arr = group.create_array(
        name=name,
        shape=(s, grid.height, grid.width),
        dtype="uint8",
        chunks=(s, grid.tile_height, grid.tile_width),
        shards=(
            s,
            shard_edge(grid.tile_height, shard, grid.height),
            shard_edge(grid.tile_width, shard, grid.width),
        ),
        filters=[YXC],
        serializer=serializer,
        compressors=None,
        fill_value=0,
        dimension_names=["c", "y", "x"],
    )
    check_layout(arr)
    return arr


def copy_level(
    slide: DicomSlide, grid: TileGrid, arr: zarr.Array, array_dir: Path, pool: Executor | None
) -> None:
    """Copy every frame of `grid`'s level into `arr`'s shards."""
    shards, chunks = arr.shards, arr.chunks
    assert shards is not None
    ky, kx = shards[1] // chunks[1], shards[2] // chunks[2]
    cleaner = BandCleaner("jpeg" if grid.transfer_syntax in JPEG_BASELINE else "j2k")

    def one(job: tuple[int, int]) -> int:
        sy, sx = job
        payloads: list[bytes | None] = []
        for dy in range(ky):
            for dx in range(kx):
                row, col = sy * ky + dy, sx * kx + dx
                inside = row < grid.rows and col < grid.columns
                payloads.append(slide.raw_tile(grid.level, row, col) if inside else None)
        payloads = clean_payloads(cleaner, payloads)  # nothing but coding data leaves
        return write_shard(array_dir, (0, sy, sx), payloads)

    jobs = list(shard_grid(arr))
    if pool is None:
        for job in jobs:
            one(job)
    else:
        list(pool.map(one, jobs))
