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

#: window side of the larger level where it is not tiled (else one of its tiles)
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


class _Tiles:
    """Regions of one page, decoding each tile at most once (tifffile's own decoder, straight
    from the file: no array store per read); a stripped page is decoded whole, once."""

    def __init__(self, page: tifffile.TiffPage) -> None:
        self.page = page
        self.cache: dict[int, NDArray[np.generic]] = {}
        self.whole: NDArray[np.generic] | None = None

    def _tile(self, index: int) -> NDArray[np.generic]:
        if index not in self.cache:
            page = self.page
            fh = page.parent.filehandle
            fh.seek(int(page.dataoffsets[index]))
            data = fh.read(int(page.databytecounts[index]))
            seg, _, _ = page.decode(data or None, index, jpegtables=page.jpegtables)
            th, tw = int(page.tilelength), int(page.tilewidth)
            tile = np.zeros((th, tw, int(page.samplesperpixel)), page.dtype)
            if seg is not None:
                tile = np.asarray(seg).reshape(th, tw, -1)
            self.cache[index] = tile
        return self.cache[index]

    def read(self, y0: int, y1: int, x0: int, x1: int) -> NDArray[np.float32]:
        page = self.page
        if not page.is_tiled or page.planarconfig != 1:
            if self.whole is None:
                self.whole = np.asarray(page.asarray())
            return _grey(self.whole[y0:y1, x0:x1], page.axes)
        th, tw = int(page.tilelength), int(page.tilewidth)
        across = -(-int(page.imagewidth) // tw)
        rows = []
        for ty in range(y0 // th, (y1 - 1) // th + 1):
            row = [self._tile(ty * across + tx) for tx in range(x0 // tw, (x1 - 1) // tw + 1)]
            rows.append(np.concatenate(row, axis=1))
        band = np.concatenate(rows, axis=0)
        oy, ox = (y0 // th) * th, (x0 // tw) * tw
        return _grey(band[y0 - oy : y1 - oy, x0 - ox : x1 - ox], "YXS")


def _starts(size_large: int, f: float, tile: int, side: int, size_small: int) -> list[int]:
    """Small-page window starts near 1/6, 1/2 and 5/6 whose larger-page windows begin on a
    tile boundary there, so each one decodes a single tile of the larger page."""
    out = []
    for frac in (1 / 6, 1 / 2, 5 / 6):
        t0 = (int(size_large * frac) // tile) * tile
        y = min(int(np.ceil(t0 / f)), size_small - side)
        out.append(max(0, y))
    return out


def same_content(small: tifffile.TiffPage, large: tifffile.TiffPage) -> bool:
    """`small` shows what `large` shows, at its scale (see the module docstring)."""
    fy = large.imagelength / small.imagelength
    fx = large.imagewidth / small.imagewidth
    tl_y = int(large.tilelength) if large.is_tiled else WINDOW
    tl_x = int(large.tilewidth) if large.is_tiled else WINDOW
    side_y = max(1, min(small.imagelength // 6 or 1, int((tl_y - 1) / fy) - 1))
    side_x = max(1, min(small.imagewidth // 6 or 1, int((tl_x - 1) / fx) - 1))
    lo, hi = _Tiles(small), _Tiles(large)
    votes = 0
    for y in _starts(int(large.imagelength), fy, tl_y, side_y, int(small.imagelength)):
        for x in _starts(int(large.imagewidth), fx, tl_x, side_x, int(small.imagewidth)):
            a = lo.read(y, y + side_y, x, x + side_x)
            y0, x0 = int(y * fy), int(x * fx)
            y1 = min(int(large.imagelength), y0 + max(1, round(side_y * fy)))
            x1 = min(int(large.imagewidth), x0 + max(1, round(side_x * fx)))
            b = hi.read(y0, y1, x0, x1)
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
