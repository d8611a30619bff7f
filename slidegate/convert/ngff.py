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


def multiscales(plan: DeidPlan) -> dict[str, Any]:
    """One multiscale: dataset "i" per planned level, scale = mpp * per-axis downsample
    (pixel units relative to level 0 when the pixel size is unknown)."""
    known = plan.mpp_x is not None and plan.mpp_y is not None
    mpp_y = plan.mpp_y if plan.mpp_y is not None and known else 1.0
    mpp_x = plan.mpp_x if plan.mpp_x is not None and known else 1.0
    base = plan.levels[0]
    datasets = []
    for i, level in enumerate(plan.levels):
        ds_y = base.height / level.height
        ds_x = base.width / level.width
        datasets.append(
            {
                "path": str(i),
                "coordinateTransformations": [
                    {"type": "scale", "scale": [1.0, mpp_y * ds_y, mpp_x * ds_x]}
                ],
            }
        )
    return {"name": plan.pseudonym, "axes": _axes(known), "datasets": datasets}


def group_attributes(plan: DeidPlan) -> dict[str, Any]:
    """{"ome": {...}, "slidegate": {...}}: nothing but pseudonym, format and kept metadata."""
    return {
        "ome": {"version": NGFF_VERSION, "multiscales": [multiscales(plan)]},
        "slidegate": {
            "pseudonym": plan.pseudonym,
            "format": plan.format,
            "metadata": dict(plan.attributes),
        },
    }
