"""Benchmark inputs, generated at run time, deterministically, streamed (never a whole level in
memory): SVS-like slides in the real Aperio page layout (tiled base, stripped thumbnail, reduced
levels, label, macro). Two kinds of pixels:

- `texture="tissue"` (the benchmark's realistic inputs, `TISSUE_SIZES`): every tile is a random
  crop of the real H&E slide in ../shared/data/real-slides/aperio-svs/ (decoded once with
  tifffile), randomly flipped / rotated and brightness-jittered, then JPEG-encoded on its own:
  nothing repeats, so codecs and the audit see the work of a real slide;
- `texture="periodic"`: a histology-like texture (slidegate.synth.texture) mirrored periodically,
  each tile position in the period encoded once (fast; the tests' small inputs).

Also used by tests (small sizes): `zero_tiles` plants zero-length tiles (the Aperio encoder quirk)
and `compression` picks JPEG (7) or Aperio JPEG 2000 (33003).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np
import tifffile

from slidegate.synth.canary import ScanTime
from slidegate.synth.label import render_label
from slidegate.synth.svs import LIBRARY, SvsMeta, description_tail, jpeg_strips, level_factors
from slidegate.synth.texture import downsample, tissue_image

PERIOD = 2048  # texture edge; the mirrored pattern repeats every 2 * PERIOD pixels
SIZES: dict[str, tuple[int, int]] = {
    "S": (8192, 8192),
    "M": (32914, 46000),  # ~1.5 Gpx, like CMU-1 (benchmark.md's main run)
    "L": (81920, 122880),  # ~10 Gpx: on demand (--sizes L)
    "J2K": (4096, 4096),
}


#: realistic inputs: (height, width) of the base; levels /4, /16 as Aperio writes them
TISSUE_SIZES: dict[str, tuple[int, int]] = {
    "S": (8192, 8192),  # 67 Mpx
    "M": (36864, 40960),  # 1.5 Gpx, the slide of issue 19
    "L": (81920, 122880),  # 10 Gpx: opt-in (--sizes L), ~150,000 tiles to encode
}
REAL_SVS = (
    Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "real-slides"
    / "aperio-svs" / "CMU-1-Small-Region.svs"
)  # fmt: skip


@lru_cache(maxsize=1)
def _real_tissue() -> np.ndarray:
    """The real H&E slide's base level, (h, w, 3) uint8, decoded once by tifffile."""
    with tifffile.TiffFile(REAL_SVS) as tf:
        return np.ascontiguousarray(tf.pages[0].asarray())


def _tissue_tiles(
    h: int, w: int, tile: int, enc: Any, zero: frozenset[int], seed: int
) -> Iterator[bytes]:
    """Row-major tiles, each a random crop of the real slide, flipped / rotated by a random
    choice of the 8 symmetries and brightness-jittered (gain 0.85-1.15, offset -12..12) through
    a lookup table: no two tiles are alike."""
    src = _real_tissue()
    rng = np.random.default_rng(seed)
    sh, sw = src.shape[0] - tile, src.shape[1] - tile
    ramp = np.arange(256, dtype=np.float32)
    k = 0
    for _y in range(0, h, tile):
        for _x in range(0, w, tile):
            if k in zero:
                yield b""
                k += 1
                continue
            y0, x0 = int(rng.integers(0, sh)), int(rng.integers(0, sw))
            crop = src[y0 : y0 + tile, x0 : x0 + tile]
            sym = int(rng.integers(0, 8))
            crop = np.rot90(crop, sym % 4)
            if sym >= 4:
                crop = crop[:, ::-1]
            gain, offset = rng.uniform(0.85, 1.15), rng.uniform(-12, 12)
            lut = np.clip(ramp * gain + offset, 0, 255).astype(np.uint8)
            yield enc(np.ascontiguousarray(lut[crop]))
            k += 1


@lru_cache(maxsize=8)
def _pattern(seed: int, factor: int) -> np.ndarray:
    """Mirrored texture (2P x 2P), area-downsampled by `factor`; periodic with 2P / factor."""
    tex = tissue_image(seed, (PERIOD, PERIOD), shape_seed=seed + 1000, scale=1.0)
    # tissue everywhere: replace glass background by a second texture's stroma-rich half
    full = np.concatenate([tex, tex[:, ::-1]], axis=1)
    full = np.concatenate([full, full[::-1]], axis=0)
    return downsample(full, factor) if factor > 1 else full


def _region(pattern: np.ndarray, y: int, x: int, h: int, w: int) -> np.ndarray:
    p = pattern.shape[0]
    ys = (np.arange(y, y + h) % p)[:, None]
    xs = (np.arange(x, x + w) % p)[None, :]
    return pattern[ys, xs]


def _encoder(compression: int, quality: int) -> Any:
    if compression == 7:
        return lambda a: bytes(imagecodecs.jpeg8_encode(a, level=quality))
    return lambda a: bytes(imagecodecs.jpeg2k_encode(a, level=quality, codecformat="j2k"))


def _tiles(
    pattern: np.ndarray, h: int, w: int, tile: int, enc: Any, zero: frozenset[int]
) -> Iterator[bytes]:
    """The level's tiles in row-major order. The pattern is periodic, so a tile is encoded once
    per position in the period and reused (a 1.5 Gpx level has ~256 distinct tiles, 23,000
    tiles in all): generation costs about one write of the file."""
    p = pattern.shape[0]
    done: dict[tuple[int, int], bytes] = {}
    k = 0
    for y in range(0, h, tile):
        for x in range(0, w, tile):
            key = (y % p, x % p)
            if key not in done:
                done[key] = enc(np.ascontiguousarray(_region(pattern, y, x, tile, tile)))
            yield b"" if k in zero else done[key]
            k += 1


def write_slide(
    path: Path,
    size: tuple[int, int],
    *,
    seed: int = 1,
    tile: int = 256,
    compression: int = 7,
    quality: int = 80,
    zero_tiles: tuple[int, ...] = (),
    texture: str = "periodic",
) -> Path:
    """Write an SVS-like slide of `size` = (height, width); return `path`. `texture`:
    "periodic" (synthetic, fast) or "tissue" (random crops of the real H&E slide)."""
    h, w = size

    def tiles(f: int, lh: int, lw: int, zero: frozenset[int]) -> Iterator[bytes]:
        if texture == "tissue":
            return _tissue_tiles(lh, lw, tile, enc, zero, seed * 1000 + f)
        return _tiles(_pattern(seed, f), lh, lw, tile, enc, zero)

    enc = _encoder(compression, quality if compression == 7 else 40)
    meta = SvsMeta(
        filename=f"bench-{seed}", scanscope_id="SS1234", user="0" * 8, image_id="123456789",
        scan=ScanTime(dt.datetime(2020, 1, 2, 3, 4, 5)), software="bench", make="bench",
        model="bench", artist="bench",
    )  # fmt: skip
    tail = description_tail(meta, h, w)
    head = f"{LIBRARY} \r\n"
    common: dict[str, Any] = {
        "compression": compression, "photometric": "rgb", "dtype": np.uint8, "metadata": None,
    }  # fmt: skip
    # no `compressionargs={"outcolorspace": "RGB"}`: with it tifffile writes tags that make
    # libvips read the (YCbCr) JPEG tiles with the wrong colours
    zero = frozenset(zero_tiles)
    with tifffile.TiffWriter(path, bigtiff=h * w * 3 > 2**31) as tw:
        kind = "JPEG" if compression == 7 else "J2K"
        tw.write(
            tiles(1, h, w, zero), shape=(h, w, 3), tile=(tile, tile),
            description=f"{head}{w}x{h} [0,0 {w}x{h}] ({tile}x{tile}) {kind}/RGB Q={quality}"
            + tail, subfiletype=0, **common,
        )  # fmt: skip
        th, tw_ = max(1, h // 64), max(1, w // 64)
        thumb = np.ascontiguousarray(
            _region(_pattern(seed, 64 if PERIOD >= 64 else 1), 0, 0, th, tw_)
        )
        tw.write(
            jpeg_strips(thumb, 16), shape=thumb.shape, rowsperstrip=16,
            description=f"{head}{w}x{h} -> {tw_}x{th} - {tail}", subfiletype=0,
            compression="jpeg", photometric="rgb", dtype=np.uint8, metadata=None,
        )  # fmt: skip
        for f in level_factors(h, w):
            lh, lw = h // f, w // f
            tw.write(
                tiles(f, lh, lw, frozenset()), shape=(lh, lw, 3),
                tile=(tile, tile), description=f"{head}{w}x{h} -> {lw}x{lh} - {tail}",
                subfiletype=0, **common,
            )  # fmt: skip
        label = render_label(["BENCH", f"seed {seed}"])
        tw.write(
            label, photometric="rgb", compression="lzw", predictor=True, rowsperstrip=16,
            description=f"{LIBRARY}\r\nlabel {label.shape[1]}x{label.shape[0]}", subfiletype=1,
            metadata=None,
        )  # fmt: skip
        macro = np.ascontiguousarray(_region(_pattern(seed, 16), 0, 0, 400, 1200))
        tw.write(
            jpeg_strips(macro, 16), shape=macro.shape, rowsperstrip=16,
            description=f"{LIBRARY}\r\nmacro 1200x400", subfiletype=9, compression="jpeg",
            photometric="rgb", dtype=np.uint8, metadata=None,
        )  # fmt: skip
    return path
