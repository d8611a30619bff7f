"""The fast pass-through pieces: one-buffer shard assembly and the cached tile-header check."""

from __future__ import annotations

import imagecodecs
import numpy as np
import pytest

from slidegate.convert.markers import MetadataInTile, check_jpeg
from slidegate.convert.passthrough import HeaderCheck
from slidegate.convert.shards import shard_bytes, shard_from_buffer


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


def test_header_check_parses_new_headers_and_refuses_metadata() -> None:
    tiles = _tiles(40)
    com = tiles[7][:2] + b"\xff\xfe\x00\x07secret" + tiles[7][2:]  # a COM segment
    buf = b"".join([*tiles, com])
    lengths = [len(t) for t in [*tiles, com]]
    starts = np.cumsum([0, *lengths[:-1]])
    counts = np.array(lengths)
    check = HeaderCheck(check_jpeg)
    check.verify(memoryview(buf), starts[:-1], counts[:-1])  # 40 tiles, one header parsed
    assert len(check.known) == 1
    with pytest.raises(MetadataInTile):
        check.verify(memoryview(buf), starts, counts)
    truncated = counts.copy()
    truncated[0] = len(check.known[0]) + 1  # too short to be judged by its header alone
    with pytest.raises(MetadataInTile):
        check.verify(memoryview(buf), starts[:1], truncated[:1])
