"""Write a synthetic Aperio SVS file in the real Aperio page layout.

Page order (as in real files and as OpenSlide / tifffile expect it):
  0  base level, tiled 256x256, JPEG, PhotometricInterpretation RGB, NewSubfileType 0
  1  thumbnail, stripped JPEG (rows per strip 16), NewSubfileType 0
  2+ reduced levels (downsample 4, 16, ...), tiled JPEG, NewSubfileType 0
  n-2 label, stripped LZW (predictor 2), NewSubfileType 1, description "...\\r\\nlabel WxH"
  n-1 macro, stripped JPEG, NewSubfileType 9, description "...\\r\\nmacro WxH"
JPEG tiles and strips are encoded here (YCbCr 4:2:0 inside the JPEG stream, TIFF photometric RGB,
like Aperio's encoder), so tifffile stores them unchanged. Page 0, the thumbnail and the reduced
levels carry the `|key = value` Aperio description tail with the identifying fields; page 0 and
the reduced levels also carry DateTime, Software, Make, Model and Artist tags.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np
import tifffile

from slidegate.synth.canary import ScanTime
from slidegate.synth.texture import RGB, downsample, resize

LIBRARY = "Aperio Image Library v12.0.15"
TILE = 256
QUALITY = 80


@dataclass(frozen=True)
class SvsMeta:
    """Identifying values planted in one SVS file (all canaries except `mpp`)."""

    filename: str
    scanscope_id: str
    user: str  # GUID-like
    image_id: str  # 9 digits
    scan: ScanTime
    software: str
    make: str
    model: str
    artist: str
    mpp: float = 0.499


def level_factors(height: int, width: int, min_size: int = 512, step: int = 4) -> list[int]:
    """Downsample factors of the reduced levels: step, step**2, ... until a level is < min_size."""
    factors: list[int] = []
    factor = 1
    while min(height // factor, width // factor) >= min_size:
        factor *= step
        if min(height // factor, width // factor) < 1:
            break
        factors.append(factor)
    return factors


def thumbnail_size(height: int, width: int, max_px: int = 768) -> tuple[int, int]:
    """About 1/16 of the base level, at most `max_px` on the long side."""
    scale = min(1 / 16, max_px / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def description_tail(meta: SvsMeta, height: int, width: int) -> str:
    date, time = meta.scan.aperio_date, meta.scan.aperio_time
    return (
        f"|AppMag = 20|StripeWidth = 2040|ScanScope ID = {meta.scanscope_id}"
        f"|Filename = {meta.filename}|Date = {date}|Time = {time}|Time Zone = GMT+01:00"
        f"|User = {meta.user}|MPP = {meta.mpp:.4f}|Left = 25.6|Top = 18.2"
        "|LineCameraSkew = -0.000424|LineAreaXOffset = 0.019265|LineAreaYOffset = -0.000313"
        f"|Focus Offset = 0.000000|ImageID = {meta.image_id}|OriginalWidth = {width}"
        f"|Originalheight = {height}|Filtered = 5|ICC Profile = ScanScope v1"
    )


def _jpeg(block: RGB) -> bytes:
    return bytes(imagecodecs.jpeg8_encode(np.ascontiguousarray(block), level=QUALITY))


def jpeg_tiles(img: RGB, tile: int = TILE) -> Iterator[bytes]:
    """JPEG-encode full-size tiles row by row; edge tiles are padded by edge replication."""
    h, w = img.shape[:2]
    ph, pw = -h % tile, -w % tile
    padded = np.pad(img, ((0, ph), (0, pw), (0, 0)), mode="edge") if ph or pw else img
    for y in range(0, h, tile):
        for x in range(0, w, tile):
            yield _jpeg(padded[y : y + tile, x : x + tile])


def jpeg_strips(img: RGB, rows: int) -> Iterator[bytes]:
    for y in range(0, img.shape[0], rows):
        yield _jpeg(img[y : y + rows])


def _identity_tags(meta: SvsMeta) -> list[tuple[int, str, int, str, bool]]:
    return [
        (271, "s", 0, meta.make, True),
        (272, "s", 0, meta.model, True),
        (315, "s", 0, meta.artist, True),
    ]


def write_svs(path: Path, level0: RGB, meta: SvsMeta, label: RGB, macro: RGB) -> None:
    """Write `level0` (H, W, 3 uint8) with derived levels, thumbnail, label and macro."""
    h, w = level0.shape[:2]
    tail = description_tail(meta, h, w)
    head = f"{LIBRARY} \r\n"
    jpeg_rgb: dict[str, Any] = {
        "compression": "jpeg",
        "photometric": "rgb",
        "dtype": np.uint8,
        "compressionargs": {"outcolorspace": "RGB"},
        "metadata": None,
    }
    tagged: dict[str, Any] = {
        "datetime": meta.scan.tiff_datetime,
        "software": meta.software,
        "extratags": _identity_tags(meta),
    }
    levels: list[RGB] = []
    prev, prev_f = level0, 1
    for f in level_factors(h, w):
        prev = downsample(prev, f // prev_f)
        prev_f = f
        levels.append(prev)
    th, tw = thumbnail_size(h, w)
    thumb = resize(level0, (th, tw))
    with tifffile.TiffWriter(path, bigtiff=False) as tw_:
        tw_.write(
            jpeg_tiles(level0),
            shape=level0.shape,
            tile=(TILE, TILE),
            description=f"{head}{w}x{h} [0,0 {w}x{h}] ({TILE}x{TILE}) JPEG/RGB Q={QUALITY}" + tail,
            subfiletype=0,
            **jpeg_rgb,
            **tagged,
        )
        tw_.write(
            jpeg_strips(thumb, 16),
            shape=thumb.shape,
            rowsperstrip=16,
            description=f"{head}{w}x{h} -> {tw}x{th} - {tail}",
            software=False,
            subfiletype=0,
            **jpeg_rgb,
        )
        for lvl in levels:
            lh, lw = lvl.shape[:2]
            tw_.write(
                jpeg_tiles(lvl),
                shape=lvl.shape,
                tile=(TILE, TILE),
                description=f"{head}{w}x{h} -> {lw}x{lh} - {tail}",
                subfiletype=0,
                **jpeg_rgb,
                **tagged,
            )
        lh, lw = label.shape[:2]
        tw_.write(
            label,
            photometric="rgb",
            compression="lzw",
            predictor=True,
            rowsperstrip=16,
            description=f"{LIBRARY}\r\nlabel {lw}x{lh}",
            subfiletype=1,
            software=False,
            metadata=None,
        )
        mh, mw = macro.shape[:2]
        tw_.write(
            jpeg_strips(macro, 16),
            shape=macro.shape,
            rowsperstrip=16,
            description=f"{LIBRARY}\r\nmacro {mw}x{mh}",
            subfiletype=9,
            software=False,
            **jpeg_rgb,
        )
