"""The audit on real scanner files (read-only, from ../shared/data/real-slides)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr

from slidegate.audit import scan_tree, verify_output
from slidegate.models import DeidPlan, LevelFacts

SLIDES = [
    "aperio-svs/CMU-1-Small-Region.svs",
    "hamamatsu-ndpi/test3-DAPI-2-387.ndpi",
    "generic-tiff/boxes.tiff",
]


def _plan(source: Path) -> DeidPlan:
    with tifffile.TiffFile(source) as tf:
        levels = tf.series[0].levels
        width0 = levels[0].shape[1]
        facts = tuple(
            LevelFacts(
                index=i,
                page=lv.keyframe.index,
                height=lv.shape[0],
                width=lv.shape[1],
                samples=lv.shape[2],
                dtype=lv.dtype.name,
                tile_height=None,
                tile_width=None,
                compression=str(lv.keyframe.compression),
                downsample=width0 / lv.shape[1],
            )
            for i, lv in enumerate(levels)
        )
    return DeidPlan(
        slide_id=source.name,
        pseudonym="s-00000000000000aa",
        format="test",
        levels=facts,
        dropped_images=(),
        fields=(),
        mpp_x=None,
        mpp_y=None,
    )


def _copy_to_ngff(source: Path, plan: DeidPlan, out: Path) -> None:
    """Pixels through tifffile's series API (verify_output reads pages through aszarr)."""
    ome = {
        "version": "0.5",
        "multiscales": [
            {
                "axes": [
                    {"name": "c", "type": "channel"},
                    {"name": "y", "type": "space"},
                    {"name": "x", "type": "space"},
                ],
                "datasets": [
                    {
                        "path": str(i),
                        "coordinateTransformations": [
                            {"type": "scale", "scale": [1.0, lv.downsample, lv.downsample]}
                        ],
                    }
                    for i, lv in enumerate(plan.levels)
                ],
            }
        ],
    }
    group = zarr.create_group(store=str(out), zarr_format=3, attributes={"ome": ome})
    with tifffile.TiffFile(source) as tf:
        for i, lv in enumerate(tf.series[0].levels):
            data = np.transpose(lv.asarray(), (2, 0, 1))
            arr = group.create_array(
                str(i), shape=data.shape, chunks=(3, 512, 512), dtype=data.dtype
            )
            arr[:] = data


@pytest.mark.parametrize("name", SLIDES)
def test_verify_output_on_real_slides(real_slides: Path, tmp_path: Path, name: str) -> None:
    source = real_slides / name
    plan = _plan(source)
    out = tmp_path / "out.ome.zarr"
    _copy_to_ngff(source, plan, out)
    assert verify_output(out, plan, source) == []
    # one changed pixel in the smallest level is seen
    last = len(plan.levels) - 1
    arr = zarr.open_array(str(out / str(last)), mode="r+")
    arr[0, 0, 0] = 255 - int(np.asarray(arr[0, 0, 0]))
    assert verify_output(out, plan, source)[0].startswith(f"level {last}: pixels differ")


def test_scan_finds_known_phi_in_real_sources(real_slides: Path) -> None:
    """The raw sources carry the PHI that SOURCES.md lists: the scanner must see it there."""
    needles = {
        "aperio.ScanScope ID": b"CPAPERIOCS",
        "aperio.Date": b"12/29/09",
        "aperio.User": b"b414003d",
        "ndpi.DateTime": b"2017:02:07 13:06:43",
        "absent": b"NOT-IN-ANY-FILE-0x5f3759df",
    }
    found = scan_tree(real_slides / "aperio-svs", needles)
    assert {f.field for f in found} == {"aperio.ScanScope ID", "aperio.Date", "aperio.User"}
    assert {f.file for f in found} == {"CMU-1-Small-Region.svs"}
    found = scan_tree(real_slides / "hamamatsu-ndpi", needles)
    assert {f.field for f in found} == {"ndpi.DateTime"}
