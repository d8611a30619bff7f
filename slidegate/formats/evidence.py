"""Pyramid levels by evidence, not by marker alone.

A TIFF page that no marker calls a label or macro is a pyramid level only when it is a consistent
downsample of the level above it: the same aspect ratio (within the rounding of odd sides), and
the same content at low resolution. The content check samples a 3 x 3 grid of windows over the
candidate, reads the matching windows of the larger level (only the tiles they touch), reduces
them to the candidate's scale (box-filtered, and subsampled as some scanners do) and compares
the grey values window by window: correlated (Pearson >= 0.75), or, where both are flat, of
the same brightness; 7 of the 9 windows must agree (one may fall on an empty tile).
Each level is tied to the one above it, so the chain reaches the base. A page that fails is an
associated image and is never published.
"""

from __future__ import annotations

import numpy as np
import tifffile
from numpy.typing import NDArray
from PIL import Image

from slidegate.formats.tiff import Layout, PageRef

#: largest side of one window of the larger level that is read for a comparison
WINDOW = 512
#: correlation of the sampled grey values above which two pages show the same content
MIN_CORRELATION = 0.75
#: flat windows (std below this share of the value range) compare by mean brightness only
FLAT = 0.01
MAX_MEAN_GAP = 0.03
#: windows (of 9) that must agree: one may fall on an empty (zero-length) tile
MIN_VOTES = 7


def same_aspect(page: tifffile.TiffPage, base: tifffile.TiffPage) -> bool:
    """`page` is smaller than `base` with the same aspect ratio (odd sides rounded either way)."""
    if page.imagewidth >= base.imagewidth or page.imagelength >= base.imagelength:
        return False
    ds_x = base.imagewidth / page.imagewidth
    ds_y = base.imagelength / page.imagelength
    tol_x = ds_x * ds_x / base.imagewidth + 0.02 * ds_x
    tol_y = ds_y * ds_y / base.imagelength + 0.02 * ds_y
    return abs(ds_x - ds_y) <= max(tol_x, tol_y)


def _grey(region: NDArray[np.generic], axes: str) -> NDArray[np.float32]:
    a = np.asarray(region, dtype=np.float32)
    if "S" in axes:
        a = np.moveaxis(a, axes.index("S"), -1)
        a = a[..., :3].mean(axis=-1)
    return np.asarray(a, dtype=np.float32)


def _windows(h: int, w: int, side_y: int, side_x: int) -> list[tuple[int, int]]:
    """Top-left corners of a 3 x 3 grid of windows centred at 1/6, 1/2 and 5/6 of each side."""
    ys = [min(max(0, int(h * f) - side_y // 2), h - side_y) for f in (1 / 6, 1 / 2, 5 / 6)]
    xs = [min(max(0, int(w * f) - side_x // 2), w - side_x) for f in (1 / 6, 1 / 2, 5 / 6)]
    return [(y, x) for y in ys for x in xs]


def same_content(small: tifffile.TiffPage, large: tifffile.TiffPage) -> bool:
    """`small` shows what `large` shows, at its scale (see the module docstring)."""
    import zarr

    fy = large.imagelength / small.imagelength
    fx = large.imagewidth / small.imagewidth
    side_y = max(1, min(small.imagelength // 6 or 1, int(WINDOW / fy)))
    side_x = max(1, min(small.imagewidth // 6 or 1, int(WINDOW / fx)))
    lo = zarr.open_array(small.aszarr(), mode="r")
    hi = zarr.open_array(large.aszarr(), mode="r")
    ay, ax = small.axes.index("Y"), small.axes.index("X")
    votes = 0
    for y, x in _windows(int(small.imagelength), int(small.imagewidth), side_y, side_x):
        sel_lo = [slice(None)] * len(small.axes)
        sel_lo[ay], sel_lo[ax] = slice(y, y + side_y), slice(x, x + side_x)
        sel_hi = [slice(None)] * len(large.axes)
        y0, x0 = int(y * fy), int(x * fx)
        sel_hi[large.axes.index("Y")] = slice(y0, min(large.imagelength, y0 + round(side_y * fy)))
        sel_hi[large.axes.index("X")] = slice(x0, min(large.imagewidth, x0 + round(side_x * fx)))
        a = _grey(np.asarray(lo[tuple(sel_lo)]), small.axes)
        b = _grey(np.asarray(hi[tuple(sel_hi)]), large.axes)
        boxed = Image.fromarray(b, mode="F").resize(a.shape[::-1], Image.Resampling.BOX)
        iy = np.minimum((np.arange(a.shape[0]) * fy).astype(int), b.shape[0] - 1)
        ix = np.minimum((np.arange(a.shape[1]) * fx).astype(int), b.shape[1] - 1)
        picked = b[np.ix_(iy, ix)]  # scanners that subsample instead of filter
        votes += any(
            _agree(a.ravel(), np.asarray(r, np.float32).ravel(), small) for r in (boxed, picked)
        )
    return votes >= MIN_VOTES


def _agree(g: NDArray[np.float32], r: NDArray[np.float32], small: tifffile.TiffPage) -> bool:
    span = float(max(g.max(), r.max()) - min(g.min(), r.min())) or 1.0
    kind = np.dtype(small.dtype)
    top = float(np.iinfo(kind).max) if kind.kind in "ui" else span
    if g.std() < FLAT * top and r.std() < FLAT * top:
        return abs(float(g.mean()) - float(r.mean())) <= MAX_MEAN_GAP * top
    if g.std() == 0 or r.std() == 0:
        return False
    return float(np.corrcoef(g, r)[0, 1]) >= MIN_CORRELATION


def confirm_levels(layout: Layout) -> Layout:
    """Keep, largest first, each level that is a consistent downsample of the last level kept;
    move the others to the associated images (kind "other": never published)."""
    ordered = sorted(layout.levels, key=lambda r: -int(r.page.imagewidth))
    kept: list[PageRef] = [ordered[0]]
    for ref in ordered[1:]:
        above = kept[-1].page
        try:
            agrees = same_aspect(ref.page, above) and same_content(ref.page, above)
        except Exception:  # a page that cannot be read is no evidence: not published
            agrees = False
        if agrees:
            kept.append(ref)
        else:
            layout.associated.append(("other", ref))
    layout.levels[:] = kept
    return layout
