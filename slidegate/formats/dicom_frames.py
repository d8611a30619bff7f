"""Frames of one DICOM instance: where each frame's bytes are, and how to decode one frame.

Pixel data is never loaded whole. For native (uncompressed) pixel data a frame is a fixed-size
slice. For encapsulated pixel data only the item headers are read once, to build the table of
fragment positions; frames are then mapped to fragments by the Extended Offset Table, else the
Basic Offset Table, else one fragment per frame, else the JPEG end-of-image markers
(PS3.5 A.4). Frames are read with `os.pread` (no shared file position) and decoded with
imagecodecs (JPEG, lossless JPEG, JPEG-LS, JPEG 2000 / HTJ2K, JPEG XL, RLE) or numpy
(native).
"""

from __future__ import annotations

import bisect
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

import imagecodecs
import numpy as np
import pydicom
from pydicom.dataset import Dataset

from slidegate.errors import CorruptSlideError, UnsupportedSlideError
from slidegate.formats.dicom_layout import Instance

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
_TS = "1.2.840.10008.1.2.4."
#: transfer syntax -> (compression name, decoder)
CODECS: dict[str, tuple[str, Callable[[bytes], np.ndarray]]] = {
    _TS + "50": ("JPEG", imagecodecs.jpeg8_decode),
    _TS + "51": ("JPEG", imagecodecs.jpeg8_decode),
    _TS + "57": ("JPEG_LOSSLESS", imagecodecs.ljpeg_decode),
    _TS + "70": ("JPEG_LOSSLESS", imagecodecs.ljpeg_decode),
    _TS + "80": ("JPEGLS", imagecodecs.jpegls_decode),
    _TS + "81": ("JPEGLS", imagecodecs.jpegls_decode),
    _TS + "90": ("JPEG2000", imagecodecs.jpeg2k_decode),
    _TS + "91": ("JPEG2000", imagecodecs.jpeg2k_decode),
    _TS + "201": ("JPEG2000", imagecodecs.jpeg2k_decode),
    _TS + "202": ("JPEG2000", imagecodecs.jpeg2k_decode),
    _TS + "203": ("JPEG2000", imagecodecs.jpeg2k_decode),
    _TS + "110": ("JPEGXL", imagecodecs.jpegxl_decode),
    _TS + "111": ("JPEGXL", imagecodecs.jpegxl_decode),
    _TS + "112": ("JPEGXL", imagecodecs.jpegxl_decode),
}
RLE = "1.2.840.10008.1.2.5"
DEFLATED = "1.2.840.10008.1.2.1.99"
#: compression name -> the imagecodecs codec that decodes it (its `available` says whether
#: this machine's imagecodecs build has it)
_IMAGECODECS = {
    "JPEG": "JPEG8",
    "JPEG_LOSSLESS": "LJPEG",
    "JPEGLS": "JPEGLS",
    "JPEG2000": "JPEG2K",
    "JPEGXL": "JPEGXL",
    "RLE": "DICOMRLE",
}
_NATIVE_PHOTOMETRIC = {"RGB", "MONOCHROME2"}
_ITEM = 0xFFFEE000
_SEQ_END = 0xFFFEE0DD
_LONG_VRS = {b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"UN", b"SQ", b"UT", b"UC", b"UR"}


def compression_name(transfer_syntax: str) -> str:
    if transfer_syntax in (IMPLICIT_LE, EXPLICIT_LE):
        return "NONE"
    if transfer_syntax in CODECS:
        return CODECS[transfer_syntax][0]
    if transfer_syntax == RLE:
        return "RLE"
    uid = pydicom.uid.UID(transfer_syntax)
    # a UID the standard does not define is source text: neither shown nor reported
    known = bool(uid.name) and uid.name != str(uid)
    name = uid.name if known else "unknown"
    shown = f"{transfer_syntax} ({name})" if known else "(not a standard UID)"
    fix = "transcode the slide"
    if transfer_syntax == DEFLATED:  # the whole data set is deflated: no frame is addressable
        fix = "inflate it first (DCMTK `dcmconv +te`, or pydicom: read and save as Explicit VR)"
    raise UnsupportedSlideError(
        f"DICOM transfer syntax {shown} is not supported; supported are native little endian, "
        f"JPEG, lossless JPEG, JPEG-LS, JPEG 2000/HTJ2K, JPEG XL and RLE: {fix}",
        reason=f"unsupported: DICOM transfer syntax {name}",
    )


def require_codec(transfer_syntax: str) -> str:
    """The compression name of a pyramid instance's transfer syntax, once it is known that
    this machine decodes it (readers and the audit's re-open use the same imagecodecs codec);
    else an UnsupportedSlideError naming the codec, raised at inventory before any work."""
    name = compression_name(transfer_syntax)
    codec = _IMAGECODECS.get(name)
    if codec is not None and not getattr(imagecodecs, codec).available:
        raise UnsupportedSlideError(
            f"DICOM transfer syntax {transfer_syntax} ({name}) cannot be decoded on this "
            f"machine: its imagecodecs build has no {codec} codec; install an imagecodecs "
            "build with it (the pinned wheel has it) or transcode the slide",
            reason=f"unsupported: no {name} decoder on this machine",
        )
    return name


def dtype_of(inst: Instance) -> np.dtype:
    if inst.bits == 8:
        return np.dtype(np.uint8)
    if inst.bits == 16:
        return np.dtype("<u2")
    raise UnsupportedSlideError(
        f"DICOM instance {inst.path.name} has {inst.bits} bits allocated; only 8 and 16 are "
        "supported",
        reason="unsupported: DICOM bits allocated",
    )


@dataclass(frozen=True)
class FrameTable:
    """Where each frame of one instance is: (offset, length) spans in the file."""

    spans: tuple[tuple[tuple[int, int], ...], ...]

    def __len__(self) -> int:
        return len(self.spans)

    def read(self, fd: int, index: int) -> bytes:
        return b"".join(os.pread(fd, length, offset) for offset, length in self.spans[index])


def open_instance(fh: BinaryIO) -> tuple[Dataset, int]:
    """Header of an instance and the file position of its Pixel Data element."""
    ds = pydicom.dcmread(fh, stop_before_pixels=True, force=True)
    return ds, fh.tell()


def _corrupt(inst: Instance, what: str) -> CorruptSlideError:
    return CorruptSlideError(
        f"DICOM instance {inst.path.name}: {what}; the file is damaged or truncated, restore it "
        "from the archive",
        reason="corrupt: DICOM pixel data",
    )


def _items(fh: BinaryIO, pos: int, size: int, inst: Instance) -> list[tuple[int, int]]:
    """(value offset, length) of every item of an encapsulated Pixel Data sequence."""
    items: list[tuple[int, int]] = []
    while pos + 8 <= size:
        fh.seek(pos)
        group, elem, length = struct.unpack("<HHL", fh.read(8))
        tag = group << 16 | elem
        if tag == _SEQ_END:
            return items
        if tag != _ITEM or length == 0xFFFFFFFF or pos + 8 + length > size:
            raise _corrupt(inst, "encapsulated pixel data has a bad item")
        items.append((pos + 8, length))
        pos += 8 + length
    raise _corrupt(inst, "encapsulated pixel data has no end")


def _by_offsets(
    frags: list[tuple[int, int]], base: int, starts: list[int], inst: Instance
) -> list[tuple[tuple[int, int], ...]]:
    """Frames from offsets (relative to the first fragment's item tag) of their first item."""
    rel = [off - 8 - base for off, _ in frags]
    bounds = sorted(set(starts))
    spans = []
    for i, start in enumerate(starts):
        k = bisect.bisect_right(bounds, start)
        end = bounds[k] if k < len(bounds) else rel[-1] + 1 if rel else 0
        lo, hi = bisect.bisect_left(rel, start), bisect.bisect_left(rel, end)
        if lo >= hi or rel[lo] != start:
            raise _corrupt(inst, f"frame {i} has no fragment at its offset")
        spans.append(tuple(frags[lo:hi]))
    return spans


def _by_markers(
    fh: BinaryIO, frags: list[tuple[int, int]], n: int, inst: Instance
) -> list[tuple[tuple[int, int], ...]]:
    """Group fragments into frames at the JPEG / JPEG 2000 end-of-image marker."""
    spans: list[tuple[tuple[int, int], ...]] = []
    current: list[tuple[int, int]] = []
    for off, length in frags:
        current.append((off, length))
        fh.seek(off + max(0, length - 10))
        if b"\xff\xd9" in fh.read(min(10, length)):
            spans.append(tuple(current))
            current = []
    if current or len(spans) != n:
        raise _corrupt(inst, "frame boundaries cannot be found (no offset table)")
    return spans


def _native_table(fh: BinaryIO, pos: int, size: int, inst: Instance, ds: Dataset) -> FrameTable:
    fh.seek(pos + 4)
    if inst.transfer_syntax == IMPLICIT_LE:
        (length,) = struct.unpack("<L", fh.read(4))
        start = pos + 8
    else:
        vr = fh.read(2)
        if vr in _LONG_VRS:
            fh.read(2)
            (length,) = struct.unpack("<L", fh.read(4))
            start = pos + 12
        else:
            (length,) = struct.unpack("<H", fh.read(2))
            start = pos + 8
    frame_bytes = inst.rows * inst.columns * inst.samples * inst.bits // 8
    if frame_bytes * inst.frames > min(length, size - start):
        raise _corrupt(inst, "native pixel data is shorter than its frames")
    return FrameTable(tuple(((start + i * frame_bytes, frame_bytes),) for i in range(inst.frames)))


def _extended(ds: Dataset) -> list[int] | None:
    table = ds.get("ExtendedOffsetTable")
    if not table:
        return None
    raw = bytes(table)
    return list(struct.unpack(f"<{len(raw) // 8}Q", raw))


def frame_table(fh: BinaryIO, pos: int, inst: Instance, ds: Dataset) -> FrameTable:
    """Build the frame table of the instance whose Pixel Data element starts at `pos`."""
    size = os.fstat(fh.fileno()).st_size
    fh.seek(pos)
    head = fh.read(8)
    if len(head) < 8 or struct.unpack("<HH", head[:4]) != (0x7FE0, 0x0010):
        raise _corrupt(inst, "no Pixel Data element where the header ends")
    if inst.transfer_syntax in (IMPLICIT_LE, EXPLICIT_LE):
        return _native_table(fh, pos, size, inst, ds)
    fh.seek(pos + 8)
    if struct.unpack("<L", fh.read(4))[0] != 0xFFFFFFFF:
        raise _corrupt(inst, "compressed pixel data is not encapsulated")
    items = _items(fh, pos + 12, size, inst)
    if not items:
        raise _corrupt(inst, "encapsulated pixel data has no offset table item")
    (bot_off, bot_len), frags = items[0], items[1:]
    n = inst.frames
    base = frags[0][0] - 8 if frags else 0
    ext = _extended(ds)
    if ext is not None and len(ext) == n:
        spans = _by_offsets(frags, base, ext, inst)
    elif bot_len >= 4 * n and n > 0:
        fh.seek(bot_off)
        starts = list(struct.unpack(f"<{n}L", fh.read(4 * n)))
        spans = _by_offsets(frags, base, starts, inst)
    elif len(frags) == n:
        spans = [(f,) for f in frags]
    elif n == 1 and frags:
        spans = [tuple(frags)]
    else:
        spans = _by_markers(fh, frags, n, inst)
    if len(spans) != n:
        raise _corrupt(inst, "the number of encapsulated frames differs from NumberOfFrames")
    return FrameTable(tuple(spans))


def decode(data: bytes, inst: Instance) -> np.ndarray:
    """One frame as a (rows, columns, samples) array."""
    dtype = dtype_of(inst)
    shape = (inst.rows, inst.columns, inst.samples)
    if inst.transfer_syntax in (IMPLICIT_LE, EXPLICIT_LE):
        if inst.photometric not in _NATIVE_PHOTOMETRIC:
            raise UnsupportedSlideError(
                f"DICOM instance {inst.path.name}: native photometric interpretation "
                f"{inst.photometric} is not supported (RGB or MONOCHROME2 only)",
                reason="unsupported: DICOM photometric interpretation",
            )
        flat = np.frombuffer(data, dtype=dtype)
        if inst.planar == 1 and inst.samples > 1:
            arr = flat.reshape(inst.samples, inst.rows, inst.columns).transpose(1, 2, 0)
        else:
            arr = flat.reshape(shape)
        return np.ascontiguousarray(arr, dtype=dtype.newbyteorder("="))
    if inst.transfer_syntax == RLE:  # one segment per sample plane (PS3.5 G)
        flat = np.frombuffer(imagecodecs.dicomrle_decode(data, dtype.str), dtype)
        if flat.size != inst.rows * inst.columns * inst.samples:
            raise _corrupt(inst, "a decoded frame has another size than Rows x Columns")
        planes = flat.reshape(inst.samples, inst.rows, inst.columns)
        return np.ascontiguousarray(planes.transpose(1, 2, 0), dtype=dtype.newbyteorder("="))
    arr = np.asarray(CODECS[inst.transfer_syntax][1](data))
    if arr.ndim == 2:
        arr = arr[:, :, np.newaxis]
    if arr.shape != shape:
        raise _corrupt(inst, "a decoded frame has another size than Rows x Columns")
    return arr.astype(dtype.newbyteorder("="), copy=False)
