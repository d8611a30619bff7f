"""Seeded damage to real slide files: raw-byte mutations aimed at headers, IFDs, tag counts and
DICOM / CZI length fields. Each variant is (name, bytes); the same seed gives the same variants.

Nothing here uses slidegate: structure is found with `struct` on the bytes themselves (TIFF
IFD offsets), so the mutations do not depend on the code under test."""

from __future__ import annotations

import random
import struct
from collections.abc import Callable

Mutation = Callable[[bytes, random.Random], bytes]


def tiff_ifds(data: bytes, limit: int = 64) -> tuple[str, bool, list[int]]:
    """(byte order, bigtiff, IFD offsets) by walking the chain on raw bytes; [] if not TIFF."""
    if data[:2] not in (b"II", b"MM") or len(data) < 16:
        return "<", False, []
    order = "<" if data[:2] == b"II" else ">"
    big = struct.unpack_from(order + "H", data, 2)[0] == 43
    offsets: list[int] = []
    off = struct.unpack_from(order + ("Q" if big else "I"), data, 8 if big else 4)[0]
    while off and off not in offsets and len(offsets) < limit and off + 20 < len(data):
        offsets.append(off)
        n = struct.unpack_from(order + ("Q" if big else "H"), data, off)[0]
        pos = off + (8 + n * 20 if big else 2 + n * 12)
        if pos + 8 > len(data):
            break
        off = struct.unpack_from(order + ("Q" if big else "I"), data, pos)[0]
    return order, big, offsets


def _entries(data: bytes) -> list[int]:
    """Positions of every IFD entry of every IFD."""
    order, big, offsets = tiff_ifds(data)
    found: list[int] = []
    for off in offsets:
        n = struct.unpack_from(order + ("Q" if big else "H"), data, off)[0]
        first, size = (off + 8, 20) if big else (off + 2, 12)
        count = min(n, 512, (len(data) - first) // size)
        found += [first + i * size for i in range(count)]
    return found


def truncate(data: bytes, rng: random.Random) -> bytes:
    cut = rng.choice([0, 1, 4, 7, 8, 15, 16, 100, rng.randrange(len(data))])
    return data[: min(cut, len(data) - 1)]


def flip_bits(data: bytes, rng: random.Random) -> bytes:
    """A few bit flips, most of them in the first 4 KiB (headers, the first IFD)."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        span = 4096 if rng.random() < 0.7 else len(out)
        pos = rng.randrange(min(span, len(out)))
        out[pos] ^= 1 << rng.randrange(8)
    return bytes(out)


def overwrite_header(data: bytes, rng: random.Random) -> bytes:
    """A byte range near the start overwritten with noise, 0x00 or 0xFF."""
    out = bytearray(data)
    start = rng.randrange(min(2048, len(out)))
    length = rng.randint(1, 64)
    fill = rng.choice([b"\xff", b"\x00", None])
    noise = bytes(rng.randrange(256) for _ in range(length)) if fill is None else fill * length
    out[start : start + length] = noise[: len(out) - start]
    return bytes(out)


def overwrite_entry(data: bytes, rng: random.Random) -> bytes:
    """One IFD entry's type, count or value field set to an extreme (TIFF), else a header range."""
    entries = _entries(data)
    if not entries:
        return overwrite_header(data, rng)
    order, big, _ = tiff_ifds(data)
    pos = rng.choice(entries)
    out = bytearray(data)
    field = rng.choice(["type", "count", "value"])
    extreme = rng.choice([0, 1, 0x7FFFFFFF, 0xFFFFFFFF, len(data), len(data) - 1, 2**31 + 7])
    if field == "type":
        struct.pack_into(order + "H", out, pos + 2, rng.choice([0, 13, 16, 99, 0xFFFF]))
    elif field == "count":
        fmt = "Q" if big else "I"
        struct.pack_into(order + fmt, out, pos + 4, extreme if not big else extreme * 1024)
    else:
        fmt, at = ("Q", pos + 12) if big else ("I", pos + 8)
        struct.pack_into(order + fmt, out, at, extreme)
    return bytes(out)


def huge_dimension(data: bytes, rng: random.Random) -> bytes:
    """ImageWidth / ImageLength / TileWidth / TileLength / SamplesPerPixel of one IFD made huge
    (or zero) in place."""
    order, big, _ = tiff_ifds(data)
    targets = [
        p
        for p in _entries(data)
        if struct.unpack_from(order + "H", data, p)[0] in (256, 257, 277, 322, 323, 258)
    ]
    if not targets:
        return overwrite_header(data, rng)
    pos = rng.choice(targets)
    out = bytearray(data)
    kind = struct.unpack_from(order + "H", data, pos + 2)[0]
    value = rng.choice([0, 1, 3, 65535, 2**31 - 1, 2**32 - 1])
    at = pos + (12 if big else 8)
    if kind == 3:  # SHORT
        struct.pack_into(order + "H", out, at, min(value, 0xFFFF))
    else:
        struct.pack_into(order + "I", out, at, value & 0xFFFFFFFF)
    return bytes(out)


def duplicate_ifd(data: bytes, rng: random.Random) -> bytes:
    """The next-IFD pointer of one IFD set to an earlier IFD (a loop) or to the same IFD as the
    next-but-one (pages shared), or the first IFD offset pointed at the last IFD."""
    order, big, offsets = tiff_ifds(data)
    if len(offsets) < 2:
        return overwrite_header(data, rng)
    out = bytearray(data)
    fmt = "Q" if big else "I"
    i = rng.randrange(len(offsets))
    n = struct.unpack_from(order + ("Q" if big else "H"), data, offsets[i])[0]
    pos = offsets[i] + (8 + n * 20 if big else 2 + n * 12)
    choice = rng.random()
    if choice < 0.6:
        struct.pack_into(order + fmt, out, pos, offsets[rng.randrange(i + 1)])
    elif choice < 0.8:
        struct.pack_into(order + fmt, out, 8 if big else 4, offsets[-1])
    else:
        struct.pack_into(order + fmt, out, pos, rng.choice([len(data), 2**32 - 2, 1]))
    return bytes(out)


def dicom_lengths(data: bytes, rng: random.Random) -> bytes:
    """A DICOM element's 16- or 32-bit length field near the start set to an extreme, or its VR
    bytes replaced (explicit VR); a header range otherwise."""
    if data[128:132] != b"DICM":
        return overwrite_header(data, rng)
    out = bytearray(data)
    pos = rng.randrange(132, min(len(data) - 8, 4096))
    if rng.random() < 0.5:
        out[pos : pos + 2] = rng.choice([b"ZZ", b"\x00\x00", b"SQ", b"OB", b"UN", b"UL"])
    else:
        struct.pack_into("<I", out, pos, rng.choice([0xFFFFFFFF, 0x7FFFFFFF, len(data) * 4, 0]))
    return bytes(out)


def czi_segments(data: bytes, rng: random.Random) -> bytes:
    """A CZI segment header's allocated/used size fields set to an extreme."""
    if not data.startswith(b"ZISRAWFILE"):
        return overwrite_header(data, rng)
    out = bytearray(data)
    starts = [i for i in range(0, min(len(data), 1 << 20), 32) if data[i : i + 6] == b"ZISRAW"]
    pos = rng.choice(starts) if starts else 0
    struct.pack_into(
        "<q", out, pos + 16 + rng.choice([0, 8]), rng.choice([-1, 0, 2**40, 2**62, len(data) * 8])
    )
    return bytes(out)


MUTATIONS: dict[str, Mutation] = {
    "truncate": truncate,
    "flip": flip_bits,
    "overwrite": overwrite_header,
    "entry": overwrite_entry,
    "dimension": huge_dimension,
    "ifd": duplicate_ifd,
    "dicom": dicom_lengths,
    "czi": czi_segments,
}


def variant(data: bytes, index: int, seed: int) -> tuple[str, bytes]:
    """Damaged copy number `index` of `data`: the mutation kinds in turn, each seeded by
    (seed, index), so any one variant can be rebuilt alone from its name."""
    rng = random.Random(seed * 1_000_003 + index)
    kinds = list(MUTATIONS)
    kind = kinds[index % len(kinds)]
    return f"{kind}-{index}", MUTATIONS[kind](data, rng)
