"""The burn-in check: OCR and barcode detection on one low-resolution level of what is published.

`check_output` opens the staged OME-Zarr and picks the *check level*: the lowest (smallest)
level whose longer side is at least `MIN_SIDE` pixels, or the full-resolution level when every
level is smaller (a DICOM pyramid goes down to 1x1 pixel: nothing is legible there). A level
longer than `MAX_SIDE` is resized to it for the engines (boxes are mapped back). Findings carry
boxes in the check level's pixel coordinates, the text's shape, a score and a needle flag,
never the text (see `slidegate.burnin.shapes`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from slidegate.burnin.engines import Box, read_barcodes, read_text
from slidegate.burnin.shapes import NeedleIndex, score_text
from slidegate.models import BurnInFinding, BurnInReport
from slidegate.risk.images import brightfield_rgb

#: the check level is the smallest level at least this long (longer side, pixels)
MIN_SIDE = 1024
#: the engines see at most this many pixels along the longer side
MAX_SIDE = 2048
#: a finding scoring at least this is flagged (the policy acts on flagged findings)
FLAG_SCORE = 0.5
#: OCR lines scoring below this are counted in `ignored`, not kept
KEEP_SCORE = 0.2


def to_rgb(arr: NDArray[Any]) -> NDArray[np.uint8]:
    """(H, W, 3) uint8 from a (C, H, W) or (H, W[, C]) level of any depth: RGB as it is;
    grey repeated; other channel counts (fluorescence) become the brightest channel, inverted
    when the background is dark, so writing is dark on light as the engines expect."""
    a = np.asarray(arr)
    if a.dtype != np.uint8:  # a percentile stretch: faint writing stays visible
        lo, hi = (float(v) for v in np.percentile(a, (0.5, 99.5)))
        scale = 255.0 / (hi - lo) if hi > lo else 1.0
        a = np.clip((a.astype(np.float32) - lo) * scale, 0, 255).astype(np.uint8)
    return brightfield_rgb(a)


def pick_level(shapes: list[tuple[int, int]]) -> int:
    """Index of the check level among (height, width) shapes ordered from full resolution."""
    for i in range(len(shapes) - 1, -1, -1):
        if max(shapes[i]) >= MIN_SIDE:
            return i
    return 0


def _fit(rgb: NDArray[np.uint8]) -> tuple[NDArray[np.uint8], float]:
    """The image resized to at most MAX_SIDE, and the factor from its pixels to the level's."""
    h, w = rgb.shape[:2]
    if max(h, w) <= MAX_SIDE:
        return rgb, 1.0
    from PIL import Image

    f = MAX_SIDE / max(h, w)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    small = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS))
    return np.ascontiguousarray(small), 1.0 / f


def _scaled(box: Box, factor: float, h: int, w: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = (round(v * factor) for v in box)
    return max(0, x0), max(0, y0), min(w, x1), min(h, y1)


def check_image(rgb: NDArray[np.uint8], needles: NeedleIndex, *, level: int = 0) -> BurnInReport:
    """Findings in one (H, W, 3) uint8 image (a whole level)."""
    start = time.perf_counter()
    h, w = rgb.shape[:2]
    image, factor = _fit(rgb)
    findings: list[BurnInFinding] = []
    ignored = 0
    for hit in read_text(image):
        s = score_text(hit.text, hit.confidence, needles)
        if s.score < KEEP_SCORE:
            ignored += 1
            continue
        findings.append(
            BurnInFinding(
                kind="text",
                box=_scaled(hit.box, factor, h, w),
                shape=s.shape,
                score=s.score,
                needle=s.needle,
                chars=s.chars,
            )
        )
    for code in read_barcodes(image):  # a decodable barcode on a slide is an identifier
        findings.append(
            BurnInFinding(
                kind="barcode",
                box=_scaled(code.box, factor, h, w),
                shape=f"barcode:{code.symbology}",
                score=1.0,
                chars=code.payload_chars,
            )
        )
    findings.sort(key=lambda f: (-f.score, f.box))
    return BurnInReport(
        level=level,
        shape=(h, w),
        findings=tuple(findings),
        flagged=sum(f.score >= FLAG_SCORE for f in findings),
        ignored=ignored,
        seconds=round(time.perf_counter() - start, 3),
    )


def _open_group(path: Path | Any) -> Any:
    import zarr

    if not isinstance(path, str | Path):
        return path  # an open group (staging on S3)
    from slidegate.convert import register

    register()  # pass-through chunks are JPEG / JPEG 2000: imagecodecs' numcodecs codecs
    return zarr.open_group(str(path), mode="r")


def read_check_level(path: Path | Any) -> tuple[int, NDArray[np.uint8]]:
    """(index, RGB pixels) of the check level of a slidegate OME-Zarr."""
    group = _open_group(path)
    names = sorted((k for k in group.array_keys() if k.isdigit()), key=int)
    shapes = [tuple(int(n) for n in group[k].shape[-2:]) for k in names]
    index = pick_level(shapes)  # type: ignore[arg-type]
    data = np.asarray(group[names[index]][...])  # (c, y, x)
    return index, to_rgb(np.moveaxis(data, 0, -1) if data.ndim == 3 else data)


def check_output(path: Path | Any, needles: Iterable[str]) -> BurnInReport:
    """The burn-in check of a staged OME-Zarr; `needles` are the slide's own PHI values."""
    start = time.perf_counter()
    index, rgb = read_check_level(path)
    report = check_image(rgb, NeedleIndex.of(needles), level=index)
    return report.model_copy(update={"seconds": round(time.perf_counter() - start, 3)})
