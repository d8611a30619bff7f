"""Independent pixel check of an OME-Zarr output against a DICOM WSI source (audit re-open).

Uses only pydicom (`pydicom.pixels.iter_pixels`, its own decoders and offset-table handling)
and zarr, none of slidegate's DICOM reader: the source instances are found again by size
(VOLUME instances whose total pixel matrix has the planned level's size), frames are decoded one
at a time by pydicom and compared with the same region of the output. Lossy transfer syntaxes
(JPEG baseline/extended, JPEG-LS near-lossless, JPEG 2000 lossy) are decoded by two different
libraries here and at conversion, so a difference of up to `LOSSY_TOLERANCE` grey levels is
accepted there; lossless and native frames must match exactly. Problem texts name the level,
never a value or a file name.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import zarr
from pydicom.dataset import Dataset

from slidegate.formats.dicom_independent import frames
from slidegate.formats.dicom_layout import is_dicom_file, kind_of
from slidegate.models import DeidPlan, LevelFacts

LOSSY_TOLERANCE = 2
_LOSSY_TS = {
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.51",
    "1.2.840.10008.1.2.4.81",
    "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.4.203",
}


def _volume_headers(source: Path) -> list[tuple[Path, Dataset]]:
    files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
    out: list[tuple[Path, Dataset]] = []
    for file in files:
        try:
            if not is_dicom_file(file):  # the files the layout reads, preamble or not
                continue
            ds = pydicom.dcmread(str(file), stop_before_pixels=True, force=True)
        except Exception:
            continue
        if kind_of(ds) is None:  # VOLUME, or an untyped WSI instance with tiled frames
            out.append((file, ds))
    return out


def _positions(
    ds: Dataset, n: int, th: int, tw: int, columns: int, offset: int
) -> list[tuple[int, int]]:
    """Top-left pixel (y, x) of each frame: per-frame plane positions, else row-major (frame
    numbers counted from `offset`, the frames of earlier concatenation parts)."""
    per_frame: Any = ds.get("PerFrameFunctionalGroupsSequence")
    organisation = str(ds.get("DimensionOrganizationType", "")).upper()
    if per_frame and organisation != "TILED_FULL" and "PlanePositionSlideSequence" in per_frame[0]:
        out = []
        for item in per_frame:
            plane = item.PlanePositionSlideSequence[0]
            out.append(
                (
                    int(plane.RowPositionInTotalImagePixelMatrix) - 1,
                    int(plane.ColumnPositionInTotalImagePixelMatrix) - 1,
                )
            )
        return out
    return [((i // columns) * th, (i % columns) * tw) for i in range(offset, offset + n)]


def _compare_level(i: int, lv: LevelFacts, arr: zarr.Array, parts: list[Any]) -> str | None:
    offset = 0
    for file, ds in parts:
        th, tw = int(ds.Rows), int(ds.Columns)
        columns = -(-lv.width // tw)
        n = int(ds.get("NumberOfFrames", 1) or 1)
        ts = str(ds.file_meta.TransferSyntaxUID)
        tolerance = LOSSY_TOLERANCE if ts in _LOSSY_TS else 0
        positions = _positions(ds, n, th, tw, columns, offset)
        if len(positions) != n:
            return f"level {i}: frame positions do not match the number of frames"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for k, frame in enumerate(frames(file, ds)):
                y, x = positions[k]
                h, w = min(th, lv.height - y), min(tw, lv.width - x)
                if h <= 0 or w <= 0:
                    continue
                got = np.asarray(frame)
                got = got[:, :, np.newaxis] if got.ndim == 2 else got
                out = np.asarray(arr[:, y : y + h, x : x + w]).transpose(1, 2, 0)
                diff = np.abs(out.astype(np.int64) - got[:h, :w].astype(np.int64)).max(initial=0)
                if diff > tolerance:
                    return (
                        f"level {i}: pixels differ from pydicom's decode of the source (max "
                        f"difference {diff} > tolerance {tolerance}) in the frame at y={y}, x={x}"
                    )
        offset += n
    return None


def compare_dicom_levels(
    arrays: Mapping[int, zarr.Array], plan: DeidPlan, source: Path
) -> list[str]:
    """Compare every written level with pydicom's decode of the source frames."""
    headers = _volume_headers(Path(source))
    problems = []
    for i, arr in arrays.items():
        lv = plan.levels[i]
        parts = [
            (f, ds)
            for f, ds in headers
            if (int(ds.TotalPixelMatrixRows), int(ds.TotalPixelMatrixColumns))
            == (lv.height, lv.width)
        ]
        parts.sort(key=lambda p: int(p[1].get("InConcatenationNumber", 1) or 1))
        if not parts:
            problems.append(f"level {i}: no VOLUME instance of the source has the planned size")
            continue
        try:
            problem = _compare_level(i, lv, arr, parts)
        except Exception as exc:  # a decode error in either reader
            problem = f"level {i}: pixels could not be compared ({type(exc).__name__})"
        if problem:
            problems.append(problem)
    return problems
