"""Damaged slide files made from a good TIFF: each breaks the file in one specific way."""

from __future__ import annotations

import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import tifffile


def _ifd_layout(path: Path) -> tuple[str, bool, list[int]]:
    with tifffile.TiffFile(path) as tif:
        return tif.byteorder, tif.is_bigtiff, [p.offset for p in tif.pages]


def _next_pointer_pos(data: bytes, order: str, big: bool, ifd: int) -> int:
    """Position of the 'next IFD' pointer at the end of the IFD at `ifd`."""
    if big:
        (n,) = struct.unpack_from(order + "Q", data, ifd)
        return ifd + 8 + n * 20
    (n,) = struct.unpack_from(order + "H", data, ifd)
    return ifd + 2 + n * 12


def _patch_tag(path: Path, code: int, value: int | tuple[int, ...]) -> None:
    with tifffile.TiffFile(path, mode="r+") as tif:
        page = tif.pages.first
        page.tags[code].overwrite(value)


def truncated(good: Path, out: Path) -> Path:
    data = good.read_bytes()
    out.write_bytes(data[: len(data) * 6 // 10])
    return out


def bad_offsets(good: Path, out: Path) -> Path:
    """Level-0 tile offsets far beyond the end of the file."""
    shutil.copyfile(good, out)
    with tifffile.TiffFile(out) as tif:
        n = len(tif.pages[0].dataoffsets)
    _patch_tag(out, 324, tuple(2**31 + i * 4096 for i in range(n)))
    return out


def absurd_dimensions(good: Path, out: Path) -> Path:
    """Level 0 claims 4 billion x 4 billion pixels."""
    shutil.copyfile(good, out)
    _patch_tag(out, 256, 2**32 - 1)
    _patch_tag(out, 257, 2**32 - 1)
    return out


def ifd_loop(good: Path, out: Path) -> Path:
    """The last IFD points back to the first: a reader that follows the chain never ends."""
    data = bytearray(good.read_bytes())
    order, big, offsets = _ifd_layout(good)
    pos = _next_pointer_pos(bytes(data), order, big, offsets[-1])
    struct.pack_into(order + ("Q" if big else "I"), data, pos, offsets[0])
    out.write_bytes(bytes(data))
    return out


def zero_bytes(good: Path, out: Path) -> Path:
    out.write_bytes(b"")
    return out


DAMAGES: dict[str, Callable[[Path, Path], Path]] = {
    "truncated": truncated,
    "bad-offsets": bad_offsets,
    "absurd-dimensions": absurd_dimensions,
    "ifd-loop": ifd_loop,
    "zero-bytes": zero_bytes,
}
