"""The fast pass-through pieces: one-buffer shard assembly and the vectorised band cleaner."""

from __future__ import annotations

import imagecodecs
import numpy as np
import pytest

from slidegate.convert.shards import shard_bytes, shard_from_buffer
from slidegate.payload import BandCleaner, Unparsable


def _tiles(n: int) -> list[bytes]:
    rng = np.random.default_rng(3)
    return [
        bytes(imagecodecs.jpeg8_encode(rng.integers(0, 255, (16, 16, 3), np.uint8), level=80))
        for _ in range(n)
    ]


def test_shard_from_buffer_equals_shard_bytes() -> None:
    tiles = _tiles(5)
    buf = b"".join(tiles)
    starts = np.cumsum([0] + [len(t) for t in tiles[:-1]])
    counts = np.array([len(t) for t in tiles])
    # C order: tile 3, a missing chunk, tiles 0 1 2 (back to back), tile 4 twice
    order = [3, -1, 0, 1, 2, 4, 4]
    s = np.array([starts[i] if i >= 0 else 0 for i in order])
    c = np.array([counts[i] if i >= 0 else 0 for i in order])
    payloads = [tiles[i] if i >= 0 else None for i in order]
    parts = shard_from_buffer(memoryview(buf), s, c)
    assert parts is not None and len(parts) == 6  # 3 | 0 1 2 (one view) | 4 | 4 | index | crc
    assert b"".join(parts) == shard_bytes(payloads)
    assert shard_from_buffer(memoryview(buf), s, np.zeros_like(c)) is None


def test_band_cleaner_learns_headers_and_cleans_metadata() -> None:
    tiles = _tiles(40)
    com = tiles[7][:2] + b"\xff\xfe\x00\x08secret" + tiles[7][2:]  # a COM segment
    buf = b"".join([*tiles, com])
    lengths = [len(t) for t in [*tiles, com]]
    starts = np.cumsum([0, *lengths[:-1]])
    counts = np.array(lengths)
    cleaner = BandCleaner("jpeg")
    assert cleaner.clean(memoryview(buf), starts[:-1], counts[:-1]) == {}  # one header walked
    assert len(cleaner.known) == 1
    assert cleaner.clean(memoryview(buf), starts, counts) == {40: tiles[7]}
    truncated = counts.copy()
    truncated[0] = len(cleaner.known[0][0]) + 1  # its scan never ends
    with pytest.raises(Unparsable):
        cleaner.clean(memoryview(buf), starts[:1], truncated[:1])
