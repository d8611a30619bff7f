"""OME-NGFF 0.5 group attributes for a de-identified slide. Only plan-approved content."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from slidegate.models import DeidPlan

NGFF_VERSION = "0.5"


def _axes(with_units: bool) -> list[dict[str, str]]:
    unit = {"unit": "micrometer"} if with_units else {}
    return [
        {"name": "c", "type": "channel"},
        {"name": "y", "type": "space", **unit},
        {"name": "x", "type": "space", **unit},
    ]


#: a kept attribute naming channel N (the policy kept it, so it is in the output already)
CHANNEL_KEY = re.compile(r"^channels?[ _.-]?(\d{1,2})[ _.-]?(name|label)$", re.IGNORECASE)
#: what a channel label may be: a stain, dye or filter name, nothing free-form
CHANNEL_LABEL = re.compile(
    r"^(DAPI|Hoechst( \d{5})?|FITC|TRITC|Cy[2357](\.5)?|Alexa ?Fluor ?\d{3}|AF\d{3}|"
    r"Opal ?\d{3}|[GRYC]FP|mCherry|Texas ?Red|Sample ?AF|Autofluorescence|"
    r"Red|Green|Blue|Gr[ae]y|Brightfield|H(ematoxylin)?|E(osin)?|DAB)$",
    re.IGNORECASE,
)
_RGB = (("red", "FF0000"), ("green", "00FF00"), ("blue", "0000FF"))
_COLOURS = ("0000FF", "00FF00", "FF0000", "FFFF00", "FF00FF", "00FFFF", "FFFFFF")


def channel_labels(plan: DeidPlan, samples: int) -> list[str]:
    """Per channel: "red" / "green" / "blue" for RGB, else a kept attribute naming channel N
    when its value is a known stain / dye name (CHANNEL_LABEL), else "channel N"."""
    if samples == 3 and plan.levels and plan.levels[0].dtype == "uint8":
        return [name for name, _ in _RGB]
    named: dict[int, str] = {}
    for key, value in plan.attributes.items():
        m = CHANNEL_KEY.match(key)
        if m and CHANNEL_LABEL.match(value.strip()):
            named[int(m.group(1))] = value.strip()
    return [named.get(i, f"channel {i}") for i in range(samples)]


def omero(
    plan: DeidPlan, samples: int, dtype_range: tuple[float, float],
    windows: Sequence[tuple[float, float]],
) -> dict[str, Any]:  # fmt: skip
    """The `omero` rendering block: label, colour and display window per channel. `windows`:
    (start, end) per channel from the data; `dtype_range`: (min, max) of the pixel type."""
    labels = channel_labels(plan, samples)
    rgb = samples == 3 and labels == [name for name, _ in _RGB]
    channels = []
    for i in range(samples):
        colour = _RGB[i][1] if rgb else ("FFFFFF" if samples == 1 else _COLOURS[i % 7])
        start, end = windows[i]
        channels.append({
            "label": labels[i], "color": colour, "active": True, "coefficient": 1.0,
            "family": "linear", "inverted": False,
            "window": {"min": float(dtype_range[0]), "max": float(dtype_range[1]),
                       "start": float(start), "end": float(end)},
        })  # fmt: skip
    return {
        "channels": channels,
        "rdefs": {
            "defaultT": 0,
            "defaultZ": 0,
            "model": "color" if rgb or samples > 1 else "greyscale",
        },
    }


def multiscales(plan: DeidPlan, shapes: list[tuple[int, int]] | None = None,
                derived: bool = False) -> dict[str, Any]:  # fmt: skip
    """One multiscale: dataset "i" per output level (the planned levels, or `shapes` (height,
    width) when the pyramid is rebuilt), scale = mpp * per-axis downsample (pixel units
    relative to level 0 when the pixel size is unknown)."""
    known = plan.mpp_x is not None and plan.mpp_y is not None
    mpp_y = plan.mpp_y if plan.mpp_y is not None and known else 1.0
    mpp_x = plan.mpp_x if plan.mpp_x is not None and known else 1.0
    if shapes is None:
        shapes = [(level.height, level.width) for level in plan.levels]
    base_h, base_w = shapes[0]
    datasets = []
    for i, (height, width) in enumerate(shapes):
        ds_y = base_h / height
        ds_x = base_w / width
        datasets.append(
            {
                "path": str(i),
                "coordinateTransformations": [
                    {"type": "scale", "scale": [1.0, mpp_y * ds_y, mpp_x * ds_x]}
                ],
            }
        )
    how = (
        {"description": "levels 1.. are 2x area averages of level 0",
         "method": "slidegate.convert.pyramid.downsample2"} if derived
        else {"description": "the source's own pyramid levels", "method": "native"}
    )  # fmt: skip
    return {
        "name": plan.pseudonym, "axes": _axes(known), "datasets": datasets,
        **({"type": "mean"} if derived else {}), "metadata": how,
    }  # fmt: skip


def group_attributes(
    plan: DeidPlan, shapes: list[tuple[int, int]] | None = None, derived: bool = False,
    rendering: dict[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """{"ome": {...}, "slidegate": {...}}: nothing but pseudonym, format and kept metadata
    (channel labels only from kept attributes, see `channel_labels`)."""
    ome: dict[str, Any] = {
        "version": NGFF_VERSION, "multiscales": [multiscales(plan, shapes, derived)],
    }  # fmt: skip
    if rendering is not None:
        ome["omero"] = rendering
    return {
        "ome": ome,
        "slidegate": {
            "pseudonym": plan.pseudonym,
            "format": plan.format,
            "metadata": dict(plan.attributes),
        },
    }
