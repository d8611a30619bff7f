"""Re-open an OME-Zarr output with independent readers and compare it with the plan and source.

The output is read with zarr directly and the source with tifffile directly (not with
slidegate's converter code), so a converter bug cannot hide itself. Problem texts name the level
and what differs (shape, scale, pixels); they never contain a metadata value or a file name
from the output (a name could carry PHI): unexpected entries are counted.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
import zarr

from slidegate.formats.dicom_layout import sniff as dicom_sniff
from slidegate.formats.dicom_verify import compare_dicom_levels
from slidegate.models import DeidPlan, LevelFacts
from slidegate.sources import SourceRef, open_binary

REGION = 2048
SCALE_RTOL = 1e-2  # per-axis downsample of a native pyramid may differ slightly from the mean

_V3_META = {"zarr.json"}
_V2_META = {".zattrs", ".zgroup", ".zmetadata"}


def _multiscales(attrs: Mapping[str, Any], zarr_format: int) -> tuple[list[Any] | None, str]:
    if zarr_format == 3:
        ome = attrs.get("ome")
        if not isinstance(ome, Mapping):
            return None, "group attributes have no 'ome' object (NGFF 0.5)"
        if ome.get("version") != "0.5":
            return None, "NGFF version is not 0.5"
        ms = ome.get("multiscales")
    else:
        ms = attrs.get("multiscales")
        if isinstance(ms, list) and ms and ms[0].get("version") != "0.4":
            return None, "NGFF version is not 0.4 (Zarr v2 output)"
    if not isinstance(ms, list) or len(ms) != 1:
        return None, "group must have exactly one multiscales entry"
    return ms, ""


def _structure(group: zarr.Group, out: Path, plan: DeidPlan, ms: list[Any]) -> list[str]:
    problems: list[str] = []
    n = len(plan.levels)
    expected = [str(i) for i in range(n)]
    datasets = ms[0].get("datasets", [])
    paths = [d.get("path") for d in datasets if isinstance(d, Mapping)]
    if paths != expected:
        problems.append(f"multiscales datasets must be the paths 0..{n - 1}, in order")
    axes = ms[0].get("axes", [])
    names = [a.get("name") for a in axes if isinstance(a, Mapping)]
    if len(names) != 3 or names[1:] != ["y", "x"]:
        problems.append("multiscales axes must be (channel, y, x)")
    arrays: list[str] = []
    groups: list[str] = []
    for name, node in group.members():
        (arrays if isinstance(node, zarr.Array) else groups).append(name)
    if sorted(arrays) != sorted(expected):
        extra = len(set(arrays) - set(expected))
        missing = len(set(expected) - set(arrays))
        problems.append(f"arrays: {missing} level(s) missing, {extra} unexpected array(s)")
    if groups:
        problems.append(f"{len(groups)} unexpected sub-group(s) (label, macro or other)")
    if out.is_dir():
        allowed = _V3_META | _V2_META | set(expected)
        stray = [p for p in out.iterdir() if p.name not in allowed and p.name not in arrays]
        if stray:
            problems.append(f"{len(stray)} unexpected top-level entr(y/ies) in the output folder")
    return problems


def _scale_problems(
    i: int, lv: LevelFacts, dataset: Mapping[str, Any], plan: DeidPlan
) -> list[str]:
    transforms = dataset.get("coordinateTransformations", [])
    scales = [
        t.get("scale") for t in transforms if isinstance(t, Mapping) and t.get("type") == "scale"
    ]
    if len(scales) != 1 or not isinstance(scales[0], list) or len(scales[0]) != 3:
        return [f"level {i}: needs exactly one 3-axis scale transform"]
    scale = scales[0]
    problems = []
    base = plan.levels[0]
    per_axis = (
        ("y", plan.mpp_y, scale[1], base.height / lv.height),
        ("x", plan.mpp_x, scale[2], base.width / lv.width),
    )  # per-axis downsample, as written (tiny levels of a native pyramid are not square)
    for axis, mpp, got, downsample in per_axis:
        if mpp is None:
            continue
        want = mpp * downsample
        if not isinstance(got, (int, float)) or not math.isclose(got, want, rel_tol=SCALE_RTOL):
            problems.append(f"level {i}: {axis} scale differs from mpp x downsample")
    return problems


def _regions(height: int, width: int, step: int) -> Iterator[tuple[slice, slice]]:
    for y in range(0, height, step):
        for x in range(0, width, step):
            yield slice(y, min(y + step, height)), slice(x, min(x + step, width))


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


def _source_page(tf: tifffile.TiffFile, lv: LevelFacts) -> tifffile.TiffPage | None:
    """The source page holding this level, found by tifffile itself: the planned page index,
    else any pyramid level of tifffile's series (SubIFD levels live below their parent page)."""
    candidates: list[Any] = [tf.pages[lv.page]] if lv.page < len(tf.pages) else []
    candidates += [level.keyframe for series in tf.series for level in series.levels]
    for page in candidates:
        if isinstance(page, tifffile.TiffPage) and "Y" in page.axes and "X" in page.axes:
            shape = (page.shape[page.axes.index("Y")], page.shape[page.axes.index("X")])
            if shape == (lv.height, lv.width):
                return page
    return None


def _channel_pages(tf: tifffile.TiffFile, page: tifffile.TiffPage) -> list[tifffile.TiffPage]:
    """The pages of the level `page` starts, as tifffile's series group them (one page per
    channel in QPTIFF, planar OME-TIFF, SCN fluorescence); just `page` otherwise."""
    for series in tf.series:
        for level in series.levels:
            items = [p.aspage() if isinstance(p, tifffile.TiffFrame) else p for p in level.pages]
            pages = [p for p in items if isinstance(p, tifffile.TiffPage)]
            if len(pages) > 1 and pages[0].offset == page.offset and "S" not in page.axes:
                return pages
    return [page]


def _compare_level(
    i: int, lv: LevelFacts, arr: zarr.Array, tf: tifffile.TiffFile, tolerance: int
) -> str | None:
    page = _source_page(tf, lv)
    if page is None:
        return f"level {i}: no page of the source has the planned size"
    srcs = [(zarr.open_array(p.aszarr(), mode="r"), p.axes) for p in _channel_pages(tf, page)]
    wide = np.float64 if arr.dtype.kind == "f" else np.int64
    step = REGION
    for ys, xs in _regions(lv.height, lv.width, step):
        a = np.asarray(arr[:, ys, xs])
        b = np.concatenate([_source_region(src, axes, ys, xs) for src, axes in srcs], axis=0)
        if a.shape != b.shape:
            return f"level {i}: samples per pixel differ from the source"
        diff = np.abs(a.astype(wide) - b.astype(wide)).max(initial=0)
        if diff > tolerance:
            return (
                f"level {i}: pixels differ from the source (max difference {diff} > tolerance "
                f"{tolerance}) in the region at y={ys.start}, x={xs.start}"
            )
    return None


def verify_output(
    out: Path,
    plan: DeidPlan,
    source: SourceRef,
    *,
    tolerance: int = 0,
    compare_pixels: bool = True,
) -> list[str]:
    """Check the OME-Zarr at `out` against `plan` and the `source` slide. Empty list = good."""
    try:
        group = zarr.open_group(str(out), mode="r")
    except Exception:
        return ["output is not a readable Zarr group"]
    zarr_format = group.metadata.zarr_format
    ms, why = _multiscales(group.attrs.asdict(), zarr_format)
    if ms is None:
        return [why]
    problems = _structure(group, Path(out), plan, ms)
    datasets = ms[0].get("datasets", [])
    arrays: dict[int, zarr.Array] = {}
    for i, lv in enumerate(plan.levels):
        try:
            arr = group[str(i)]
        except KeyError:
            continue  # reported by _structure
        if not isinstance(arr, zarr.Array):
            continue
        if tuple(arr.shape) != (lv.samples, lv.height, lv.width):
            problems.append(f"level {i}: shape is not (samples, height, width) of the plan")
            continue
        if arr.dtype != np.dtype(lv.dtype):
            problems.append(f"level {i}: data type differs from the source")
            continue
        if i < len(datasets) and isinstance(datasets[i], Mapping):
            problems.extend(_scale_problems(i, lv, datasets[i], plan))
        arrays[i] = arr
    if not compare_pixels:
        return problems
    if isinstance(source, Path) and dicom_sniff(source):  # DICOM WSI: pydicom's own decode
        return [*problems, *compare_dicom_levels(arrays, plan, source)]
    with ExitStack() as stack:
        try:  # opened read-only: a local file or ranged GETs on S3
            tf = stack.enter_context(tifffile.TiffFile(stack.enter_context(open_binary(source))))
        except Exception:
            return [*problems, "source cannot be re-read with tifffile; pixels not compared"]
        for i, arr in arrays.items():
            try:
                problem = _compare_level(i, plan.levels[i], arr, tf, tolerance)
            except Exception as exc:  # a decode error in either file
                problem = f"level {i}: pixels could not be compared ({type(exc).__name__})"
            if problem:
                problems.append(problem)
    return problems
