"""Slides crafted with raw bytes that a naive reader follows into a huge allocation."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path


def deflate_bomb(path: Path, side: int = 16384, image: tuple[int, int] | None = None) -> Path:
    """A tiled RGB TIFF of one `side` x `side` tile of zeros, deflate-compressed: under 1 MB on
    disk, 805 MB (side 16384) once decoded. Every structural check passes (one tile for one
    tile's worth of pixels, the data inside the file, a ratio a blank slide could have).
    `image` (width, height) makes the image that small inside its one huge tile: the shape of
    a real slide's level, which a reader still decodes by the tile."""
    width, height = image if image is not None else (side, side)
    comp = zlib.compressobj(9)
    row = bytes(side * 3 * 64)
    body = b"".join(comp.compress(row) for _ in range(side // 64)) + comp.flush()
    entries = [  # tag, type, count, value (SHORT=3, LONG=4)
        (256, 4, 1, width),
        (257, 4, 1, height),
        (258, 3, 3, 0),  # BitsPerSample 8,8,8: offset patched below
        (259, 3, 1, 8),  # deflate
        (262, 3, 1, 2),  # RGB
        (277, 3, 1, 3),
        (284, 3, 1, 1),
        (322, 4, 1, side),
        (323, 4, 1, side),
        (324, 4, 1, 0),  # TileOffsets: patched
        (325, 4, 1, len(body)),
    ]
    ifd_at = 8
    ifd_size = 2 + 12 * len(entries) + 4
    bits_at = ifd_at + ifd_size
    data_at = bits_at + 6
    out = bytearray(b"II*\x00" + struct.pack("<I", ifd_at))
    out += struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        if tag == 258:
            value = bits_at
        if tag == 324:
            value = data_at
        if kind == 3 and count == 1:
            out += struct.pack("<HHIHH", tag, kind, count, value, 0)
        else:
            out += struct.pack("<HHII", tag, kind, count, value)
    out += struct.pack("<I", 0)
    out += struct.pack("<HHH", 8, 8, 8)
    out += body
    path.write_bytes(bytes(out))
    return path
