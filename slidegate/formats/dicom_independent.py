"""Frames of a DICOM instance as the audit's independent re-open reads them.

pydicom finds the frames (its own Basic / Extended Offset Table handling, `pydicom.encaps`),
never slidegate's frame table (dicom_frames). A frame is decoded by pydicom's decoder for the
transfer syntax where this machine has one (native, RLE, JPEG baseline and JPEG 2000 through
Pillow), else by imagecodecs, the codec the readers use (`dicom_frames.CODECS`): pydicom 3.0
has no JPEG XL decoder at all, and JPEG-LS, lossless JPEG and HTJ2K only through plugins
(pylibjpeg, gdcm, pyjpegls) that are not installed here. Which transfer syntaxes can be read
at all is checked at inventory (`dicom_frames.require_codec`), so a missing codec is named
before any conversion, never discovered here as a decoder's error.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames, get_frame
from pydicom.pixels import iter_pixels, pixel_array

from slidegate.formats.dicom_frames import CODECS

#: (7FE0,0010), VR OB, 2 reserved bytes, undefined length: where the encapsulated items begin
_ENCAPSULATED_HEADER = 12


@cache
def pydicom_decodes(transfer_syntax: str) -> bool:
    """pydicom has a decoder for `transfer_syntax` on this machine."""
    from pydicom.pixels.decoders.base import get_decoder

    try:
        return bool(get_decoder(transfer_syntax).is_available)
    except (NotImplementedError, ValueError):
        return False


def _ts(ds: Dataset) -> str:
    return str(ds.file_meta.TransferSyntaxUID)


def _shaped(arr: np.ndarray, ds: Dataset) -> np.ndarray:
    rows, columns = int(ds.Rows), int(ds.Columns)
    return arr.reshape(rows, columns, -1)


def _extended(ds: Dataset) -> tuple[bytes, bytes] | None:
    table, lengths = ds.get("ExtendedOffsetTable"), ds.get("ExtendedOffsetTableLengths")
    return (bytes(table), bytes(lengths)) if table and lengths else None


def _frames(file: Path, ds: Dataset) -> Iterator[bytes]:
    """Every frame's encoded bytes, found by pydicom."""
    n = int(ds.get("NumberOfFrames", 1) or 1)
    with open(file, "rb") as fh:
        pydicom.dcmread(fh, stop_before_pixels=True, force=True)
        fh.seek(fh.tell() + _ENCAPSULATED_HEADER)
        yield from generate_frames(fh, number_of_frames=n, extended_offsets=_extended(ds))


def frames(file: Path, ds: Dataset) -> Iterator[np.ndarray]:
    """Every frame of the instance in order, each (rows, columns, samples)."""
    ts = _ts(ds)
    if pydicom_decodes(ts):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for px in iter_pixels(str(file)):
                yield _shaped(np.asarray(px), ds)
        return
    decode = CODECS[ts][1]
    for data in _frames(file, ds):
        yield _shaped(np.asarray(decode(data)), ds)


def frame(file: Path, index: int, ds: Dataset) -> np.ndarray:
    """Frame `index` (0-based) of the instance, (rows, columns, samples)."""
    ts = _ts(ds)
    if pydicom_decodes(ts):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _shaped(np.asarray(pixel_array(str(file), index=index)), ds)
    n = int(ds.get("NumberOfFrames", 1) or 1)
    with open(file, "rb") as fh:
        pydicom.dcmread(fh, stop_before_pixels=True, force=True)
        fh.seek(fh.tell() + _ENCAPSULATED_HEADER)
        data = get_frame(fh, index, number_of_frames=n, extended_offsets=_extended(ds))
    return _shaped(np.asarray(CODECS[ts][1](data)), ds)
