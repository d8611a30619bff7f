"""DICOM WSI (VL Whole Slide Microscopy) format handler: sniff, inventory, region reader.

A slide is one `.dcm` file or a folder of instances (see dicom_layout). The inventory lists the
pyramid levels (VOLUME instances, largest first), the associated images (LABEL -> label,
OVERVIEW -> macro, THUMBNAIL -> thumbnail, anything else -> other; all dropped by every plan)
and every attribute of every instance (dicom_fields). Instances are numbered in inventory order:
the level-0 instance is `instance 0`, so its values win when a kept field is written once.
Pixel size: PixelSpacing (mm) of the level-0 instance's functional groups, in micrometres;
else ImagedVolumeWidth/Height over the total pixel matrix.
"""

from __future__ import annotations

from pathlib import Path

from pydicom.dataset import Dataset

from slidegate.formats.dicom_fields import instance_fields
from slidegate.formats.dicom_frames import compression_name, dtype_of, require_codec
from slidegate.formats.dicom_layout import (
    FORMAT,
    Instance,
    Layout,
    pixel_spacing_mm,
    read_headers,
    read_layout,
    sniff,
)
from slidegate.formats.dicom_reader import DicomRegionReader
from slidegate.formats.registry import FormatHandler, RegionReader, slide_facts
from slidegate.models import AssociatedImage, LevelFacts, MetadataField, SlideFacts


def _level(index: int, page: int, inst: Instance, base: Instance) -> LevelFacts:
    return LevelFacts(
        index=index,
        page=page,
        height=inst.total_rows,
        width=inst.total_columns,
        samples=inst.samples,
        dtype=dtype_of(inst).name,
        tile_height=inst.rows,
        tile_width=inst.columns,
        compression=require_codec(inst.transfer_syntax),
        downsample=base.total_columns / inst.total_columns,
    )


def _associated(page: int, inst: Instance) -> AssociatedImage:
    try:
        compression = compression_name(inst.transfer_syntax)
    except Exception:  # an associated image is dropped whatever its encoding
        compression = "unknown"
    return AssociatedImage(
        kind=inst.kind or "other",
        page=page,
        height=inst.total_rows,
        width=inst.total_columns,
        compression=compression,
    )


def _mpp(ds: Dataset, base: Instance) -> tuple[float | None, float | None]:
    """(mpp_y, mpp_x) in micrometres of the level-0 instance."""
    spacing = pixel_spacing_mm(ds)
    if spacing is not None:
        return spacing[0] * 1000.0, spacing[1] * 1000.0
    try:
        height_mm, width_mm = float(ds.ImagedVolumeHeight), float(ds.ImagedVolumeWidth)
    except (AttributeError, TypeError, ValueError):
        return None, None
    if height_mm <= 0 or width_mm <= 0:
        return None, None
    return height_mm * 1000.0 / base.total_rows, width_mm * 1000.0 / base.total_columns


def _facts_parts(
    layout: Layout, headers: dict[Path, Dataset]
) -> tuple[tuple[LevelFacts, ...], tuple[AssociatedImage, ...], list[MetadataField]]:
    order = {inst.path: n for n, inst in enumerate(layout.instances())}
    base = layout.levels[0].first
    for part in (p for lv in layout.levels for p in lv.parts):
        require_codec(part.transfer_syntax)  # every part decodable here, named if not
    levels = tuple(
        _level(i, order[lv.first.path], lv.first, base) for i, lv in enumerate(layout.levels)
    )
    associated = tuple(_associated(order[inst.path], inst) for inst in layout.associated)
    fields: list[MetadataField] = []
    for inst in layout.instances():
        fields.extend(instance_fields(headers[inst.path], order[inst.path]))
    return levels, associated, fields


def read_facts(path: Path, slide_id: str) -> SlideFacts:
    """Inventory one DICOM WSI slide (file or folder of instances)."""
    path = Path(path)
    headers = read_headers(path)
    layout = read_layout(path, headers)
    by_path = dict(headers)
    levels, associated, fields = _facts_parts(layout, by_path)
    mpp_yx = _mpp(by_path[layout.levels[0].first.path], layout.levels[0].first)
    return slide_facts(
        path, slide_id, FORMAT, mpp_yx=mpp_yx, levels=levels, associated=associated, fields=fields
    )


def open_reader(path: Path) -> RegionReader:
    return DicomRegionReader(Path(path))


HANDLER = FormatHandler(name=FORMAT, sniff=sniff, read_facts=read_facts, reader=open_reader)
