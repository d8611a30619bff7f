"""Independent readers of the source pixels for the audit re-open, one per family.

None of them uses slidegate's readers or converter: TIFF family through tifffile's own series
and zarr store, DICOM WSI through pydicom's frame access (one frame at a time; decoded by
pydicom, else by imagecodecs where pydicom has no decoder here: formats/dicom_independent.py),
CZI through czifile and MRXS through openslide-python (vendor_pixels.py). `open_source` picks
one by sniffing the file; each gives, for a planned level, a `Reader` of (samples, h, w)
regions, or None when no level of the source has the planned size.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import tifffile
import zarr

from slidegate.audit.pixels import Reader
from slidegate.formats.dicom_independent import frame
from slidegate.formats.dicom_layout import sniff as dicom_sniff
from slidegate.formats.dicom_verify import _LOSSY_TS, LOSSY_TOLERANCE, _positions, _volume_headers
from slidegate.models import LevelFacts
from slidegate.sources import SourceRef, open_binary


class Source(Protocol):
    name: str  # what the pixels are compared with, for problem texts
    tolerance: int  # decoder difference accepted for exact levels (lossy DICOM: YBR rounding)

    def level(self, lv: LevelFacts) -> Reader | None: ...


def _source_region(src: Any, axes: str, ys: slice, xs: slice) -> np.ndarray:
    """Read a region of a tifffile page array and return it as (samples, y, x)."""
    index: list[Any] = []
    kept: list[str] = []
    for ax, size in zip(axes, src.shape, strict=True):
        if ax == "Y":
            index.append(ys)
        elif ax == "X":
            index.append(xs)
        elif ax == "S":
            index.append(slice(None))
        elif size == 1:
            index.append(0)
            continue
        else:
            raise ValueError(f"unsupported page axis {ax}")
        kept.append(ax)
    region = np.asarray(src[tuple(index)])
    if "S" not in kept:
        region = region[..., np.newaxis]
        kept.append("S")
    return np.transpose(region, [kept.index(a) for a in "SYX"])


class TiffSource:
    name = "the source"
    tolerance = 0

    def __init__(self, tf: tifffile.TiffFile) -> None:
        self.tf = tf

    def page(self, lv: LevelFacts) -> tifffile.TiffPage | None:
        """The source page holding this level, found by tifffile itself: the planned page
        index, else any pyramid level of tifffile's series (SubIFD levels live below their
        parent page)."""
        tf = self.tf
        candidates: list[Any] = [tf.pages[lv.page]] if lv.page < len(tf.pages) else []
        candidates += [level.keyframe for series in tf.series for level in series.levels]
        for page in candidates:
            if isinstance(page, tifffile.TiffPage) and "Y" in page.axes and "X" in page.axes:
                shape = (page.shape[page.axes.index("Y")], page.shape[page.axes.index("X")])
                if shape == (lv.height, lv.width):
                    return page
        return None

    def _channel_pages(self, page: tifffile.TiffPage) -> list[tifffile.TiffPage]:
        """The pages of the level `page` starts, as tifffile's series group them (one page per
        channel in QPTIFF, planar OME-TIFF, SCN fluorescence); just `page` otherwise."""
        for series in self.tf.series:
            for level in series.levels:
                items = [
                    p.aspage() if isinstance(p, tifffile.TiffFrame) else p for p in level.pages
                ]
                pages = [p for p in items if isinstance(p, tifffile.TiffPage)]
                if len(pages) > 1 and pages[0].offset == page.offset and "S" not in page.axes:
                    return pages
        return [page]

    def level(self, lv: LevelFacts) -> Reader | None:
        page = self.page(lv)
        if page is None:
            return None
        srcs = [(zarr.open_array(p.aszarr(), mode="r"), p.axes) for p in self._channel_pages(page)]

        def read(ys: slice, xs: slice) -> np.ndarray:
            return np.concatenate([_source_region(s, axes, ys, xs) for s, axes in srcs], axis=0)

        return read


class DicomSource:
    """VOLUME instances found again by size; frames decoded one at a time by pydicom."""

    name = "pydicom's decode of the source"

    def __init__(self, source: Path) -> None:
        self.path = source
        self.headers = _volume_headers(source)
        lossy = any(str(ds.file_meta.TransferSyntaxUID) in _LOSSY_TS for _, ds in self.headers)
        self.tolerance = LOSSY_TOLERANCE if lossy else 0

    def level(self, lv: LevelFacts) -> Reader | None:
        parts = [
            (f, ds)
            for f, ds in self.headers
            if (int(ds.TotalPixelMatrixRows), int(ds.TotalPixelMatrixColumns))
            == (lv.height, lv.width)
        ]
        if not parts:
            return None
        parts.sort(key=lambda p: int(p[1].get("InConcatenationNumber", 1) or 1))
        frames: list[tuple[Path, int, int, int, int, int]] = []  # file, index, y, x, h, w
        header = dict(parts)
        offset = 0
        for file, ds in parts:
            th, tw = int(ds.Rows), int(ds.Columns)
            n = int(ds.get("NumberOfFrames", 1) or 1)
            columns = -(-lv.width // tw)
            for k, (y, x) in enumerate(_positions(ds, n, th, tw, columns, offset)):
                frames.append((file, k, y, x, th, tw))
            offset += n
        table = np.array([f[2:] for f in frames], dtype=np.int64).reshape(-1, 4)

        def read(ys: slice, xs: slice) -> np.ndarray:
            out = np.zeros((lv.samples, ys.stop - ys.start, xs.stop - xs.start), lv.dtype)
            y0, x0 = table[:, 0], table[:, 1]
            hit = (
                (y0 < ys.stop)
                & (y0 + table[:, 2] > ys.start)
                & (x0 < xs.stop)
                & (x0 + table[:, 3] > xs.start)
            )
            for j in np.flatnonzero(hit):
                file, k, y, x, th, tw = frames[j]
                px = frame(file, k, header[file]).transpose(2, 0, 1)
                sy, sx = max(ys.start, y), max(xs.start, x)
                ey, ex = min(ys.stop, y + th, lv.height), min(xs.stop, x + tw, lv.width)
                out[:, sy - ys.start : ey - ys.start, sx - xs.start : ex - xs.start] = px[
                    :, sy - y : ey - y, sx - x : ex - x
                ]
            return out

        return read


@contextmanager
def open_source(source: SourceRef) -> Iterator[Source | None]:
    """The independent reader of `source`, or None when no reader here can open it. DICOM,
    CZI and MRXS are local paths (S3 objects of those formats are fetched to scratch first);
    the TIFF family is read in place, from a file or with ranged GETs on S3."""
    from slidegate.audit.vendor_pixels import CziSource, MrxsSource, czi_sniff, mrxs_sniff

    if not isinstance(source, Path):
        with ExitStack() as stack:
            try:
                tf = tifffile.TiffFile(stack.enter_context(open_binary(source)))
            except Exception:
                yield None
                return
            with tf:
                yield TiffSource(tf)
        return
    if dicom_sniff(source):
        yield DicomSource(source)
        return
    if czi_sniff(source):
        with CziSource(source) as czi:
            yield czi
        return
    if mrxs_sniff(source):
        with MrxsSource(source) as mrxs:
            yield mrxs
        return
    try:
        tf = tifffile.TiffFile(str(source))  # opened read-only ("rb")
    except Exception:
        yield None
        return
    with tf:
        yield TiffSource(tf)
