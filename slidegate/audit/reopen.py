"""Re-open an OME-Zarr output with independent readers and compare it with the plan and source.

The output is read with zarr directly and the source with an independent reader (sources.py:
tifffile, pydicom, czifile, OpenSlide; never slidegate's converter or readers), so a converter
bug cannot hide itself. The conversion the slide was written with (`conversion`: the profile's
mode, quality and pyramid) decides what is expected: the planned levels, or the 2x pyramid
rebuilt from the base, and how pixels are judged (pixels.py: exact, or a PSNR floor for JPEG
output, derived levels against the audit's own area average). Problem texts name the level and
what differs (shape, scale, pixels); they never contain a metadata value or a file name from
the output (a name could carry PHI): unexpected entries are counted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import zarr

from slidegate.audit.bytes_proof import payload_problems, prove_level
from slidegate.audit.pixels import Rule, compare_derived, compare_level, rules_for
from slidegate.audit.sources import DicomSource, Source, TiffSource, open_source
from slidegate.formats.dicom_verify import compare_dicom_levels
from slidegate.models import DeidPlan, LevelFacts
from slidegate.sources import SourceRef

SCALE_RTOL = 1e-2  # per-axis downsample of a native pyramid may differ slightly from the mean

_V3_META = {"zarr.json"}


class Conversion(Protocol):
    """How the slide was written: the profile's `conversion:` (or the writer's options)."""

    @property
    def mode(self) -> str: ...
    @property
    def quality(self) -> int: ...
    @property
    def pyramid(self) -> str: ...


def expected_shapes(plan: DeidPlan, pyramid: str, levels: int) -> list[tuple[int, int]]:
    """(height, width) per output level: the planned levels, or base then halved (ceil) for
    the 2x pyramid (as many levels as the output lists, at least one)."""
    if pyramid != "2x":
        return [(lv.height, lv.width) for lv in plan.levels]
    shapes = [(plan.levels[0].height, plan.levels[0].width)]
    for _ in range(1, max(levels, 1)):
        h, w = shapes[-1]
        shapes.append((-(-h // 2), -(-w // 2)))
    return shapes


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


def _structure(group: zarr.Group, out: Path, n: int, ms: list[Any]) -> list[str]:
    problems: list[str] = []
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
    i: int, shape: tuple[int, int], dataset: Mapping[str, Any], plan: DeidPlan
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
        ("y", plan.mpp_y, scale[1], base.height / shape[0]),
        ("x", plan.mpp_x, scale[2], base.width / shape[1]),
    )  # per-axis downsample, as written (tiny levels of a native pyramid are not square)
    for axis, mpp, got, downsample in per_axis:
        if mpp is None:
            continue
        want = mpp * downsample
        if not isinstance(got, (int, float)) or not math.isclose(got, want, rel_tol=SCALE_RTOL):
            problems.append(f"level {i}: {axis} scale differs from mpp x downsample")
    return problems


@dataclass(frozen=True)
class _Written:
    """Default conversion: pass-through (lossless where a level cannot pass through), native."""

    mode: str = "passthrough"
    quality: int = 90
    pyramid: str = "native"


def verify_output(
    out: Path,
    plan: DeidPlan,
    source: SourceRef,
    *,
    tolerance: int = 0,
    compare_pixels: bool = True,
    conversion: Conversion | None = None,
) -> list[str]:
    """Check the OME-Zarr at `out` against `plan` and the `source` slide. Empty list = good.
    `conversion`: how it was written (mode, quality, pyramid); default pass-through, native."""
    conv: Conversion = conversion or _Written()
    if not plan.levels:
        return ["the plan has no pyramid level to compare with"]
    try:
        group = zarr.open_group(str(out), mode="r")
    except Exception:
        return ["output is not a readable Zarr group"]
    zarr_format = group.metadata.zarr_format
    ms, why = _multiscales(group.attrs.asdict(), zarr_format)
    if ms is None:
        return [why]
    datasets = ms[0].get("datasets", [])
    shapes = expected_shapes(plan, conv.pyramid, len(datasets))
    problems = _structure(group, Path(out), len(shapes), ms)
    base = plan.levels[0]
    arrays: dict[int, zarr.Array] = {}
    for i, shape in enumerate(shapes):
        lv = plan.levels[i] if conv.pyramid != "2x" else base
        try:
            arr = group[str(i)]
        except KeyError:
            continue  # reported by _structure
        if not isinstance(arr, zarr.Array):
            continue
        if tuple(arr.shape) != (lv.samples, *shape):
            problems.append(f"level {i}: shape is not (samples, height, width) of the plan")
            continue
        if arr.dtype != np.dtype(lv.dtype):
            problems.append(f"level {i}: data type differs from the source")
            continue
        if i < len(datasets) and isinstance(datasets[i], Mapping):
            problems.extend(_scale_problems(i, shape, datasets[i], plan))
        arrays[i] = arr
    if not compare_pixels:
        return problems
    try:
        with open_source(source) as src:
            if src is None:
                return [*problems, "source cannot be re-read independently; pixels not compared"]
            problems += _compare(arrays, plan, src, conv, tolerance, Path(out))
    except Exception as exc:  # the source cannot be opened by its independent reader
        problems.append(f"source could not be re-read ({type(exc).__name__}); pixels not compared")
    return problems


def _compare(
    arrays: Mapping[int, zarr.Array],
    plan: DeidPlan,
    src: Source,
    conv: Conversion,
    tolerance: int,
    out: Path,
) -> list[str]:
    derived = conv.pyramid == "2x"
    native = {i: a for i, a in arrays.items() if not (derived and i > 0)}
    base = plan.levels[0]
    rules = rules_for(
        conv.mode,
        conv.quality,
        base.dtype,
        base.samples,
        max(arrays, default=0) + 1,
        derived,
        max(tolerance, src.tolerance),
    )
    problems: list[str] = []
    pending: dict[int, zarr.Array] = {}  # level 0 of a 2x pyramid, compared with the rest
    lossy = rules[0].psnr is not None
    if isinstance(src, DicomSource) and not lossy:  # frame by frame, pydicom's own offsets
        for i, arr in native.items():  # pixels are blind to segments a decoder skips
            problems += payload_problems(i, arr, out)
        problems += compare_dicom_levels(native, plan, src.path)
    else:
        full = getattr(conv, "audit", "by_cost") == "full"
        for i, arr in native.items():
            proof = None if full else _bytes(i, arr, plan.levels[i], src, out)
            if proof is not None:
                problems += proof
            elif derived:  # compared with the derived levels, from one read of the base
                pending[i] = arr
            else:  # pixels were produced (or a full audit): decode and compare
                problems += _native(i, arr, plan.levels[i], src, rules[i])
    rest = {**pending, **{k: a for k, a in arrays.items() if derived and k > 0}}
    if rest:
        read = src.level(base)
        if read is None:
            return [*problems, "level 0: no level of the source has the planned size"]
        try:
            problems += compare_derived(rest, read, (base.height, base.width), rules, src.name)
        except Exception as exc:  # a decode error in either file
            problems.append(f"derived levels: pixels could not be compared ({type(exc).__name__})")
    return problems


def _bytes(i: int, arr: zarr.Array, lv: LevelFacts, src: Source, out: Path) -> list[str] | None:
    """The byte proof of a pass-through level (bytes_proof.py); None: compare its pixels
    (after the payload check of every chunk when the level is pass-through, as for DICOM)."""
    if not isinstance(src, TiffSource):
        problems = payload_problems(i, arr, out)
        return problems or None
    page = src.page(lv)
    if page is None:
        return None
    try:
        return prove_level(i, arr, out, src.tf, page)
    except Exception as exc:  # an unreadable shard or source tile
        return [f"level {i}: chunk bytes could not be compared ({type(exc).__name__})"]


def _native(i: int, arr: zarr.Array, lv: LevelFacts, src: Source, rule: Rule) -> list[str]:
    read = src.level(lv)
    if read is None:
        return [f"level {i}: no level of the source has the planned size"]
    try:
        problem = compare_level(i, arr, read, (lv.height, lv.width), rule, src.name)
    except Exception as exc:  # a decode error in either file
        problem = f"level {i}: pixels could not be compared ({type(exc).__name__})"
    return [problem] if problem else []
