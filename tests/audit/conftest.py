"""Fixtures built directly with tifffile and zarr (independent of slidegate's converter)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr

from slidegate.models import DeidPlan, LevelFacts, MetadataField, PlannedField, SlideFacts

SHAPES = [(600, 800), (300, 400)]  # (height, width) per level
MPP = 0.25
HEADER = "Aperio Image Library v12.0.15 \r\n800x600 (256x256) JPEG/RGB Q=70|AppMag = 20"

# name, value, action, output key
FIELDS = [
    ("aperio.Filename", "PAT-Smith-2031", "drop", None),
    ("aperio.Date", "12/29/09", "drop", None),
    ("aperio.Time", "09:59:15", "drop", None),
    ("aperio.User", "b414003d-95c6-48b0-9369-8010ed517ba7", "drop", None),
    ("aperio.ImageID", "1004486", "drop", None),
    ("aperio.Left", "25.69", "drop", None),  # numeric and short: not searched
    ("aperio.AppMag", "20", "keep", "AppMag"),
    ("aperio.ScanScope ID", "Aperio AT2 Scanner", "drop", None),  # equals a kept value
    ("aperio.Model", "Aperio AT2 Scanner", "keep", "Model"),
    ("tiff.ImageDescription", HEADER + "|Date = 12/29/09|Operator = Dr Jane Roe", "drop", None),
    ("aperio.Scan date", "2009-12-29 09:59:15", "coarsen", "ScanYear"),
    ("philips.Unplanned", "Unplanned Value 77", "keep-missing", None),  # not in the plan
]


def _level(i: int, page: int) -> LevelFacts:
    h, w = SHAPES[i]
    return LevelFacts(
        index=i,
        page=page,
        height=h,
        width=w,
        samples=3,
        dtype="uint8",
        tile_height=256,
        tile_width=256,
        compression="NONE",
        downsample=SHAPES[0][1] / w,
    )


def pixels(i: int) -> np.ndarray:
    h, w = SHAPES[i]
    rng = np.random.default_rng(i)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture(scope="session")
def source_tiff(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("src") / "slide.tif"
    with tifffile.TiffWriter(path) as tw:
        tw.write(pixels(0), tile=(256, 256), photometric="rgb", description=HEADER)
        tw.write(pixels(1), tile=(256, 256), photometric="rgb")
    return path


@pytest.fixture(scope="session")
def facts(source_tiff: Path) -> SlideFacts:
    return SlideFacts(
        slide_id="cases/slide.tif",
        source_path=str(source_tiff),
        format="tiff",
        size=source_tiff.stat().st_size,
        sha256="0" * 64,
        mpp_x=MPP,
        mpp_y=MPP,
        levels=(_level(0, 0), _level(1, 1)),
        associated=(),
        fields=tuple(
            MetadataField(name=n, location=f"page 0 {n}", value=v) for n, v, _, _ in FIELDS
        ),
    )


@pytest.fixture(scope="session")
def plan(facts: SlideFacts) -> DeidPlan:
    planned = []
    for name, _value, action, key in FIELDS:
        if action == "keep-missing":
            continue
        out_value = {"AppMag": "20", "Model": "Aperio AT2 Scanner", "ScanYear": "2009"}.get(
            key or ""
        )
        planned.append(
            PlannedField(
                name=name,
                location=f"page 0 {name}",
                field_class="test",
                action=action,  # type: ignore[arg-type]
                rule="test",
                output_key=key,
                output_value=out_value,
            )
        )
    return DeidPlan(
        slide_id=facts.slide_id,
        pseudonym="s-0123456789abcdef",
        format="tiff",
        levels=facts.levels,
        dropped_images=(),
        fields=tuple(planned),
        mpp_x=MPP,
        mpp_y=MPP,
    )


def write_ngff(out: Path, plan: DeidPlan, extra_attrs: dict | None = None) -> zarr.Group:
    """A minimal, correct NGFF 0.5 image with uncompressed chunks (planted bytes stay raw)."""
    datasets = [
        {
            "path": str(i),
            "coordinateTransformations": [
                {"type": "scale", "scale": [1.0, MPP * lv.downsample, MPP * lv.downsample]}
            ],
        }
        for i, lv in enumerate(plan.levels)
    ]
    ome = {
        "version": "0.5",
        "multiscales": [
            {
                "name": plan.pseudonym,
                "axes": [
                    {"name": "c", "type": "channel"},
                    {"name": "y", "type": "space", "unit": "micrometer"},
                    {"name": "x", "type": "space", "unit": "micrometer"},
                ],
                "datasets": datasets,
            }
        ],
    }
    attrs = {"ome": ome, "slidegate": plan.attributes, **(extra_attrs or {})}
    group = zarr.create_group(store=str(out), zarr_format=3, attributes=attrs, overwrite=True)
    for i, lv in enumerate(plan.levels):
        arr = group.create_array(
            str(i),
            shape=(3, lv.height, lv.width),
            chunks=(3, 256, 256),
            dtype="uint8",
            compressors=None,
        )
        arr[:] = np.transpose(pixels(i), (2, 0, 1))
    return group


@pytest.fixture(scope="session")
def clean_output(tmp_path_factory: pytest.TempPathFactory, plan: DeidPlan) -> Path:
    out = tmp_path_factory.mktemp("clean") / "s-0123456789abcdef.ome.zarr"
    write_ngff(out, plan)
    return out


@pytest.fixture
def ngff_writer():
    return write_ngff


@pytest.fixture
def copy_of(tmp_path: Path):
    def _copy(src: Path) -> Path:
        dst = tmp_path / src.name
        shutil.copytree(src, dst)
        return dst

    return _copy
