"""2x pyramid from one decode of the base level, shard by shard, bounded memory.

Level k+1 has ceil(size_k / 2) pixels per axis, each the area average of a 2x2 block of level k
(the last row/column is edge-replicated when a size is odd). With the same shard edge S at every
level, shard (sy, sx) of level k+1 is exactly the 2x2 shards (2sy.., 2sx..) of level k
downsampled, so the pyramid is built depth-first from the top: each shard is written once,
whole, and only one shard-sized buffer per level is alive at any time (memory grows with the
number of levels, not with the slide's area).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field

import numpy as np

#: (y, x, h, w, out) -> None: decode base-level pixels [y:y+h, x:x+w] into out (h, w, samples)
Region = Callable[[int, int, int, int, np.ndarray], None]
#: (level, y, x, pixels (h, w, samples)) -> None: store a whole shard-aligned region
Sink = Callable[[int, int, int, np.ndarray], None]


def downsample2(
    a: np.ndarray, out: np.ndarray | None = None, pool: Executor | None = None
) -> np.ndarray:
    """(h, w, s) -> (ceil(h/2), ceil(w/2), s) by 2x2 area averaging (round half up), into
    `out` when given. With `pool`, two row bands are computed at once."""
    h, w = a.shape[:2]
    if h % 2 or w % 2:
        a = np.pad(a, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    oh, ow, c = a.shape[0] // 2, a.shape[1] // 2, a.shape[2]
    if out is None:
        out = np.empty((oh, ow, c), dtype=a.dtype)
    if a.dtype.kind == "f":
        out[...] = (a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2]) / 4
        return out
    wide = np.uint16 if a.dtype.itemsize == 1 else np.uint64

    def band(r0: int, r1: int) -> None:
        # rows first (whole contiguous rows), then neighbour columns as one shifted add over
        # the flattened rows (contiguous, vectorised), keeping every other pixel; ~25% faster
        # than adding the strided (pixel, samples) halves
        n = r1 - r0
        rows = np.add(a[2 * r0 : 2 * r1 : 2], a[2 * r0 + 1 : 2 * r1 : 2], dtype=wide)
        flat = rows.reshape(n, 2 * ow * c)
        acc = np.empty_like(flat)
        np.add(flat[:, :-c], flat[:, c:], out=acc[:, :-c])
        acc += 2
        acc >>= 2
        np.copyto(out[r0:r1], acc.reshape(n, ow, 2 * c)[:, :, :c], casting="unsafe")

    if pool is None or oh < 64:
        band(0, oh)
    else:
        mid = oh // 2
        list(pool.map(lambda r: band(*r), [(0, mid), (mid, oh)]))
    return out


def level_shapes(height: int, width: int, stop: int) -> list[tuple[int, int]]:
    """Base shape, then halved (ceil) until the level fits in one `stop` x `stop` chunk."""
    shapes = [(height, width)]
    while max(shapes[-1]) > stop:
        h, w = shapes[-1]
        shapes.append((-(-h // 2), -(-w // 2)))
    return shapes


@dataclass
class PyramidBuilder:
    shapes: list[tuple[int, int]]  # (height, width) per output level, level 0 first
    shard: int  # shard edge, even, equal at every level
    samples: int
    dtype: np.dtype
    base: Region  # decoded base-level pixels into a buffer: (y, x, h, w, out) -> out[:h, :w]
    sink: Sink
    pool: Executor | None = None
    _bufs: dict[int, np.ndarray] = field(default_factory=dict)

    def build(self) -> None:
        top = len(self.shapes) - 1
        h, w = self.shapes[top]
        for sy in range(-(-h // self.shard)):
            for sx in range(-(-w // self.shard)):
                self._shard(top, sy, sx)
        self._bufs.clear()

    def _buffer(self, k: int) -> np.ndarray:
        """Pixels of level k's current shard, allocated once per level."""
        if k not in self._bufs:
            h, w = (min(self.shard, n) for n in self.shapes[k])
            self._bufs[k] = np.zeros((h, w, self.samples), dtype=self.dtype)
        return self._bufs[k]

    def _shard(self, k: int, sy: int, sx: int) -> np.ndarray:
        """Level k pixels of shard (sy, sx), in level k's buffer (valid until the next call
        for level k), after handing them to the sink."""
        s = self.shard
        height, width = self.shapes[k]
        y0, x0 = sy * s, sx * s
        h, w = min(s, height - y0), min(s, width - x0)
        region = self._buffer(k)[:h, :w]
        if k == 0:
            self.base(y0, x0, h, w, region)
        else:
            ch, cw = self.shapes[k - 1]
            half = s // 2
            for dy in (0, 1):
                for dx in (0, 1):
                    cy, cx = 2 * sy + dy, 2 * sx + dx
                    if cy * s >= ch or cx * s >= cw:
                        continue
                    child = self._shard(k - 1, cy, cx)
                    py, px = dy * half, dx * half
                    oh, ow = -(-child.shape[0] // 2), -(-child.shape[1] // 2)
                    downsample2(child, region[py : py + oh, px : px + ow], self.pool)
        self.sink(k, y0, x0, region)
        return region
