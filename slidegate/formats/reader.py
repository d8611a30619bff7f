"""Region access to the pyramid levels of one source file, read-only, bounded memory.

Each level is wrapped with tifffile's Zarr store (`page.aszarr()`) and opened with zarr 3, so a
region read decodes only the tiles it touches (NDPI's restart-marker intervals count as tiles).
A level stored as one page per channel (QPTIFF, planar OME-TIFF, SCN fluorescence) is read page
by page and stacked along the sample axis, in the order of the layout. The reader recomputes
the page layout from the file (the same code as the inventory) and checks it still matches
the planned `LevelFacts`. Not picklable: open one reader per task, by path.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import zarr

from slidegate.errors import CorruptSlideError
from slidegate.formats.detect import classify, layout_for
from slidegate.formats.tiff import PageRef, find_level, open_tiff
from slidegate.models import LevelFacts
from slidegate.sources import SourceRef


class LevelReader:
    """Context manager over one source file: `read(level, y, x, h, w) -> (h, w, samples)`."""

    def __init__(self, path: SourceRef) -> None:
        self.path = Path(path) if isinstance(path, str) else path
        self._stack: ExitStack | None = None
        self._levels: list[PageRef] = []
        self._arrays: dict[int, list[Any]] = {}

    def __enter__(self) -> LevelReader:
        stack = ExitStack()
        try:
            tif = stack.enter_context(open_tiff(self.path))
            self._levels = layout_for(tif, classify(tif, self.path), self.path).levels
        except BaseException:
            stack.close()
            raise
        self._stack = stack
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        for arrays in self._arrays.values():
            for arr in arrays:
                store = getattr(arr, "store", None)
                if store is not None and hasattr(store, "close"):
                    store.close()
        self._arrays.clear()
        if self._stack is not None:
            self._stack.close()
            self._stack = None

    def _array(self, level: LevelFacts) -> list[Any]:
        if self._stack is None:
            raise RuntimeError("LevelReader is not open; use it as a context manager")
        if level.index in self._arrays:
            return self._arrays[level.index]
        ref = find_level(self._levels, level, self.path)
        arrays = [zarr.open_array(p.aszarr(), mode="r") for p in ref.pages]
        self._arrays[level.index] = arrays
        return arrays

    def read(self, level: LevelFacts, y: int, x: int, h: int, w: int) -> np.ndarray:
        """Exactly the region [y:y+h, x:x+w] of `level`, shape (h, w, samples)."""
        if h <= 0 or w <= 0 or y < 0 or x < 0 or y + h > level.height or x + w > level.width:
            raise ValueError(
                f"region y={y} x={x} h={h} w={w} is outside level {level.index} "
                f"({level.height}x{level.width})"
            )
        arrays = self._array(level)
        try:
            parts = [_hwc(np.asarray(arr[y : y + h, x : x + w])) for arr in arrays]
            region = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=2)
        except Exception as exc:
            raise CorruptSlideError(
                f"slide {self.path} level {level.index}: a tile cannot be decoded "
                f"({type(exc).__name__}); the file is damaged, restore it from the archive",
                reason="corrupt: undecodable tile",
            ) from None
        if region.shape != (h, w, level.samples):
            raise CorruptSlideError(
                f"slide {self.path} level {level.index}: decoded region has an unexpected shape; "
                "the source changed since inventory or is damaged",
                reason="corrupt: unexpected pixel layout",
            )
        return region


def _hwc(region: np.ndarray) -> np.ndarray:
    return region[:, :, np.newaxis] if region.ndim == 2 else region
