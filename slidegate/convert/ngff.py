"""OME-NGFF 0.5 group attributes for a de-identified slide. Only plan-approved content."""

from __future__ import annotations

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


def multiscales(plan: DeidPlan, shapes: list[tuple[int, int]] | None = None) -> dict[str, Any]:
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
    return {"name": plan.pseudonym, "axes": _axes(known), "datasets": datasets}


def group_attributes(plan: DeidPlan, shapes: list[tuple[int, int]] | None = None) -> dict[str, Any]:
    """{"ome": {...}, "slidegate": {...}}: nothing but pseudonym, format and kept metadata."""
    return {
        "ome": {"version": NGFF_VERSION, "multiscales": [multiscales(plan, shapes)]},
        "slidegate": {
            "pseudonym": plan.pseudonym,
            "format": plan.format,
            "metadata": dict(plan.attributes),
        },
    }
