"""DICOM WSI (VL Whole Slide Microscopy): find the instances of one slide and sort them.

A slide is one `.dcm` file or a folder of instances (searched recursively; hidden files and
files without the DICOM preamble are ignored). Each instance is classified by ImageType value 3
(PS3.3 C.8.12.4.1.1; value 4 is not relied on, see phi-locations.md 4.5): VOLUME instances are
pyramid levels, LABEL / OVERVIEW / THUMBNAIL instances are associated images (never published),
a WSI instance without ImageType is a level when its frames tile a larger matrix, anything
else (another SOP class, an untyped single frame) is "other" and dropped too.

The VOLUME instances must form one pyramid (one PyramidUID, else one SeriesInstanceUID), one
focal plane and one optical path. Instances of equal size are one level only when they are parts
of one concatenation (same ConcatenationUID). Levels are sorted by TotalPixelMatrixColumns,
largest first. Only headers are read here (`stop_before_pixels`); sources are opened read-only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
import pydicom.config
from pydicom.dataset import Dataset

from slidegate.errors import CorruptSlideError, PolicyViolation, UnsupportedSlideError
from slidegate.models import AssociatedKind

# pydicom must never echo a value (a UID, a name) into a warning or log line: values that do
# not validate are read as they are, silently.
pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE

FORMAT = "dicom"
WSI_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.77.1.6"  # VL Whole Slide Microscopy Image Storage
PIXEL_DATA = 0x7FE00010

_KINDS: dict[str, AssociatedKind] = {
    "LABEL": "label",
    "OVERVIEW": "macro",
    "THUMBNAIL": "thumbnail",
}


def is_dicom_file(path: Path) -> bool:
    """True when the file carries the DICOM preamble ("DICM" at byte 128), or starts right at
    its file meta group (the preamble dropped, the transfer syntax still stated). Never
    raises. A data set without file meta is not claimed (formats/recognise.py names it)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    if len(head) == 132 and head[128:] == b"DICM":
        return True
    # the file meta group first (group 0002, explicit VR little endian, as PS3.10 writes it):
    # some writers drop the 128 bytes and "DICM" but keep the meta
    vr = head[4:6]
    return head[:2] == b"\x02\x00" and len(vr) == 2 and vr.isalpha() and vr.isupper()


def instance_files(path: Path) -> list[Path]:
    """The DICOM files of a slide: the file itself, or every DICOM file under the folder."""
    if path.is_file():
        return [path] if is_dicom_file(path) else []
    if not path.is_dir():
        return []
    found = []
    for file in sorted(path.rglob("*")):
        rel = file.relative_to(path).parts
        if file.is_file() and not any(p.startswith(".") for p in rel) and is_dicom_file(file):
            found.append(file)
    return found


def sniff(path: Path) -> bool:
    """A DICOM file, or a folder whose files include DICOM instances (cheap, never raises)."""
    try:
        if path.is_file():
            return is_dicom_file(path)
        if path.is_dir():
            return bool(instance_files(path))
    except OSError:
        return False
    return False


def _int(ds: Dataset, keyword: str, default: int = 0) -> int:
    value = ds.get(keyword)
    try:
        return int(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default


def _str(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    return str(value).strip() if value is not None else ""


@dataclass(frozen=True)
class Instance:
    """What the layout needs from one instance header. UIDs here are PHI: never log them."""

    path: Path
    kind: AssociatedKind | None  # None = pyramid (VOLUME)
    transfer_syntax: str
    pyramid: str  # PyramidUID, else SeriesInstanceUID (private: grouping only)
    rows: int  # frame (tile) height
    columns: int  # frame (tile) width
    total_rows: int
    total_columns: int
    samples: int
    bits: int
    frames: int
    photometric: str
    planar: int
    concatenation: str  # ConcatenationUID or ""
    concatenation_number: int
    marked: bool  # BurnedInAnnotation or SpecimenLabelInImage is YES
    planes: int  # focal planes x optical paths
    sparse: bool  # DimensionOrganizationType TILED_SPARSE (or not TILED_FULL with positions)


def read_header(file: Path) -> Dataset:
    """The header of one instance (no pixel data read). A WSI instance (or one whose SOP class
    is unreadable) with no Pixel Data element where its header ends is truncated: corrupt."""
    try:
        with open(file, "rb") as fh:
            ds = pydicom.dcmread(fh, stop_before_pixels=True, force=True)  # preamble optional
            has_pixels = fh.read(4) == b"\xe0\x7f\x10\x00"
    except Exception as exc:
        raise CorruptSlideError(
            f"DICOM instance {file} cannot be parsed ({type(exc).__name__}); the file is "
            "damaged or truncated: restore it from the archive",
            reason="corrupt: unreadable DICOM header",
        ) from None
    meta = getattr(ds, "file_meta", None)
    sop, meta_sop = (
        _str(ds, "SOPClassUID"),
        str(meta.get("MediaStorageSOPClassUID", "") if meta else ""),
    )
    declared = sop or meta_sop  # a DICOMDIR or other non-image object is not a WSI: fine
    if not has_pixels and (WSI_SOP_CLASS.startswith(declared) or meta_sop == WSI_SOP_CLASS):
        raise CorruptSlideError(
            f"DICOM instance {file} ends before its pixel data (truncated, or not an image); "
            "restore it from the archive",
            reason="corrupt: DICOM instance without pixel data",
        )
    return ds


def kind_of(ds: Dataset) -> AssociatedKind | None:
    """None for a pyramid level (ImageType value 3 VOLUME), else the associated kind. A WSI
    instance without ImageType (or too short a one) whose frames tile a larger matrix (several
    frames, or a total pixel matrix larger than one frame) is a pyramid level by structure;
    without that evidence it is "other" (dropped)."""
    if _str(ds, "SOPClassUID") != WSI_SOP_CLASS:
        return "other"
    image_type = ds.get("ImageType")
    values = [str(v).strip().upper() for v in image_type] if image_type else []
    if len(values) < 3:
        rows, cols = _int(ds, "Rows"), _int(ds, "Columns")
        tiled = _int(ds, "NumberOfFrames", 1) > 1 or (
            _int(ds, "TotalPixelMatrixRows", rows) > rows
            or _int(ds, "TotalPixelMatrixColumns", cols) > cols
        )
        return None if tiled and "TotalPixelMatrixColumns" in ds else "other"
    if values[2] == "VOLUME":
        return None
    return _KINDS.get(values[2], "other")


def _sparse(ds: Dataset) -> bool:
    """Frames placed by per-frame plane positions (TILED_SPARSE, or no organisation given)."""
    if _str(ds, "DimensionOrganizationType").upper() == "TILED_FULL":
        return False
    per_frame: Any = ds.get("PerFrameFunctionalGroupsSequence")
    return bool(per_frame) and "PlanePositionSlideSequence" in per_frame[0]


def instance_of(file: Path, ds: Dataset) -> Instance:
    meta = getattr(ds, "file_meta", None)
    ts = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    rows, cols = _int(ds, "Rows"), _int(ds, "Columns")
    return Instance(
        path=file,
        kind=kind_of(ds),
        transfer_syntax=ts,
        pyramid=_str(ds, "PyramidUID") or _str(ds, "SeriesInstanceUID"),
        rows=rows,
        columns=cols,
        total_rows=_int(ds, "TotalPixelMatrixRows", rows),
        total_columns=_int(ds, "TotalPixelMatrixColumns", cols),
        samples=_int(ds, "SamplesPerPixel", 1),
        bits=_int(ds, "BitsAllocated", 8),
        frames=_int(ds, "NumberOfFrames", 1),
        photometric=_str(ds, "PhotometricInterpretation").upper(),
        planar=_int(ds, "PlanarConfiguration", 0),
        concatenation=_str(ds, "ConcatenationUID"),
        concatenation_number=_int(ds, "InConcatenationNumber", 1),
        marked=any(
            _str(ds, k).upper() == "YES" for k in ("BurnedInAnnotation", "SpecimenLabelInImage")
        ),
        planes=max(1, _int(ds, "TotalPixelMatrixFocalPlanes", 1))
        * max(1, _int(ds, "NumberOfOpticalPaths", 1)),
        sparse=_sparse(ds),
    )


@dataclass(frozen=True)
class Level:
    """One pyramid level: one instance, or the parts of one concatenation in order."""

    parts: tuple[Instance, ...]

    @property
    def first(self) -> Instance:
        return self.parts[0]

    @property
    def height(self) -> int:
        return self.first.total_rows

    @property
    def width(self) -> int:
        return self.first.total_columns


@dataclass(frozen=True)
class Layout:
    levels: tuple[Level, ...]
    associated: tuple[Instance, ...]

    def instances(self) -> Iterator[Instance]:
        """Every instance in inventory order: levels (largest first), then the others."""
        for level in self.levels:
            yield from level.parts
        yield from self.associated


def _levels(volume: list[Instance], where: Path) -> tuple[Level, ...]:
    by_size: dict[tuple[int, int], list[Instance]] = {}
    for inst in volume:
        by_size.setdefault((inst.total_rows, inst.total_columns), []).append(inst)
    levels = []
    for group in by_size.values():
        concat = {i.concatenation for i in group}
        if len(group) > 1 and (len(concat) != 1 or "" in concat):
            raise UnsupportedSlideError(
                f"slide {where} has {len(group)} VOLUME instances of the same size that are not "
                "one concatenation (several focal planes, optical paths or duplicate files); "
                "keep one instance per pyramid level",
                reason="unsupported: DICOM duplicate pyramid level",
            )
        levels.append(Level(tuple(sorted(group, key=lambda i: i.concatenation_number))))
    levels.sort(key=lambda lv: (-lv.width, -lv.height))
    return tuple(levels)


def _check_volume(volume: list[Instance], where: Path) -> None:
    if len({i.pyramid for i in volume}) > 1:
        raise UnsupportedSlideError(
            f"slide {where} holds VOLUME instances of several pyramids (different PyramidUID "
            "or SeriesInstanceUID); put one pyramid per slide folder",
            reason="unsupported: DICOM several pyramids in one slide",
        )
    for inst in volume:
        if inst.planes > 1:
            raise UnsupportedSlideError(
                f"slide {where}: instance {inst.path.name} has several focal planes or optical "
                "paths, not supported yet; export one focal plane and optical path",
                reason="unsupported: DICOM multi-plane or multi-channel pyramid",
            )
        if inst.marked:
            raise PolicyViolation(
                f"slide {where}: pyramid instance {inst.path.name} declares BurnedInAnnotation "
                "or SpecimenLabelInImage YES (the tissue image shows label text); it cannot be "
                "released: rescan without the label or mask it at the source",
                reason="policy: DICOM pyramid image has burned-in annotation or label",
            )
        if inst.rows <= 0 or inst.columns <= 0 or inst.total_rows <= 0 or inst.total_columns <= 0:
            raise CorruptSlideError(
                f"slide {where}: instance {inst.path.name} has no valid frame or matrix size",
                reason="corrupt: DICOM image size",
            )


def read_layout(path: Path, headers: list[tuple[Path, Dataset]]) -> Layout:
    """Classify and sort the instances of one slide (headers already read)."""
    if not headers:
        raise UnsupportedSlideError(
            f"slide {path} contains no DICOM file (no 'DICM' preamble); point the cohort at a "
            "DICOM WSI file or a folder of its instances",
            reason="unsupported: no DICOM instance",
        )
    instances = [instance_of(file, ds) for file, ds in headers]
    volume = [i for i in instances if i.kind is None]
    others = [i for i in instances if i.kind is not None]
    if not volume:
        raise _no_pyramid(others, [ds for _, ds in headers])
    _check_volume(volume, path)
    return Layout(levels=_levels(volume, path), associated=tuple(others))


def _no_pyramid(others: list[Instance], headers: list[Dataset]) -> UnsupportedSlideError:
    """Why there is nothing to release: no WSI instance at all (name the SOP classes found),
    or only label / overview / thumbnail / untyped instances."""
    from slidegate.formats.recognise import NOT_A_SLIDE, sop_class_name

    sops = sorted({_str(ds, "SOPClassUID") for ds in headers})
    if WSI_SOP_CLASS not in sops:
        names = ", ".join(sorted({sop_class_name(s) for s in sops}))
        return UnsupportedSlideError(
            f"this DICOM slide holds {len(headers)} instance(s) of {names}, not a "
            f"VL Whole Slide Microscopy image; {NOT_A_SLIDE}",
            reason=f"unsupported: DICOM, not a whole-slide image ({names})",
        )
    kinds = sorted({str(i.kind) for i in others})
    return UnsupportedSlideError(
        f"this DICOM slide has no pyramid: its {len(others)} whole-slide instance(s) are only "
        f"{'/'.join(kinds)} images (ImageType value 3 is not VOLUME, and no untyped instance "
        "has tiled frames); label, overview and thumbnail instances are never published: add "
        "the slide's VOLUME instances (its pyramid levels) to the slide's folder",
        reason="unsupported: DICOM without pyramid (only label/overview/thumbnail instances)",
    )


def read_headers(path: Path) -> list[tuple[Path, Dataset]]:
    return [(file, read_header(file)) for file in instance_files(path)]


def pixel_spacing_mm(ds: Dataset) -> tuple[float, float] | None:
    """(row spacing, column spacing) in mm from the shared (else first per-frame) functional
    groups' PixelMeasuresSequence; None when absent or not positive."""
    for seq_name in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        groups: Any = ds.get(seq_name)
        if not groups:
            continue
        measures = groups[0].get("PixelMeasuresSequence")
        if not measures:
            continue
        spacing = measures[0].get("PixelSpacing")
        try:
            row, col = float(spacing[0]), float(spacing[1])
        except (TypeError, ValueError, IndexError):
            continue
        if row > 0 and col > 0:
            return row, col
    return None
