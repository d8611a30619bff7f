"""Write the planned pyramid of one slide as OME-NGFF 0.5 (Zarr v3, sharded, blosc zstd).

Only what the DeidPlan allows is written: the planned pyramid levels as arrays "0", "1", ...
and group attributes from `ngff.group_attributes` (pseudonym, format, whitelisted metadata).
No source path, file name, date or other metadata. Memory stays bounded: each level is copied
in shard-aligned regions read with LevelReader, never a whole level at once.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import zarr
from zarr.codecs import BloscCodec

from slidegate.convert.ngff import group_attributes
from slidegate.errors import PolicyError, SlidegateError
from slidegate.formats import RegionReader, open_reader
from slidegate.models import DeidPlan, LevelFacts


@dataclass(frozen=True)
class ConvertOptions:
    chunk: int = 512  # chunk edge (pixels); chunks are (samples, chunk, chunk)
    shard: int = 4096  # shard edge (pixels), a multiple of `chunk`
    compressor: Literal["zstd", "lz4"] = "zstd"  # blosc, lossless
    level: int = 5  # blosc compression level

    def __post_init__(self) -> None:
        if self.chunk <= 0 or self.shard <= 0 or self.shard % self.chunk:
            raise ValueError(
                f"shard ({self.shard}) must be a positive multiple of chunk ({self.chunk})"
            )


def _prepare_out(out: Path) -> None:
    """Remove a previous (partial) output so a rerun restarts cleanly; refuse anything that
    does not look like a Zarr output, so a wrong path never deletes unrelated data."""
    if out.is_symlink() or out.is_file():
        raise SlidegateError(
            f"output path {out} exists and is not a Zarr folder; remove it or choose another "
            "staging folder",
            reason="convert: output path occupied",
        )
    if out.is_dir():
        if not (out / "zarr.json").is_file() and any(out.iterdir()):
            raise SlidegateError(
                f"output folder {out} exists, is not empty and is not a Zarr group; remove it or "
                "choose another staging folder",
                reason="convert: output path occupied",
            )
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)


def _copy_level(reader: RegionReader, level: LevelFacts, arr: zarr.Array, step: int) -> None:
    for y0 in range(0, level.height, step):
        y1 = min(y0 + step, level.height)
        for x0 in range(0, level.width, step):
            x1 = min(x0 + step, level.width)
            region = reader.read(level, y0, x0, y1 - y0, x1 - x0)
            arr[:, y0:y1, x0:x1] = np.ascontiguousarray(region.transpose(2, 0, 1))


def _size(out: Path) -> int:
    return sum(p.stat().st_size for p in out.rglob("*") if p.is_file())


def write_ome_zarr(
    source: Path, plan: DeidPlan, out: Path, options: ConvertOptions | None = None
) -> int:
    """Write `plan`'s pyramid of `source` to the OME-Zarr group `out`; return bytes written."""
    opts = options or ConvertOptions()
    if not plan.levels:
        raise PolicyError(
            f"plan for slide {plan.slide_id} has no pyramid level to write; check the "
            "de-identification policy (images.keep must contain 'pyramid')",
            reason="convert: empty plan",
        )
    out = Path(out)
    _prepare_out(out)
    group = zarr.create_group(store=str(out), zarr_format=3, attributes=group_attributes(plan))
    codec = BloscCodec(cname=opts.compressor, clevel=opts.level, shuffle="shuffle")
    with open_reader(Path(source)) as reader:
        for i, level in enumerate(plan.levels):
            s = level.samples
            arr = group.create_array(
                name=str(i),
                shape=(s, level.height, level.width),
                dtype=np.dtype(level.dtype),
                chunks=(s, opts.chunk, opts.chunk),
                shards=(s, opts.shard, opts.shard),
                compressors=codec,
                fill_value=0,
                dimension_names=["c", "y", "x"],
            )
            _copy_level(reader, level, arr, opts.shard)
    return _size(out)
