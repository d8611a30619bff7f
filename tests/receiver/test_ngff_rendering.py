"""NGFF complete: every output carries `omero` channels (label, colour, display window from
the data) and `multiscales` metadata. Labels come only from kept attributes whose value is a
known stain / dye name; anything else is "channel N". Inputs crafted with tifffile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tifffile
import zarr

from slidegate.convert import ConvertOptions, write_ome_zarr
from slidegate.convert.ngff import channel_labels
from slidegate.deid import load_deid_policy, plan_deid
from slidegate.formats import read_facts
from slidegate.models import DeidPlan, PlannedField


def _convert(source: Path, policies_dir: Path, out: Path, **opts: Any) -> dict[str, Any]:
    facts = read_facts(source, source.name)
    policy = load_deid_policy(policies_dir / f"deid/{facts.format}.yaml")
    plan = plan_deid(facts, policy, "s-00000000000000e1")
    write_ome_zarr(source, plan, out, ConvertOptions(**opts))
    return zarr.open_group(str(out), mode="r").attrs["ome"]  # type: ignore[return-value]


def test_rgb_brightfield_rendering(policies_dir: Path, tmp_path: Path) -> None:
    img = np.random.default_rng(1).integers(0, 255, (300, 400, 3), dtype=np.uint8)
    src = tmp_path / "rgb.tif"
    tifffile.imwrite(src, img, tile=(128, 128), compression="zlib", photometric="rgb",
                     metadata=None)  # fmt: skip
    ome = _convert(src, policies_dir, tmp_path / "o.ome.zarr", chunk=128, shard=256)
    chans = ome["omero"]["channels"]
    assert [(c["label"], c["color"]) for c in chans] == [
        ("red", "FF0000"), ("green", "00FF00"), ("blue", "0000FF")]  # fmt: skip
    assert all(c["window"] == {"min": 0.0, "max": 255.0, "start": 0.0, "end": 255.0}
               for c in chans)  # fmt: skip
    assert ome["omero"]["rdefs"]["model"] == "color"
    assert ome["multiscales"][0]["metadata"]["method"] == "native"


def test_16bit_single_channel_window_from_the_data(policies_dir: Path, tmp_path: Path) -> None:
    """A dim 16-bit channel (values 100..1200 of 65535) gets a window around its data, so a
    viewer does not render it near-black."""
    rng = np.random.default_rng(2)
    img = rng.integers(100, 1200, (512, 640), dtype=np.uint16)
    src = tmp_path / "g16.tif"
    tifffile.imwrite(src, img, tile=(128, 128), compression="zlib", metadata=None)
    ome = _convert(src, policies_dir, tmp_path / "o.ome.zarr", chunk=128, shard=256,
                   pyramid="2x")  # fmt: skip
    (chan,) = ome["omero"]["channels"]
    assert chan["label"] == "channel 0" and chan["color"] == "FFFFFF"
    w = chan["window"]
    assert (w["min"], w["max"]) == (0.0, 65535.0)
    assert 100 <= w["start"] < 200 and 1100 < w["end"] <= 1200, w
    ms = ome["multiscales"][0]
    assert ms["type"] == "mean" and "downsample2" in ms["metadata"]["method"]


def _plan(attrs: dict[str, str], samples: int, dtype: str = "uint16") -> DeidPlan:
    from slidegate.models import LevelFacts

    level = LevelFacts(index=0, page=0, height=8, width=8, samples=samples, dtype=dtype,
                       tile_height=None, tile_width=None, compression="NONE",
                       downsample=1.0)  # fmt: skip
    fields = tuple(
        PlannedField(
            name=f"src.{k}",
            location="xml",
            field_class="technical",
            action="keep",
            rule="test",
            output_key=k,
            output_value=v,
        )
        for k, v in attrs.items()
    )
    return DeidPlan(slide_id="x", pseudonym="s-00000000000000e2", format="qptiff",
                    levels=(level,), dropped_images=(), fields=fields, mpp_x=None,
                    mpp_y=None)  # fmt: skip


def test_channel_labels_only_from_known_names() -> None:
    plan = _plan({"Channel0Name": "DAPI", "channel_1_name": "Opal 520",
                  "Channel2Name": "Dr Jane Roe", "Channel3Name": "patient 1234"}, 5)  # fmt: skip
    assert channel_labels(plan, 5) == ["DAPI", "Opal 520", "channel 2", "channel 3",
                                       "channel 4"]  # fmt: skip
    assert channel_labels(_plan({}, 3, "uint8"), 3) == ["red", "green", "blue"]
