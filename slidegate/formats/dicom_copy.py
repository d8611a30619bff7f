"""A de-identified copy of a DICOM WSI slide in its own format (the optional second output).

One file per pyramid level (`level-<i>.dcm`; concatenation parts `level-<i>-<k>.dcm`); LABEL,
OVERVIEW and THUMBNAIL instances are not written at all. Each file carries only:
- the attributes needed to decode and place the pixels (`STRUCTURE`, with sequences filtered to
  their technical children) and the attributes the de-identification plan keeps;
- the Type 1/2 identifying attributes of the IOD replaced per PS3.15 (Z: empty; D: a dummy:
  the slide's pseudonym for container and specimen identifiers, 1900-01-01 for content date);
- every UID remapped (PS3.15 "U"): `2.25.<HMAC-SHA256(key, uid)>`, so one source UID always gets
  the same replacement and the levels still share Study, Series, Pyramid and FrameOfReference
  UIDs when the source levels did;
- the pixel data copied frame by frame (encapsulated frames re-itemised with a Basic Offset
  Table; native frames as they are), streamed: memory stays bounded. A JPEG / JPEG 2000 frame
  is walked whole and cleaned first (slidegate.payload: COM, APPn but a bare JFIF / Adobe
  header, JP2 boxes, bytes after EOI / EOC removed; the pixels unchanged). A level whose
  frames cannot be walked (JPEG-LS, JPEG XL: no walker; or a frame that does not parse) gets no
  copy (`CopyNotPossible`).
No private tag, date, time, name, description or free text is copied.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

import pydicom
import pydicom.config
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID

from slidegate.formats.dicom_frames import CODECS, EXPLICIT_LE, IMPLICIT_LE
from slidegate.formats.dicom_layout import read_header
from slidegate.formats.dicom_reader import DicomSlide
from slidegate.formats.tiff_copy import CopyNotPossible
from slidegate.models import DeidPlan
from slidegate.payload import BandCleaner, Unparsable, clean_payloads

_CODE = {"CodeValue", "CodingSchemeDesignator", "CodingSchemeVersion", "CodeMeaning"}
#: keyword -> None (copy the value) or the children allowed inside the sequence's items
STRUCTURE: dict[str, object] = {
    k: None
    for k in [
        "SOPClassUID",
        "ImageType",
        "Modality",
        "SamplesPerPixel",
        "PhotometricInterpretation",
        "PlanarConfiguration",
        "Rows",
        "Columns",
        "BitsAllocated",
        "BitsStored",
        "HighBit",
        "PixelRepresentation",
        "NumberOfFrames",
        "TotalPixelMatrixRows",
        "TotalPixelMatrixColumns",
        "TotalPixelMatrixFocalPlanes",
        "NumberOfOpticalPaths",
        "DimensionOrganizationType",
        "ImagedVolumeWidth",
        "ImagedVolumeHeight",
        "ImagedVolumeDepth",
        "ImageOrientationSlide",
        "VolumetricProperties",
        "LossyImageCompression",
        "LossyImageCompressionRatio",
        "LossyImageCompressionMethod",
        "ExtendedDepthOfField",
        "FocusMethod",
        "InConcatenationNumber",
        "InConcatenationTotalNumber",
        "ConcatenationFrameOffsetNumber",
        "RepresentativeFrameNumber",
    ]
}
STRUCTURE.update(
    {
        "SharedFunctionalGroupsSequence": {
            "PixelMeasuresSequence": {"PixelSpacing": None, "SliceThickness": None},
            "OpticalPathIdentificationSequence": {"OpticalPathIdentifier": None},
        },
        "PerFrameFunctionalGroupsSequence": {
            "PlanePositionSlideSequence": {
                k: None
                for k in (
                    "XOffsetInSlideCoordinateSystem",
                    "YOffsetInSlideCoordinateSystem",
                    "ZOffsetInSlideCoordinateSystem",
                    "RowPositionInTotalImagePixelMatrix",
                    "ColumnPositionInTotalImagePixelMatrix",
                )
            },
            "OpticalPathIdentificationSequence": {"OpticalPathIdentifier": None},
        },
        "OpticalPathSequence": {
            "OpticalPathIdentifier": None,
            "IlluminationTypeCodeSequence": dict.fromkeys(_CODE),
            "IlluminationColorCodeSequence": dict.fromkeys(_CODE),
            "IlluminationWaveLength": None,
            "ObjectiveLensPower": None,
            "ObjectiveLensNumericalAperture": None,
        },
        "TotalPixelMatrixOriginSequence": {
            "XOffsetInSlideCoordinateSystem": None,
            "YOffsetInSlideCoordinateSystem": None,
        },
        "DimensionOrganizationSequence": {"DimensionOrganizationUID": None},
        "DimensionIndexSequence": {
            "DimensionOrganizationUID": None,
            "DimensionIndexPointer": None,
            "FunctionalGroupPointer": None,
        },
    }
)
#: Type 2 attributes of the WSI IOD emptied (PS3.15 "Z")
EMPTY = [
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
    "Manufacturer",
    "SeriesNumber",
]


#: the copy writer's own Implementation Class UID (a fixed `2.25.` UUID-derived UID)
IMPLEMENTATION_UID = UID(
    f"2.25.{int.from_bytes(hashlib.sha256(b'slidegate dicom copy').digest()[:16], 'big')}"
)


class UidMap:
    """Same source UID -> same `2.25.` replacement, keyed (HMAC-SHA256): not reversible."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def __call__(self, uid: str) -> str:
        digest = hmac.new(self._key, b"uid|" + str(uid).encode(), hashlib.sha256).digest()
        return f"2.25.{int.from_bytes(digest[:16], 'big')}"


def _filtered(src: Dataset, allowed: dict[str, object], uids: UidMap) -> Dataset:
    out = Dataset()
    for el in src:
        if el.tag.is_private or el.keyword not in allowed:
            continue
        children = allowed[el.keyword]
        if el.VR == "SQ":
            if isinstance(children, dict):
                items = [_filtered(item, children, uids) for item in el.value]
                out.add_new(el.tag, "SQ", Sequence(items))
        elif el.VR == "UI" and el.keyword != "SOPClassUID":
            out.add_new(el.tag, "UI", uids(str(el.value)))
        else:
            out.add_new(el.tag, el.VR, el.value)
    return out


def _header(src: Dataset, plan: DeidPlan, uids: UidMap, number: int) -> Dataset:
    kept = {f.name.removeprefix("dicom.") for f in plan.fields if f.action == "keep"}
    allowed = {**{k: None for k in kept if "." not in k and "," not in k}, **STRUCTURE}
    ds = _filtered(src, allowed, uids)
    for keyword in EMPTY:
        setattr(ds, keyword, "")
    ds.InstanceNumber = number
    ds.ContentDate, ds.ContentTime = "19000101", "000000"  # D: dummy (Type 1)
    ds.BurnedInAnnotation, ds.SpecimenLabelInImage = "NO", "NO"
    ds.ContainerIdentifier = plan.pseudonym  # D: dummy
    ds.IssuerOfTheContainerIdentifierSequence = Sequence()
    ds.ContainerTypeCodeSequence = Sequence()
    spec = Dataset()
    spec.SpecimenIdentifier = plan.pseudonym
    spec.SpecimenUID = uids("specimen|" + plan.pseudonym)
    spec.IssuerOfTheSpecimenIdentifierSequence = Sequence()
    spec.SpecimenPreparationSequence = Sequence()
    ds.SpecimenDescriptionSequence = Sequence([spec])
    return ds


def _write_pixels(fh: BinaryIO, frames: Iterable[bytes], native: bool, n: int) -> None:
    """Append the Pixel Data element: native (defined length) or encapsulated with a BOT."""
    write, tell, seek = fh.write, fh.tell, fh.seek
    if native:
        start = tell()
        write(struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OB", 0, 0))
        total = 0
        for frame in frames:
            write(frame)
            total += len(frame)
        if total % 2:
            write(b"\0")
            total += 1
        end = tell()
        seek(start + 8)
        write(struct.pack("<L", total))
        seek(end)
        return
    write(struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OB", 0, 0xFFFFFFFF))
    bot = tell()
    write(struct.pack("<HHL", 0xFFFE, 0xE000, 4 * n) + b"\0" * (4 * n))
    first, offsets = tell(), []
    for frame in frames:
        offsets.append(tell() - first)
        data = frame + (b"\0" if len(frame) % 2 else b"")
        write(struct.pack("<HHL", 0xFFFE, 0xE000, len(data)) + data)
    write(struct.pack("<HHL", 0xFFFE, 0xE0DD, 0))
    end = tell()
    seek(bot + 8)
    write(struct.pack(f"<{n}L", *offsets))
    seek(end)


def frame_walk(transfer_syntax: str) -> str | None:
    """The payload walk ("jpeg" / "j2k") of this transfer syntax's frames; None for native
    frames (pixels only); CopyNotPossible when frames of this syntax cannot be walked."""
    if transfer_syntax in (IMPLICIT_LE, EXPLICIT_LE):
        return None
    kind = {"JPEG": "jpeg", "JPEG_LOSSLESS": "jpeg", "JPEG2000": "j2k"}.get(
        CODECS.get(transfer_syntax, ("",))[0]
    )
    if kind is None:
        raise CopyNotPossible(
            f"DICOM frames in transfer syntax {transfer_syntax} cannot be walked for hidden "
            "segments; no original-format copy is written for this slide",
            reason="copy: frames cannot be walked",
        )
    return kind


def _cleaned(frames: Iterable[bytes], kind: str | None) -> Iterable[bytes]:
    if kind is None:
        yield from frames
        return
    walk = BandCleaner(kind)
    batch: list[bytes | None] = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == 64:
            yield from (f for f in clean_payloads(walk, batch) if f is not None)
            batch = []
    yield from (f for f in clean_payloads(walk, batch) if f is not None)


def _uid_attributes(ds: Dataset, src: Dataset, plan: DeidPlan, uids: UidMap, part: str) -> None:
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID",
                    "PyramidUID", "ConcatenationUID", "SOPInstanceUID"):  # fmt: skip
        if keyword in src:
            setattr(ds, keyword, uids(str(src.get(keyword))))
        elif keyword not in ("PyramidUID", "ConcatenationUID"):  # Type 1: made up, keyed
            scope = f"{plan.pseudonym}|{part}" if keyword == "SOPInstanceUID" else plan.pseudonym
            setattr(ds, keyword, uids(f"{keyword}|{scope}"))


def write_dicom_copy(source: Path, plan: DeidPlan, out: Path, key: bytes) -> list[Path]:
    """Write the de-identified copy of `source`'s planned levels into the folder `out`;
    return the files written (one per level, or per concatenation part)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    uids = UidMap(key)
    written: list[Path] = []
    with DicomSlide(Path(source)) as slide:
        for i, lv in enumerate(plan.levels):
            parts = slide.stored_frames(lv.index)
            for k, (inst, frames) in enumerate(parts):
                src = read_header(inst.path)
                ds = _header(src, plan, uids, i + 1)
                _uid_attributes(ds, src, plan, uids, f"{i}|{k}")
                native = inst.transfer_syntax in (IMPLICIT_LE, EXPLICIT_LE)
                kind = frame_walk(inst.transfer_syntax)
                meta = FileMetaDataset()
                meta.MediaStorageSOPClassUID = UID(str(src.SOPClassUID))
                meta.MediaStorageSOPInstanceUID = UID(str(ds.SOPInstanceUID))
                meta.TransferSyntaxUID = UID(EXPLICIT_LE if native else inst.transfer_syntax)
                meta.ImplementationClassUID = IMPLEMENTATION_UID  # not the source's writer
                meta.ImplementationVersionName = "SLIDEGATE"
                ds.file_meta = meta
                path = out / (f"level-{i}.dcm" if len(parts) == 1 else f"level-{i}-{k}.dcm")
                with pydicom.config.disable_value_validation():
                    ds.save_as(str(path), enforce_file_format=True)
                with open(path, "r+b") as fh:
                    fh.seek(0, 2)
                    try:
                        _write_pixels(fh, _cleaned(frames, kind), native, inst.frames)
                    except Unparsable as exc:
                        raise CopyNotPossible(
                            f"a frame of level {i} cannot be walked (payload rule {exc.rule}); "
                            "no original-format copy is written for this slide",
                            reason=f"copy: {exc.reason}",
                        ) from None
                written.append(path)
    return written
