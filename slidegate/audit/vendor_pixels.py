"""Independent source readers for the vendor formats: Zeiss CZI (czifile) and MRXS (OpenSlide).

CZI: the subblock directory is read with czifile itself; each subblock's level is its
subsampling (logical size / stored size on its longer axis, matched to the planned level's
downsample), its place is (start - origin of the full-resolution subblocks) / subsampling, and
a region is painted from the subblocks it touches in mosaic-index order (the ZEN convention:
a later mosaic tile lies on top). Pixels are decoded by czifile (`data(resize=False)`:
uncompressed, JPEG, JPEG XR), except the codecs czifile 2019 cannot decode under numpy 2 (LZW,
2) or does not know (zstd, 5 and 6): those are decoded from the raw subblock bytes with
imagecodecs here, following the ZISRAW specification (zstd1: a header whose size is its first
byte; bit 0 of its third byte = hi/lo byte packing of 16-bit data), BGR stored order reversed.
Lossless output must match exactly.

MRXS: OpenSlide is the only MRXS decoder there is (3DHISTECH publishes no other), and the
converter reads MRXS through it too; what the audit adds is its own addressing (the level
found by its dimensions, level-0 coordinates from OpenSlide's downsample, RGBA flattened here)
and the exact comparison of what was written with a fresh OpenSlide decode. Comparing with the
JPEG tiles of the Data*.dat files decoded by another library would not be fair: OpenSlide
places MRXS tiles at the per-tile positions of Index.dat (overlaps, sub-pixel camera offsets
rounded), which is the image the slide shows; a second decoder would only add its own JPEG
rounding. Where OpenSlide has no tile the region is transparent and written as black (0, 0, 0).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from slidegate.audit.pixels import Reader
from slidegate.formats.czi import sniff as czi_sniff
from slidegate.formats.mrxs import sniff as mrxs_sniff
from slidegate.models import LevelFacts

__all__ = ["CziSource", "MrxsSource", "czi_sniff", "mrxs_sniff"]


def _dim(entry: Any, name: str) -> Any:
    for d in entry.dimension_entries:
        if d.dimension == name:
            return d
    return None


def _czi_decode(entry: Any) -> np.ndarray:
    """One subblock's stored pixels as (h, w, samples), RGB order."""
    comp = int(entry.compression)
    segment = entry.data_segment()
    if comp not in (2, 5, 6):
        arr = np.asarray(segment.data(resize=False))  # czifile reverses BGR itself
    else:
        import imagecodecs

        raw = segment.data(raw=True)
        packed = False
        if comp == 2:
            data = imagecodecs.lzw_decode(raw)
        elif comp == 5:
            data = imagecodecs.zstd_decode(raw)
        else:
            size = raw[0]
            packed = size >= 3 and raw[1] == 1 and bool(raw[2] & 1)
            data = imagecodecs.zstd_decode(raw[size:])
        if packed:  # all low bytes, then all high bytes
            half = len(data) // 2
            lo, hi = np.frombuffer(data[:half], np.uint8), np.frombuffer(data[half:], np.uint8)
            data = (lo.astype(np.uint16) | (hi.astype(np.uint16) << 8)).astype("<u2").tobytes()
        dtype = np.dtype(entry.dtype)
        arr = np.frombuffer(data, dtype.base).reshape(entry.stored_shape)
        if arr.shape[-1] in (3, 4):
            arr = arr[..., [2, 1, 0, 3][: arr.shape[-1]]]
    h, w = _dim(entry, "Y").stored_size, _dim(entry, "X").stored_size
    return arr.reshape(h, w, -1)


def _subsampling(entry: Any) -> float:
    x, y = _dim(entry, "X"), _dim(entry, "Y")
    axis = x if x.stored_size >= y.stored_size else y
    return float(axis.size) / max(int(axis.stored_size), 1)


class CziSource:
    name = "czifile's decode of the source"
    tolerance = 0

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._czi: Any = None

    def __enter__(self) -> CziSource:
        import czifile

        self._czi = czifile.CziFile(str(self.path))  # read-only
        entries = list(self._czi.subblock_directory)
        self.entries = entries
        self.factors = np.array([_subsampling(e) for e in entries])
        self.stored = [max(_dim(e, "X").stored_size, _dim(e, "Y").stored_size) for e in entries]
        full = [e for e, f in zip(entries, self.factors, strict=True) if abs(f - 1.0) < 0.01]
        self.y0 = min((_dim(e, "Y").start for e in full), default=0)
        self.x0 = min((_dim(e, "X").start for e in full), default=0)
        channels = sorted({_dim(e, "C").start for e in entries if _dim(e, "C") is not None})
        self.channel = {c: i for i, c in enumerate(channels)}
        return self

    def __exit__(self, *exc: object) -> None:
        if self._czi is not None:
            self._czi.close()
            self._czi = None

    def level(self, lv: LevelFacts) -> Reader | None:
        if not self.entries:
            return None
        # a subblock belongs to the level whose downsample is within half an octave of its
        # subsampling; positions use the level's factor from its regular (>= 32 px) subblocks
        # (a thin edge subblock's ratio is rounded)
        near = np.abs(np.log2(self.factors) - np.log2(max(lv.downsample, 1.0))) < 0.5
        mine = list(np.flatnonzero(near))
        regular = [self.factors[j] for j in mine if self.stored[j] >= 32]
        f = float(np.median(regular)) if regular else 1.0
        f = round(f) if abs(f - round(f)) < 0.05 else f
        tiles = []  # (mosaic order, y, x, h, w, entry)
        for j in mine:
            e = self.entries[j]
            y, x = _dim(e, "Y"), _dim(e, "X")
            ty, tx = int((y.start - self.y0) // f), int((x.start - self.x0) // f)
            order = e.mosaic_index if e.mosaic_index is not None else 0
            tiles.append((order, ty, tx, int(y.stored_size), int(x.stored_size), e))
        if not tiles:
            return None
        tiles.sort(key=lambda t: t[0])  # stable: directory order within one mosaic index
        table = np.array([t[1:5] for t in tiles], dtype=np.int64)

        def read(ys: slice, xs: slice) -> np.ndarray:
            out = np.zeros((lv.samples, ys.stop - ys.start, xs.stop - xs.start), lv.dtype)
            ty, tx, th, tw = table.T
            hit = (ty < ys.stop) & (ty + th > ys.start) & (tx < xs.stop) & (tx + tw > xs.start)
            for j in np.flatnonzero(hit):  # in paint order
                _, y, x, h, w, entry = tiles[j]
                if y < 0 or x < 0:
                    continue  # outside the full-resolution area
                px = _czi_decode(entry).transpose(2, 0, 1)
                c = _dim(entry, "C")
                sy, sx = max(ys.start, y), max(xs.start, x)
                ey, ex = min(ys.stop, y + h), min(xs.stop, x + w)
                if ey <= sy or ex <= sx:
                    continue
                part = px[:, sy - y : ey - y, sx - x : ex - x]
                dst = (slice(sy - ys.start, ey - ys.start), slice(sx - xs.start, ex - xs.start))
                if part.shape[0] == 1 and lv.samples > 1 and c is not None:
                    out[(self.channel[c.start], *dst)] = part[0]
                else:
                    out[(slice(None), *dst)] = part[: lv.samples]
            return out

        return read


class MrxsSource:
    name = "OpenSlide's decode of the source"
    tolerance = 0

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._osr: Any = None

    def __enter__(self) -> MrxsSource:
        import openslide

        self._osr = openslide.OpenSlide(str(self.path))
        return self

    def __exit__(self, *exc: object) -> None:
        if self._osr is not None:
            self._osr.close()
            self._osr = None

    def level(self, lv: LevelFacts) -> Reader | None:
        osr = self._osr
        dims = list(osr.level_dimensions)
        if (lv.width, lv.height) not in dims:
            return None
        index = dims.index((lv.width, lv.height))
        ds = float(osr.level_downsamples[index])

        def read(ys: slice, xs: slice) -> np.ndarray:
            h, w = ys.stop - ys.start, xs.stop - xs.start
            img = osr.read_region((round(xs.start * ds), round(ys.start * ds)), index, (w, h))
            rgba = np.asarray(img)
            return np.ascontiguousarray(rgba[:, :, :3].transpose(2, 0, 1))

        return read
