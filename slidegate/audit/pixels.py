"""Pixel rules of the audit re-open: exact, a tolerance, or a PSNR floor for JPEG output, and the
audit's own 2x area-average reference for derived pyramid levels.

How each output level is judged (see `rules_for`):
- pass-through and lossless levels: the output equals the source decode exactly (a `tolerance`
  only where two decoders of the same lossy source legitimately differ, e.g. DICOM YBR);
- levels written as JPEG (`conversion.mode: jpeg`, uint8 with 1 or 3 samples): every
  `BLOCK` x `BLOCK` block of every region has a PSNR against the reference of at least
  `psnr_floor(quality)` dB: 27 at Q >= 80, 24 at Q 50-79, 20 below. Measured (imagecodecs
  JPEG, 256 px blocks): synthetic tissue 34-41 dB at Q 30-95, the same 4x downsampled (denser
  detail, as derived levels are) 29-36 dB, the bench texture's derived levels >= 30.5 dB at
  Q 85; damage is far lower: a chunk of zeros 1-5 dB, a shifted or wrong-level tile 7-16 dB.
  (Pure random noise loses its chroma to 4:2:0 subsampling, ~12 dB at any quality: not slide
  content, and such a slide fails here rather than pass unchecked.)
- derived levels of the 2x pyramid (`conversion.pyramid: 2x`): level k is compared with the
  area average of 2^k x 2^k blocks of the source base level, computed here in floating point
  (edge replicated at odd sizes, as the writer's rule says), never with the writer's code. The
  writer rounds once per level, so a lossless derived level is within 0.5 * k of it; JPEG
  derived levels take the PSNR floor.
Problem texts name the level, the region and the figure, never a value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import zarr

REGION = 2048  # compared region edge (pixels); a power of two, so 2x blocks stay aligned
BLOCK = 256  # PSNR block edge inside a region
MAX_2X_LEVELS = 11  # 2^11 = REGION: deeper derived levels would need larger base regions

#: (rows, columns) of a level -> the source pixels there as (samples, h, w)
Reader = Callable[[slice, slice], np.ndarray]


def psnr_floor(quality: int) -> float:
    """Lowest PSNR (dB) accepted for a JPEG output level written at `quality`."""
    if quality >= 80:
        return 27.0
    if quality >= 50:
        return 24.0
    return 20.0


def jpeg_written(mode: str, dtype: str, samples: int) -> bool:
    """True when the writer encodes such a level as JPEG (its documented rule)."""
    return mode == "jpeg" and dtype == "uint8" and samples in (1, 3)


@dataclass(frozen=True)
class Rule:
    tolerance: float = 0.0  # largest absolute difference accepted
    psnr: float | None = None  # lossy output: lowest block PSNR accepted (dB)

    def check(self, got: np.ndarray, want: np.ndarray, scale: int = 1) -> str | None:
        """Judge `got` against `want` / `scale` (`want`: integer block sums of `scale` source
        pixels for derived levels, so the reference is exact without floating point)."""
        if got.shape != want.shape:
            return "samples per pixel differ from the source"
        if self.psnr is None:
            same_kind = scale == 1 and got.dtype == want.dtype
            if self.tolerance == 0 and same_kind and np.array_equal(got, want):
                return None
            worst = max_abs_diff(got, want, scale)
            if worst > self.tolerance:
                shown = f"{worst:g}"
                return f"max difference {shown} > tolerance {self.tolerance:g}"
            return None
        low = lowest_block_psnr(got, want, scale=scale)
        if low < self.psnr:
            return f"PSNR {low:.1f} dB < floor {self.psnr:g} dB"
        return None


def _top(a: np.ndarray) -> float:
    return float(np.iinfo(a.dtype).max) if a.dtype.kind in "ui" else math.inf


def _diff(got: np.ndarray, want: np.ndarray, scale: int) -> np.ndarray:
    """got * scale - want in the narrowest signed type that cannot wrap (int16 for uint8
    levels and their first derived sums), float where either side is float."""
    if got.dtype.kind == "f" or want.dtype.kind == "f":
        return got.astype(np.float32) * np.float32(scale) - want.astype(np.float32)
    bound = max(_top(got) * scale, _top(want))
    kind = np.int16 if bound <= 32767 else np.int32 if bound < 2**31 else np.int64
    d: np.ndarray = got.astype(kind)
    if scale != 1:
        np.multiply(d, scale, out=d, casting="unsafe")
    np.subtract(d, want.astype(kind), out=d)
    return d


def max_abs_diff(got: np.ndarray, want: np.ndarray, scale: int = 1) -> float:
    """Largest |got - want / scale|, one band of rows at a time in integers where it can."""
    worst = 0.0
    for y in range(0, got.shape[1], BLOCK):
        d = _diff(got[:, y : y + BLOCK], want[:, y : y + BLOCK], scale)
        worst = max(worst, float(np.abs(d).max(initial=0)) / scale)
    return worst


def lowest_block_psnr(
    got: np.ndarray, want: np.ndarray, peak: float = 255.0, scale: int = 1
) -> float:
    """Lowest PSNR over BLOCK x BLOCK blocks of (samples, h, w) `got` against `want` / `scale`,
    one band of BLOCK rows at a time: the difference in int16 (uint8 levels) or float32, squared
    sums per block with one reduceat (no float64 copy of the region)."""
    low = math.inf
    _, h, w = got.shape
    starts = np.arange(0, w, BLOCK)
    widths = np.diff(np.append(starts, w))
    for y in range(0, h, BLOCK):
        d = _diff(got[:, y : y + BLOCK], want[:, y : y + BLOCK], scale)
        sq_type = (
            np.int32 if d.dtype == np.int16 else np.float32 if d.dtype.kind == "f" else np.float64
        )
        sq = np.square(d, dtype=sq_type)
        sums = np.add.reduceat(sq.sum(axis=(0, 1), dtype=np.float64), starts)
        mse = sums / (widths * d.shape[0] * d.shape[1] * float(scale) ** 2)
        positive = mse[mse > 0]
        if positive.size:
            low = min(low, float(10 * np.log10(peak * peak / positive.max())))
    return low


def regions(height: int, width: int, step: int) -> Iterator[tuple[slice, slice]]:
    for y in range(0, height, step):
        for x in range(0, width, step):
            yield slice(y, min(y + step, height)), slice(x, min(x + step, width))


def compare_level(
    i: int, arr: zarr.Array, read: Reader, shape: tuple[int, int], rule: Rule, what: str
) -> str | None:
    """Compare output level `i` with `read` region by region; the first difference found."""
    for ys, xs in regions(*shape, REGION):
        problem = rule.check(np.asarray(arr[:, ys, xs]), read(ys, xs))
        if problem:
            return (
                f"level {i}: pixels differ from {what} ({problem}) in the region at "
                f"y={ys.start}, x={xs.start}"
            )
    return None


def area_half(a: np.ndarray) -> np.ndarray:
    """(samples, h, w) float -> (samples, ceil(h/2), ceil(w/2)): mean of each 2x2 block, the
    last row / column repeated when a size is odd."""
    _, h, w = a.shape
    if h % 2 or w % 2:
        a = np.pad(a, ((0, 0), (0, h % 2), (0, w % 2)), mode="edge")
    return (a[:, 0::2, 0::2] + a[:, 1::2, 0::2] + a[:, 0::2, 1::2] + a[:, 1::2, 1::2]) / 4


def area_sum(a: np.ndarray, top: float) -> np.ndarray:
    """(samples, h, w) integers whose values are at most `top` -> the sum of each 2x2 block
    (last row / column repeated when a size is odd), in the narrowest unsigned type that holds
    4 * `top`: block sums of 4^k uint8 pixels stay uint16 up to k = 4."""
    _, h, w = a.shape
    if h % 2 or w % 2:
        a = np.pad(a, ((0, 0), (0, h % 2), (0, w % 2)), mode="edge")
    bound = 4 * top
    kind = np.uint16 if bound <= 65535 else np.uint32 if bound < 2**32 else np.uint64
    acc: np.ndarray = a[:, 0::2, 0::2].astype(kind)
    for part in (a[:, 1::2, 0::2], a[:, 0::2, 1::2], a[:, 1::2, 1::2]):
        np.add(acc, part, out=acc)
    return acc


def compare_derived(
    arrays: Mapping[int, zarr.Array],
    read_base: Reader,
    base_shape: tuple[int, int],
    rules: Mapping[int, Rule],
    what: str,
) -> list[str]:
    """Compare the levels of a 2x pyramid with the source base (level 0, when given) and with
    the area average of its 2^k x 2^k blocks (levels k >= 1), one base region at a time: each
    source region is decoded once and yields the matching block of every level. Integer
    sources are averaged as exact integer block sums (compared as got * 4^k - sum)."""
    problems: dict[int, str] = {}
    deep = [k for k in arrays if k > MAX_2X_LEVELS]
    for k in deep:
        problems[k] = f"level {k}: deeper than {MAX_2X_LEVELS} 2x steps; pixels not compared"
    depth = max((k for k in arrays if k not in problems), default=0)
    if depth == 0 and 0 not in arrays:
        return list(problems.values())
    for ys, xs in regions(*base_shape, REGION):
        ref = read_base(ys, xs)
        exact = ref.dtype.kind in "ui"
        top = float(np.iinfo(ref.dtype).max) if exact else math.inf
        if 0 in arrays and 0 not in problems:
            problem = rules[0].check(np.asarray(arrays[0][:, ys, xs]), ref)
            if problem:
                problems[0] = (
                    f"level 0: pixels differ from {what} ({problem}) in the region at "
                    f"y={ys.start}, x={xs.start}"
                )
        for k in range(1, depth + 1):
            if exact:
                ref, top = area_sum(ref, top), top * 4
            else:
                ref = area_half(ref.astype(np.float32, copy=False))
            if k not in arrays or k in problems:
                continue
            y0, x0 = ys.start >> k, xs.start >> k
            got = np.asarray(arrays[k][:, y0 : y0 + ref.shape[1], x0 : x0 + ref.shape[2]])
            problem = rules[k].check(got, ref, 4**k if exact else 1)
            if problem:
                problems[k] = (
                    f"level {k}: pixels differ from the area average of {what} ({problem}) "
                    f"in the region at y={y0}, x={x0}"
                )
    return [problems[k] for k in sorted(problems)]


def rules_for(
    mode: str,
    quality: int,
    dtype: str,
    samples: int,
    levels: int,
    derived: bool,
    tolerance: float,
) -> dict[int, Rule]:
    """The rule of each output level 0..levels-1 (`derived`: levels >= 1 come from the 2x
    pyramid; `tolerance`: what two decoders of the source may differ by)."""
    lossy = jpeg_written(mode, dtype, samples)
    out = {}
    for k in range(levels):
        if lossy:
            out[k] = Rule(psnr=psnr_floor(quality))
        elif derived and k > 0:
            out[k] = Rule(tolerance=0.5 * k + tolerance + 1e-3)  # float32 reference
        else:
            out[k] = Rule(tolerance=tolerance)
    return out
