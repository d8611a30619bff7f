"""Write the planned pyramid of one slide as OME-NGFF 0.5 (Zarr v3, sharded).

Only what the DeidPlan allows is written: pyramid levels as arrays "0", "1", ... and group
attributes from `ngff.group_attributes` (pseudonym, format, whitelisted metadata). No source
path, file name, date or other metadata.

Modes (`ConvertOptions.mode`, chosen by the profile's `conversion:` section):
- "passthrough": JPEG / JPEG 2000 tiles of a tiled TIFF-family level are copied into the
  chunks, cleaned of non-coding segments (see passthrough.py); a level that cannot pass through
  is written lossless.
  Readers need the imagecodecs codecs registered (`slidegate.convert.codecs.register`).
- "lossless": decode, re-encode with blosc zstd; opens with plain zarr + numcodecs.
- "jpeg": decode, re-encode as JPEG at `quality` (imagecodecs codec, like pass-through).
`pyramid="2x"` replaces the native levels with a 2x pyramid computed from one decode of the
base (pyramid.py). Memory stays bounded: levels are read and written shard by shard.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import zarr

from slidegate.convert import dicom_passthrough, encode, passthrough
from slidegate.convert.codecs import register
from slidegate.convert.ngff import group_attributes, omero
from slidegate.convert.pyramid import PyramidBuilder, level_shapes
from slidegate.convert.tiles import TiffTiles, TiledLevel
from slidegate.errors import PolicyError, SlidegateError
from slidegate.formats import RegionReader, open_reader
from slidegate.formats.dicom_reader import DicomSlide, open_dicom
from slidegate.formats.registry import handler_for
from slidegate.models import DeidPlan, LevelFacts
from slidegate.payload import Unparsable
from slidegate.sources import SourceRef

Mode = Literal["passthrough", "lossless", "jpeg"]
log = logging.getLogger("slidegate.convert")


@dataclass(frozen=True)
class ConvertOptions:
    chunk: int = 512  # chunk edge (pixels) of re-encoded levels: chunks (samples, chunk, chunk)
    shard: int = 4096  # shard edge (pixels), a multiple of `chunk`
    compressor: Literal["zstd", "lz4"] = "zstd"  # blosc, lossless mode
    level: int = 3  # blosc zstd level: 3 is ~2.6x faster than 5 for ~6% more bytes
    mode: Mode = "passthrough"
    quality: int = 90  # JPEG quality of the "jpeg" mode
    pyramid: Literal["native", "2x"] = "native"
    threads: int = 1  # decode / copy threads inside one slide
    #: shard edge of re-encoded levels in the 2x pyramid: one shard buffer per level is held,
    #: so a smaller edge keeps peak memory low and flat across slide sizes
    pyramid_shard: int = 2048

    @property
    def shard_2x(self) -> int:
        edge = min(self.shard, self.pyramid_shard)
        return edge if edge % self.chunk == 0 and edge % 2 == 0 else self.shard

    def __post_init__(self) -> None:
        if self.chunk <= 0 or self.shard <= 0 or self.shard % self.chunk:
            raise ValueError(
                f"shard ({self.shard}) must be a positive multiple of chunk ({self.chunk})"
            )
        if self.pyramid == "2x" and self.shard % 2:
            raise ValueError("the 2x pyramid needs an even shard edge")
        if not 1 <= self.quality <= 100 or self.threads < 1:
            raise ValueError("quality must be 1..100 and threads >= 1")


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


def _size(out: Path) -> int:
    return sum(p.stat().st_size for p in out.rglob("*") if p.is_file())


def _format(lv: LevelFacts, opts: ConvertOptions, mode: Mode) -> encode.ChunkFormat:
    if mode == "jpeg" and lv.dtype == "uint8" and lv.samples in (1, 3):
        return encode.jpeg(opts.quality)
    return encode.lossless(opts.compressor, opts.level)


def _reencoded(
    group: zarr.Group,
    name: str,
    lv: LevelFacts,
    shape: tuple[int, int],
    opts: ConvertOptions,
    mode: Mode,
    shard: int | None = None,
) -> tuple[zarr.Array, encode.ChunkFormat]:
    fmt = _format(lv, opts, mode)
    shape3 = (lv.samples, *shape)
    edge = shard or opts.shard
    arr = encode.create_array(group, name, shape3, np.dtype(lv.dtype), opts.chunk, edge, fmt)
    return arr, fmt


class _Source:
    """Decoded regions of the source levels: raw tiles + tifffile's decoder for tiled TIFF
    pages, the format's region reader otherwise (opened only when needed)."""

    def __init__(self, path: SourceRef, stack: ExitStack, pool: Executor | None) -> None:
        self.path, self._stack, self.pool = path, stack, pool
        handler = handler_for(path)
        self.tiles: TiffTiles | None = None
        self.dicom: DicomSlide | None = None
        if handler is None:
            self.tiles = stack.enter_context(TiffTiles(path))
        elif handler.name == "dicom" and isinstance(path, Path):
            self.dicom = stack.enter_context(open_dicom(path))
        self._reader: RegionReader | None = None

    def copy_through(
        self, group: zarr.Group, name: str, lv: LevelFacts, out: Path, shard: int
    ) -> bool:
        """Write level `lv` as array `name` by tile pass-through if the source allows it;
        False (nothing written) if it does not, or if a tile cannot be walked (its
        non-coding segments are removed by the copy; one that cannot be parsed is not copied)."""
        try:
            return self._copy_through(group, name, lv, out, shard)
        except Unparsable as exc:
            log.warning("level %d: a tile cannot be walked (%s); re-encoding it", lv.index,
                        exc.rule)  # fmt: skip
            shutil.rmtree(out / name, ignore_errors=True)
            return False

    def _copy_through(
        self, group: zarr.Group, name: str, lv: LevelFacts, out: Path, shard: int
    ) -> bool:
        tl = self.tiled(lv)
        if self.tiles is not None and tl is not None and passthrough.eligible(tl):
            arr = passthrough.create_array(group, name, tl, shard)
            passthrough.copy_level(self.tiles, tl, arr, out / name, self.pool)
            return True
        grids = self.dicom.grids if self.dicom is not None else []
        grid = grids[lv.index] if 0 <= lv.index < len(grids) else None
        if (
            self.dicom is not None
            and grid is not None
            and (grid.height, grid.width) == (lv.height, lv.width)
            and dicom_passthrough.eligible(grid)
        ):
            arr = dicom_passthrough.create_array(group, name, grid, shard)
            dicom_passthrough.copy_level(self.dicom, grid, arr, out / name, self.pool)
            return True
        return False

    def tiled(self, lv: LevelFacts) -> TiledLevel | None:
        return self.tiles.level(lv) if self.tiles is not None else None

    def region_fn(self, lv: LevelFacts) -> Callable[[int, int, int, int, np.ndarray], None]:
        """(y, x, h, w, out) -> decode level `lv` pixels [y:y+h, x:x+w] into `out`."""
        tl = self.tiled(lv)
        if tl is not None and self.tiles is not None:
            tiles = self.tiles

            def tiled(y: int, x: int, h: int, w: int, out: np.ndarray) -> None:
                tiles.region(tl, y, x, h, w, self.pool, out)

            return tiled
        if self._reader is None:
            self._reader = self._stack.enter_context(open_reader(self.path))
        reader = self._reader

        def other(y: int, x: int, h: int, w: int, out: np.ndarray) -> None:
            out[...] = reader.read(lv, y, x, h, w)

        return other


def _native_level(
    src: _Source, group: zarr.Group, out: Path, i: int, lv: LevelFacts, opts: ConvertOptions
) -> None:
    if opts.mode == "passthrough" and src.copy_through(group, str(i), lv, out, opts.shard):
        return
    _, fmt = _reencoded(group, str(i), lv, (lv.height, lv.width), opts, opts.mode)
    read = src.region_fn(lv)
    step = opts.shard
    buf = np.empty((min(step, lv.height), min(step, lv.width), lv.samples), np.dtype(lv.dtype))
    for sy, y in enumerate(range(0, lv.height, step)):
        for sx, x in enumerate(range(0, lv.width, step)):
            region = buf[: min(step, lv.height - y), : min(step, lv.width - x)]
            read(y, x, region.shape[0], region.shape[1], region)
            encode.write_region(out / str(i), sy, sx, region, opts.chunk, step, fmt, src.pool)


def _pyramid_2x(
    src: _Source,
    group: zarr.Group,
    out: Path,
    base: LevelFacts,
    shapes: list[tuple[int, int]],
    opts: ConvertOptions,
) -> None:
    edge = opts.shard_2x
    formats: list[encode.ChunkFormat | None] = []
    if opts.mode == "passthrough" and src.copy_through(group, "0", base, out, opts.shard):
        formats.append(None)  # level 0 already written; the builder only decodes it
    else:
        formats.append(_reencoded(group, "0", base, shapes[0], opts, opts.mode, edge)[1])
    derived: Mode = "jpeg" if opts.mode == "jpeg" else "lossless"
    for k, shape in enumerate(shapes[1:], start=1):
        formats.append(_reencoded(group, str(k), base, shape, opts, derived, edge)[1])
    read = src.region_fn(base)

    def sink(k: int, y: int, x: int, region: np.ndarray) -> None:
        fmt = formats[k]
        if fmt is not None:
            sy, sx = y // edge, x // edge
            encode.write_region(out / str(k), sy, sx, region, opts.chunk, edge, fmt,
                                src.pool)  # fmt: skip

    PyramidBuilder(
        shapes=shapes,
        shard=edge,
        samples=base.samples,
        dtype=np.dtype(base.dtype),
        base=read,
        sink=sink,
        pool=src.pool,
    ).build()


def write_ome_zarr(
    source: SourceRef, plan: DeidPlan, out: Path, options: ConvertOptions | None = None
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
    register()
    base = plan.levels[0]
    shapes = (
        [(lv.height, lv.width) for lv in plan.levels]
        if opts.pyramid == "native"
        else level_shapes(base.height, base.width, opts.chunk)
    )
    group = zarr.create_group(
        store=str(out), zarr_format=3, attributes=group_attributes(plan, shapes)
    )
    with ExitStack() as stack:
        pool = stack.enter_context(ThreadPoolExecutor(opts.threads)) if opts.threads > 1 else None
        src = _Source(Path(source) if isinstance(source, str) else source, stack, pool)
        if opts.pyramid == "native":
            for i, lv in enumerate(plan.levels):
                _native_level(src, group, out, i, lv, opts)
        else:
            _pyramid_2x(src, group, out, base, shapes, opts)
    rendering = omero(plan, base.samples, _dtype_range(base.dtype), _windows(group, shapes))
    group.update_attributes(
        group_attributes(plan, shapes, opts.pyramid == "2x", rendering)
    )  # the whole "ome" object again, now with the display windows
    return _size(out)


#: pixels of the smallest level read to set the display windows (a centred crop beyond)
WINDOW_EDGE = 2048


def _dtype_range(dtype: str) -> tuple[float, float]:
    dt = np.dtype(dtype)
    if dt.kind in "ui":
        info = np.iinfo(dt)
        return float(info.min), float(info.max)
    return 0.0, 1.0


def _windows(group: zarr.Group, shapes: list[tuple[int, int]]) -> list[tuple[float, float]]:
    """Per channel (start, end) display window: the 0.1 / 99.9 percentiles of the largest
    level that fits in WINDOW_EDGE^2 pixels (else a centred crop of the smallest; a smaller
    level is averaged and would narrow the window); 8-bit RGB keeps its full range."""
    fits = [i for i, (h, w) in enumerate(shapes) if h * w <= WINDOW_EDGE**2]
    arr = group[str(fits[0] if fits else len(shapes) - 1)]
    assert isinstance(arr, zarr.Array)
    s, h, w = arr.shape
    if s == 3 and arr.dtype == np.uint8:
        return [(0.0, 255.0)] * 3
    y0, x0 = max(0, (h - WINDOW_EDGE) // 2), max(0, (w - WINDOW_EDGE) // 2)
    data = np.asarray(arr[:, y0 : y0 + WINDOW_EDGE, x0 : x0 + WINDOW_EDGE]).reshape(s, -1)
    out = []
    for c in range(s):
        lo, hi = np.percentile(data[c], [0.1, 99.9]) if data[c].size else (0.0, 1.0)
        out.append((float(lo), float(max(hi, lo + 1)) if arr.dtype.kind in "ui" else float(hi)))
    return out
