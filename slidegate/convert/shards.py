"""Shards assembled by slidegate from already-encoded chunk payloads (Zarr v3 sharding_indexed).

Layout (zarr v3 sharding spec, index at the end, index codecs [bytes little-endian, crc32c]):
the chunk payloads back to back, then an index of one (offset, nbytes) uint64 pair per inner
chunk in C order over the shard's chunk grid, then the crc32c of the index (uint32 LE). A missing
chunk has offset = nbytes = 2**64 - 1 and reads as the fill value. zarr has no public API to put
pre-encoded chunks into a shard, hence this module; `tests/convert` checks zarr reads the result.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import google_crc32c
import numpy as np
import zarr
from zarr.codecs import BytesCodec, Crc32cCodec, ShardingCodec

EMPTY = np.uint64(2**64 - 1)
#: most buffers one gathered write takes
_IOV_MAX = min(os.sysconf("SC_IOV_MAX"), 1024)


def check_layout(arr: zarr.Array) -> None:
    """Refuse an array whose shard layout is not the one `shard_bytes` writes."""
    codecs: Any = arr.metadata.codecs  # type: ignore[union-attr]
    ok = len(codecs) == 1 and isinstance(codecs[0], ShardingCodec)
    if ok:
        sharding = codecs[0]
        index = [type(c) for c in sharding.index_codecs]
        ok = sharding.index_location.value == "end" and index == [BytesCodec, Crc32cCodec]
        ok = ok and all(
            getattr(c, "endian", None) in (None, "little")
            or getattr(getattr(c, "endian", None), "value", "") == "little"
            for c in sharding.index_codecs
        )
    if not ok:
        raise ValueError("array is not sharded with an end index [bytes, crc32c]")


def shard_bytes(payloads: Sequence[bytes | None]) -> bytes | None:
    """One shard from its inner chunks' encoded bytes, in C order (None = missing chunk).
    Returns None when every chunk is missing (the shard is then not written at all)."""
    if all(p is None for p in payloads):
        return None
    index = np.full((len(payloads), 2), EMPTY, dtype="<u8")
    parts: list[bytes] = []
    offset = 0
    for i, payload in enumerate(payloads):
        if payload is None:
            continue
        index[i] = (offset, len(payload))
        parts.append(payload)
        offset += len(payload)
    parts += _index_tail(index)
    return b"".join(parts)


def shard_from_buffer(
    buf: memoryview, starts: np.ndarray, counts: np.ndarray
) -> list[bytes | memoryview] | None:
    """The parts of one shard (to write back to back) whose inner chunk i (C order) is
    `buf[starts[i] : starts[i] + counts[i]]` (count 0 = missing chunk), vectorised: chunks that
    lie back to back in `buf` are one part (a view, not a copy), then the index. None when
    every chunk is missing."""
    present = np.flatnonzero(counts > 0)
    if not present.size:
        return None
    begin = starts[present].astype(np.int64)
    nbytes = counts[present].astype(np.int64)
    end = begin + nbytes
    index = np.full((counts.size, 2), EMPTY, dtype="<u8")
    index[present, 0] = np.cumsum(nbytes) - nbytes
    index[present, 1] = nbytes
    cut = np.flatnonzero(begin[1:] != end[:-1]) + 1
    firsts = np.concatenate(([0], cut)).tolist()
    lasts = np.concatenate((cut - 1, [present.size - 1])).tolist()
    b, e = begin.tolist(), end.tolist()
    parts: list[bytes | memoryview] = [buf[b[i] : e[j]] for i, j in zip(firsts, lasts, strict=True)]
    return parts + _index_tail(index)


def spliced_from_buffer(
    buf: memoryview, starts: np.ndarray, counts: np.ndarray, prefix: bytes
) -> list[bytes | memoryview] | None:
    """The parts of one shard whose inner chunk i is `prefix` followed by
    `buf[starts[i] + 2 : starts[i] + counts[i]]` (a tile with its 2-byte SOI replaced; count 0
    = missing chunk): the index vectorised, two parts per chunk (the shared prefix and a view),
    no copy. None when every chunk is missing."""
    present = np.flatnonzero(counts > 0)
    if not present.size:
        return None
    begin = starts[present].astype(np.int64) + 2
    end = starts[present].astype(np.int64) + counts[present].astype(np.int64)
    nbytes = end - begin + len(prefix)
    index = np.full((counts.size, 2), EMPTY, dtype="<u8")
    index[present, 0] = np.cumsum(nbytes) - nbytes
    index[present, 1] = nbytes
    parts: list[bytes | memoryview] = []
    for b, e in zip(begin.tolist(), end.tolist(), strict=True):
        parts += (prefix, buf[b:e])
    return parts + _index_tail(index)


def _index_tail(index: np.ndarray) -> list[bytes]:
    raw_index = index.tobytes()
    crc = np.uint32(google_crc32c.value(raw_index)).astype("<u4").tobytes()
    return [raw_index, crc]


def shard_path(array_dir: Path, coords: Sequence[int]) -> Path:
    """Where the shard at shard-grid `coords` lives (default chunk key encoding, "/")."""
    return array_dir.joinpath("c", *(str(int(c)) for c in coords))


def write_shard(array_dir: Path, coords: Sequence[int], payloads: Sequence[bytes | None]) -> int:
    """Write one shard file; return its size (0 when every chunk is missing)."""
    data = shard_bytes(payloads)
    if data is None:
        return 0
    path = shard_path(array_dir, coords)
    path.parent.mkdir(parents=True, exist_ok=True)
    return put_shard(path, data)


def put_shard(path: Path, data: bytes | Sequence[bytes | memoryview]) -> int:
    """Write a shard file (its folder exists), from one buffer or from parts written back to
    back with one gathered write, atomically; return its size."""
    parts = [data] if isinstance(data, bytes) else list(data)
    size = sum(len(p) for p in parts)
    tmp = f"{path}.part"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for i in range(0, len(parts), _IOV_MAX):  # at most IOV_MAX buffers per gathered write
            batch = parts[i : i + _IOV_MAX]
            done = os.writev(fd, batch)
            want = sum(len(p) for p in batch)
            if done < want:  # a short write: the rest in one piece
                rest = memoryview(b"".join(batch))[done:]
                while rest:
                    rest = rest[os.write(fd, rest) :]
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return size


def read_index(data: bytes, n_chunks: int) -> np.ndarray:
    """(offset, nbytes) per inner chunk of a shard written here; checks the crc32c."""
    size = n_chunks * 16
    raw, crc = data[-size - 4 : -4], data[-4:]
    if np.frombuffer(crc, "<u4")[0] != google_crc32c.value(raw):
        raise ValueError("shard index checksum mismatch")
    return np.frombuffer(raw, "<u8").reshape(n_chunks, 2)
