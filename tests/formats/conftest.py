"""Small TIFF fixtures written with tifffile: a generic tiled pyramid with a stripped label
page and canary strings in every descriptive tag, and a GT450-style SVS."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile


@dataclass(frozen=True)
class Planted:
    path: Path
    base: np.ndarray
    canaries: dict[str, str]  # field name -> planted value


def write_generic_pyramid(path: Path, *, subifds: bool = False) -> Planted:
    rng = np.random.default_rng(7)
    base = rng.integers(0, 256, (600, 800, 3), dtype=np.uint8)
    can = {
        "tiff.ImageDescription": f"CANARY-desc-{uuid.uuid4().hex}",
        "tiff.Software": f"CANARY-sw-{uuid.uuid4().hex}",
        "tiff.DateTime": "2021:03:04 05:06:07",
        "tiff.Artist": f"CANARY-artist-{uuid.uuid4().hex}",
        "tiff.tag65000": f"CANARY-private-{uuid.uuid4().hex}",
        "label": f"CANARY-label-{uuid.uuid4().hex}",
    }
    common: dict[str, Any] = {"photometric": "rgb", "compression": "zlib", "metadata": None}
    with tifffile.TiffWriter(path) as w:
        w.write(
            base,
            tile=(128, 128),
            description=can["tiff.ImageDescription"],
            software=can["tiff.Software"],
            datetime=can["tiff.DateTime"],
            resolution=(10000 / 0.25, 10000 / 0.25),  # pixels per cm -> 0.25 um/px
            resolutionunit="CENTIMETER",
            extratags=[
                (315, "s", 0, can["tiff.Artist"], True),
                (65000, "s", 0, can["tiff.tag65000"], True),
            ],
            subifds=2 if subifds else None,
            **common,
        )
        for f in (2, 4):
            w.write(base[::f, ::f], tile=(128, 128), subfiletype=1, **common)
        w.write(
            np.full((60, 150, 3), 200, np.uint8),
            description=f"label {can['label']}",
            rowsperstrip=16,
            **common,
        )
    return Planted(path, base, can)


@pytest.fixture
def generic_pyramid(tmp_path: Path) -> Planted:
    return write_generic_pyramid(tmp_path / "generic.tif")


@pytest.fixture
def subifd_pyramid(tmp_path: Path) -> Planted:
    return write_generic_pyramid(tmp_path / "subifd.tif", subifds=True)


@pytest.fixture
def gt450_svs(tmp_path: Path) -> Path:
    """SVS layout where only NewSubfileType marks label (1) and macro (9); keys in alphabetical
    order, an empty segment, a four-digit year."""
    path = tmp_path / "gt450.svs"
    rng = np.random.default_rng(3)
    base = rng.integers(0, 256, (512, 768, 3), dtype=np.uint8)
    desc = (
        "Aperio Leica Biosystems GT450 v1.0.1\r\n768x512 [0,0 768x512] (256x256) J2K/YUV16 Q=70"
        "|AppMag = 40|Date = 07/24/2023||Filename = CANARY-FN-9931|MPP = 0.2630"
        "|ScanScope ID = CANARY-SS-77|Time = 10:11:12|Time Zone = GMT-04:00|User = op7"
    )
    common: dict[str, Any] = {"photometric": "rgb", "compression": "zlib", "metadata": None}
    with tifffile.TiffWriter(path) as w:
        w.write(base, tile=(256, 256), description=desc, **common)
        w.write(base[::8, ::8], description="Aperio Leica Biosystems GT450 v1.0.1", **common)
        w.write(base[::4, ::4], tile=(128, 128), description=desc, **common)
        w.write(np.zeros((40, 40, 3), np.uint8), subfiletype=1, description="", **common)
        w.write(np.zeros((40, 100, 3), np.uint8), subfiletype=9, description="", **common)
    return path
