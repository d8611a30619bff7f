"""Region reader over a Zeiss CZI pyramid level: decodes only the subblocks a region touches.

Tiles are painted in the layout's order (mosaic index, as czifile's `asarray`), so overlapping
mosaic tiles resolve the same way. czifile decodes uncompressed, JPEG, LZW and JPEG XR tiles;
zstd ("ZSTD0", CZI compression 5) and zstd with header ("ZSTD1", 6; optional hi/lo byte packing
of 16-bit data) are decoded here with imagecodecs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from slidegate.errors import CorruptSlideError
from slidegate.formats.czi import CziLayout, Tile, _dims, layout, open_czi
from slidegate.models import LevelFacts


def _decode(entry: Any) -> np.ndarray:
    """Stored pixels of one subblock as (h, w, samples), RGB order for colour data."""
    segment = entry.data_segment()
    comp = int(entry.compression)
    if comp in (2, 5, 6):  # czifile's LZW path needs numpy < 2; zstd is not in czifile 2019
        import imagecodecs

        raw = segment.data(raw=True)
        hilo = False
        if comp == 2:
            data = imagecodecs.lzw_decode(raw)
        elif comp == 6:  # zstd1: header size byte, then chunks (type 1: hi/lo byte packing)
            size = raw[0]
            hilo = size >= 3 and raw[1] == 1 and bool(raw[2] & 1)
            data = imagecodecs.zstd_decode(raw[size:])
        else:
            data = imagecodecs.zstd_decode(raw)
        dtype = np.dtype(entry.dtype)
        if hilo:
            half = len(data) // 2
            packed = np.frombuffer(data, np.uint8)
            data = np.stack([packed[:half], packed[half:]], axis=-1).tobytes()
        arr = np.frombuffer(data, dtype.base).reshape(entry.stored_shape)
        if arr.shape[-1] == 3:
            arr = arr[..., ::-1]
        elif arr.shape[-1] == 4:
            arr = arr[..., [2, 1, 0, 3]]
    else:
        arr = np.asarray(segment.data(resize=False))
    d = _dims(entry)
    h, w = d["Y"].stored_size, d["X"].stored_size
    return arr.reshape(h, w, -1)


class CziReader:
    """Context manager over one CZI: `read(level, y, x, h, w) -> (h, w, samples)`."""

    CACHE = 8  # decoded tiles kept (a region read touches each tile once per region)

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._czi: Any = None
        self._layout: CziLayout | None = None
        self._cache: dict[int, np.ndarray] = {}

    def __enter__(self) -> CziReader:
        self._czi = open_czi(self.path)
        try:
            self._layout = layout(self._czi, self.path)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._czi is not None:
            self._czi.close()
            self._czi = None
        self._cache.clear()

    def _tile(self, tile: Tile) -> np.ndarray:
        key = id(tile.entry)
        if key not in self._cache:
            try:
                data = _decode(tile.entry)
            except Exception as exc:
                raise CorruptSlideError(
                    f"slide {self.path}: a CZI subblock cannot be decoded ({type(exc).__name__}); "
                    "the file is damaged, restore it from the archive",
                    reason="corrupt: undecodable tile",
                ) from None
            if len(self._cache) >= self.CACHE:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = data
        return self._cache[key]

    def read(self, level: LevelFacts, y: int, x: int, h: int, w: int) -> np.ndarray:
        if self._layout is None:
            raise RuntimeError("CziReader is not open; use it as a context manager")
        lay = self._layout
        if level.index >= len(lay.levels) or (
            (lay.levels[level.index].height, lay.levels[level.index].width)
            != (level.height, level.width)
        ):
            raise CorruptSlideError(
                f"slide {self.path} level {level.index} differs from the inventory; the source "
                "changed: rerun the inventory",
                reason="corrupt: source changed",
            )
        if h <= 0 or w <= 0 or y < 0 or x < 0 or y + h > level.height or x + w > level.width:
            raise ValueError(f"region y={y} x={x} h={h} w={w} is outside level {level.index}")
        out = np.zeros((h, w, lay.samples), dtype=lay.dtype)
        for t in lay.levels[level.index].tiles:
            y0, y1 = max(y, t.y), min(y + h, t.y + t.h)
            x0, x1 = max(x, t.x), min(x + w, t.x + t.w)
            if y0 >= y1 or x0 >= x1:
                continue
            data = self._tile(t)[y0 - t.y : y1 - t.y, x0 - t.x : x1 - t.x]
            if lay.samples > 1 and data.shape[-1] == 1:
                out[y0 - y : y1 - y, x0 - x : x1 - x, t.channel] = data[..., 0]
            else:
                out[y0 - y : y1 - y, x0 - x : x1 - x, :] = data
        return out
