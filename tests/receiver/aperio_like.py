"""Aperio-like tiled TIFFs crafted with imagecodecs + tifffile (not slidegate.synth): JPEG
tiles coded in RGB (no YCbCr transform) with no JFIF / Adobe marker, their quantisation and
Huffman tables moved into the page's shared JPEGTables tag, as Aperio scanners write them."""

from __future__ import annotations

from pathlib import Path

import imagecodecs
import numpy as np
import tifffile

SOI, EOI = b"\xff\xd8", b"\xff\xd9"


def segments(stream: bytes) -> list[bytes]:
    """The marker segments of a JPEG stream up to its first scan, then the scan to the end."""
    out, pos = [], 2
    while stream[pos + 1] != 0xDA:
        n = int.from_bytes(stream[pos + 2 : pos + 4], "big")
        out.append(stream[pos : pos + 2 + n])
        pos += 2 + n
    out.append(stream[pos:])
    return out


def table_segments(tables: bytes) -> bytes:
    """The segments of a JPEGTables stream between its SOI and EOI."""
    assert tables[:2] == SOI and tables[-2:] == EOI
    return tables[2:-2]


def split_tables(stream: bytes) -> tuple[bytes, bytes]:
    """(tables: SOI DQT DHT EOI, abbreviated tile: SOI SOF SOS... EOI), APPn dropped."""
    segs = segments(stream)
    tables = [s for s in segs[:-1] if s[1] in (0xDB, 0xC4)]
    rest = [s for s in segs[:-1] if s[1] not in (0xDB, 0xC4) and not 0xE0 <= s[1] <= 0xEF]
    return SOI + b"".join(tables) + EOI, SOI + b"".join(rest) + segs[-1]


def numbered_components(stream: bytes) -> bytes:
    """`stream` with its components numbered 1, 2, 3 in SOF and SOS (libjpeg names RGB-coded
    components 'R', 'G', 'B', which tells a decoder; Aperio's tiles give no such hint)."""
    out = bytearray(stream)
    pos = 2
    while True:
        marker, n = out[pos + 1], int.from_bytes(out[pos + 2 : pos + 4], "big")
        if marker == 0xC0:
            for k in range(out[pos + 9]):
                out[pos + 10 + 3 * k] = k + 1
        if marker == 0xDA:
            for k in range(out[pos + 4]):
                out[pos + 5 + 2 * k] = k + 1
            return bytes(out)
        pos += 2 + n


def image(h: int, w: int, seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([(y * 3 + x) % 256, (x * 2) % 256, (y + 2 * x) % 256], axis=-1)
    return (base + rng.integers(0, 40, (h, w, 3))).clip(0, 255).astype(np.uint8)


def write_aperio_like(path: Path, img: np.ndarray, tile: int = 128, rgb: bool = True,
                      extra: dict[int, bytes] | None = None) -> Path:  # fmt: skip
    """`img` as one tiled JPEG page with shared JPEGTables; `rgb`: RGB-coded (else YCbCr).
    `extra`: tile index -> bytes inserted right after that tile's SOI (a crafted segment)."""
    h, w = img.shape[:2]
    tables, tiles = b"", []
    for ty in range(0, h, tile):
        for tx in range(0, w, tile):
            block = np.zeros((tile, tile, 3), np.uint8)
            part = img[ty : ty + tile, tx : tx + tile]
            block[: part.shape[0], : part.shape[1]] = part
            cs = {"outcolorspace": "RGB"} if rgb else {}
            enc = bytes(imagecodecs.jpeg8_encode(block, level=85, **cs))  # type: ignore[arg-type]
            tables, abbreviated = split_tables(numbered_components(enc) if rgb else enc)
            k = len(tiles)
            if extra and k in extra:
                abbreviated = abbreviated[:2] + extra[k] + abbreviated[2:]
            tiles.append(abbreviated)
    with tifffile.TiffWriter(path) as tw:
        tw.write(
            iter(tiles), shape=img.shape, dtype=np.uint8, tile=(tile, tile), compression=7,
            photometric="rgb", metadata=None,
            compressionargs={"outcolorspace": "RGB"} if rgb else None,
            extratags=[(347, 7, len(tables), tables, True)],
        )  # fmt: skip
    return path
