"""Write a synthetic generic tiled pyramidal TIFF (no vendor layout).

Layout: top-level page 0 is the tiled JPEG (YCbCr) base level with the reduced levels
(downsample 2, 4, ... until a level is < 512 px) as SubIFDs, NewSubfileType 1 (reduced), so
tifffile reads it as one series with `series[0].levels`; the last top-level page is a stripped,
LZW label with canary text in its pixels (generic TIFF has no standard label marking; readers
treat any non-tiled page as an associated image). Identifying values sit in ImageDescription
(free text), DateTime, Software, Artist, HostComputer and DocumentName. The pixel size is in
XResolution/YResolution with ResolutionUnit centimeter (10000 / mpp pixels per cm).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tifffile

from slidegate.synth.svs import level_factors
from slidegate.synth.texture import RGB, downsample

TILE = 256


@dataclass(frozen=True)
class TiffMeta:
    """Identifying values planted in one generic TIFF (all canaries except `mpp`)."""

    description: str  # a canary; written inside free text
    datetime: str  # YYYY:MM:DD HH:MM:SS
    software: str
    artist: str
    host_computer: str
    document_name: str
    mpp: float = 0.25


def description_text(meta: TiffMeta) -> str:
    return f"Slide scan {meta.description}; brightfield; objective 40x; operator note none"


def write_generic_tiff(path: Path, level0: RGB, meta: TiffMeta, label: RGB) -> None:
    """Write `level0` (H, W, 3 uint8) as a SubIFD pyramid plus a stripped LZW label page."""
    h, w = level0.shape[:2]
    factors = level_factors(h, w, step=2)
    px_per_cm = 10000.0 / meta.mpp
    jpeg: dict[str, Any] = {
        "compression": "jpeg",
        "compressionargs": {"level": 85},
        "photometric": "rgb",
        "tile": (TILE, TILE),
        "resolutionunit": "CENTIMETER",
        "metadata": None,
    }
    extratags = [
        (315, "s", 0, meta.artist, True),
        (316, "s", 0, meta.host_computer, True),
        (269, "s", 0, meta.document_name, True),
    ]
    with tifffile.TiffWriter(path, bigtiff=False) as tw:
        tw.write(
            level0,
            subifds=len(factors),
            description=description_text(meta),
            datetime=meta.datetime,
            software=meta.software,
            extratags=extratags,
            resolution=(px_per_cm, px_per_cm),
            subfiletype=0,
            **jpeg,
        )
        prev, prev_f = level0, 1
        for f in factors:
            prev = downsample(prev, f // prev_f)
            prev_f = f
            tw.write(
                prev,
                subfiletype=1,
                software=False,
                resolution=(px_per_cm / f, px_per_cm / f),
                **jpeg,
            )
        tw.write(
            label,
            photometric="rgb",
            compression="lzw",
            predictor=True,
            rowsperstrip=16,
            software=False,
            subfiletype=0,
            metadata=None,
        )
