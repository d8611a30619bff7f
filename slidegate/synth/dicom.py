"""Synthetic DICOM WSI slides (VL Whole Slide Microscopy) with canaries in every PHI field.

`write_dicom_wsi(out, seed=...)` writes a multi-instance slide folder the way scanners and
converters lay it out: three VOLUME levels (JPEG baseline TILED_FULL, JPEG 2000 lossless
TILED_SPARSE with its frames in shuffled order, native TILED_FULL), a LABEL and an OVERVIEW
instance with canary text rendered into their pixels, and a THUMBNAIL. Every attribute that
phi-locations.md 4.5 names (PS3.15 Table E.1-1 for WSI), the UIDs, and a private block (text
and binary) carry a unique canary. `single=True` writes only the base level, as one `.dcm` file.
Pure pydicom + imagecodecs; the layout follows PS3.3 A.32.8 (TILED_FULL row-major frames).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import imagecodecs
import numpy as np
import pydicom.config
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
)

from slidegate.synth.canary import number, token
from slidegate.synth.label import render_label, render_macro
from slidegate.synth.texture import RGB, downsample, resize, tissue_image

WSI_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.77.1.6"
MPP = 0.25  # micrometres per pixel at level 0


@dataclass
class DicomSlide:
    """What was written: the files, the level pixels (as stored) and every planted canary."""

    path: Path  # the folder (or the single file)
    levels: list[RGB]
    label: RGB | None
    canaries: dict[str, str] = field(default_factory=dict)  # label -> planted value


def _short(seed: int, code: str, n: int) -> str:
    """A canary that fits VR SH (16 chars): 'CY' + 10 hex + 4-letter code."""
    h = hashlib.sha256(f"{seed}|{code}|{n}".encode()).hexdigest()[:10].upper()
    return f"CY{h}{code.upper()}"


def _uid(seed: int, what: str) -> str:
    return f"2.25.{number(seed, 'uid', what, digits=36)}"


def _date(seed: int, what: str) -> str:
    v = int(number(seed, "date", what, digits=9))
    return f"{1930 + v % 80:04d}{1 + v // 80 % 12:02d}{1 + v // 960 % 28:02d}"


def _time(seed: int, what: str) -> str:
    v = int(number(seed, "time", what, digits=9))
    return f"{v % 24:02d}{v // 24 % 60:02d}{v // 1440 % 60:02d}"


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def plant(seed: int, n: int = 1) -> dict[str, str]:
    """The canaries of one slide, by field (the label text canaries included)."""
    t = lambda code: token(seed, "S", n, code)  # noqa: E731
    s = lambda code: _short(seed, code, n)  # noqa: E731
    return {
        "PatientName": f"{t('FAMN')}^{t('GIVN')}",
        "PatientID": t("PTID"),
        "PatientBirthDate": _date(seed, f"birth{n}"),
        "AccessionNumber": s("ACCN"),
        "StudyID": s("STID"),
        "StudyDate": _date(seed, f"study{n}"),
        "StudyTime": _time(seed, f"study{n}"),
        "ContentDate": _date(seed, f"content{n}"),
        "ContentTime": _time(seed, f"content{n}"),
        "AcquisitionDateTime": _date(seed, f"acq{n}") + _time(seed, f"acq{n}"),
        "ReferringPhysicianName": t("REFP"),
        "OperatorsName": t("OPER"),
        "InstitutionName": t("INST"),
        "StationName": s("STAT"),
        "DeviceSerialNumber": t("DSER"),
        "StudyDescription": t("STDE"),
        "SeriesDescription": t("SEDE"),
        "ImageComments": t("ICOM"),
        "LabelText": t("LTXT"),
        "BarcodeValue": t("BARC"),
        "ContainerIdentifier": t("CONT"),
        "IssuerOfTheContainerIdentifier": t("ICON"),
        "ContainerDescription": t("CODE"),
        "SpecimenIdentifier": t("SPID"),
        "IssuerOfTheSpecimenIdentifier": t("ISPI"),
        "SpecimenUID": _uid(seed, f"specimen{n}"),
        "SpecimenShortDescription": t("SPSD"),
        "SpecimenDetailedDescription": t("SPDD"),
        "SpecimenPreparationText": t("SPPR"),
        "SpecimenAccessionNumber": t("SPAC"),
        "SlideIdentifier": t("SLID"),
        "StudyInstanceUID": _uid(seed, f"study{n}"),
        "SeriesInstanceUID": _uid(seed, f"series{n}"),
        "FrameOfReferenceUID": _uid(seed, f"for{n}"),
        "PyramidUID": _uid(seed, f"pyramid{n}"),
        "PrivateText": t("PRIV"),
        "PrivateBinaryText": t("PRIB"),
        "LabelPixels": t("LPIX"),
    }


def _identity(ds: Dataset, c: dict[str, str], seed: int, index: int) -> None:
    for key in (
        "PatientName", "PatientID", "PatientBirthDate", "AccessionNumber", "StudyID",
        "StudyDate", "StudyTime", "ContentDate", "ContentTime", "AcquisitionDateTime",
        "ReferringPhysicianName", "OperatorsName", "InstitutionName", "StationName",
        "DeviceSerialNumber", "StudyDescription", "SeriesDescription", "ImageComments",
        "LabelText", "BarcodeValue", "ContainerIdentifier", "ContainerDescription",
        "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID", "PyramidUID",
    ):  # fmt: skip
        setattr(ds, key, c[key])
    ds.PatientSex = "O"
    ds.SOPInstanceUID = _uid(seed, f"sop{index}-{c['PatientID']}")
    ds.add_new(0x0040050A, "LO", c["SpecimenAccessionNumber"])  # retired, still seen
    ds.add_new(0x004006FA, "LO", c["SlideIdentifier"])  # retired
    issuer = Dataset()
    issuer.LocalNamespaceEntityID = c["IssuerOfTheContainerIdentifier"]
    ds.IssuerOfTheContainerIdentifierSequence = Sequence([issuer])
    ds.ContainerTypeCodeSequence = Sequence([_code("433466003", "SCT", "Microscope slide")])
    spec = Dataset()
    spec.SpecimenIdentifier = c["SpecimenIdentifier"]
    spec.SpecimenUID = c["SpecimenUID"]
    spec_issuer = Dataset()
    spec_issuer.LocalNamespaceEntityID = c["IssuerOfTheSpecimenIdentifier"]
    spec.IssuerOfTheSpecimenIdentifierSequence = Sequence([spec_issuer])
    spec.SpecimenShortDescription = c["SpecimenShortDescription"]
    spec.SpecimenDetailedDescription = c["SpecimenDetailedDescription"]
    step, content = Dataset(), Dataset()
    content.ValueType = "TEXT"
    content.ConceptNameCodeSequence = Sequence([_code("121041", "DCM", "Specimen Identifier")])
    content.TextValue = c["SpecimenPreparationText"]
    step.SpecimenPreparationStepContentItemSequence = Sequence([content])
    spec.SpecimenPreparationSequence = Sequence([step])
    ds.SpecimenDescriptionSequence = Sequence([spec])
    block = ds.private_block(0x0009, "SLIDEGATE SYNTH", create=True)
    block.add_new(0x01, "LO", c["PrivateText"])
    block.add_new(0x02, "OB", b"\x00\x01" + c["PrivateBinaryText"].encode() + b"\x00\xff")


def _frames(img: RGB, th: int, tw: int) -> list[RGB]:
    """Row-major tiles, edge tiles padded to full size (PS3.3 C.8.12.4.1.2)."""
    h, w = img.shape[:2]
    out = []
    for y in range(0, h, th):
        for x in range(0, w, tw):
            tile = np.zeros((th, tw, 3), np.uint8)
            part = img[y : y + th, x : x + tw]
            tile[: part.shape[0], : part.shape[1]] = part
            out.append(tile)
    return out


def _instance(
    img: RGB, kind: str, c: dict[str, str], seed: int, index: int, tile: int, syntax: str
) -> Dataset:
    h, w = img.shape[:2]
    th, tw = min(tile, h), min(tile, w)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(WSI_SOP_CLASS)
    meta.TransferSyntaxUID = UID(syntax)
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    _identity(ds, c, seed, index)
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.SOPClassUID = WSI_SOP_CLASS
    ds.Modality = "SM"
    ds.ImageType = ["ORIGINAL" if index == 0 else "DERIVED", "PRIMARY", kind, "NONE"]
    ds.InstanceNumber = index + 1
    ds.BurnedInAnnotation = "YES" if kind == "LABEL" else "NO"
    ds.SpecimenLabelInImage = "YES" if kind in ("LABEL", "OVERVIEW") else "NO"
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.Rows, ds.Columns = th, tw
    ds.TotalPixelMatrixRows, ds.TotalPixelMatrixColumns = h, w
    ds.TotalPixelMatrixFocalPlanes, ds.NumberOfOpticalPaths = 1, 1
    ds.ImagedVolumeWidth, ds.ImagedVolumeHeight = w * MPP / 1000, h * MPP / 1000
    shared, measures = Dataset(), Dataset()
    measures.PixelSpacing = [f"{MPP / 1000:.8f}", f"{MPP / 1000:.8f}"]
    shared.PixelMeasuresSequence = Sequence([measures])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    frames = _frames(img, th, tw)
    ds.DimensionOrganizationType = "TILED_FULL"
    ds.NumberOfFrames = len(frames)
    if syntax == ExplicitVRLittleEndian:
        ds.PixelData = b"".join(f.tobytes() for f in frames)
        ds["PixelData"].VR = "OB"
        ds.LossyImageCompression = "00"
    else:
        encode = (
            (lambda f: bytes(imagecodecs.jpeg8_encode(f, level=92)))
            if syntax == JPEGBaseline8Bit
            else (lambda f: bytes(imagecodecs.jpeg2k_encode(f, level=0, codecformat="j2k")))
        )
        ds.PixelData = encapsulate([encode(f) for f in frames], has_bot=True)
        if syntax == JPEGBaseline8Bit:  # JFIF YCbCr 4:2:0 codestream, as scanners write it
            ds.PhotometricInterpretation = "YBR_FULL_422"
        ds["PixelData"].VR = "OB"
        ds.LossyImageCompression = "01" if syntax == JPEGBaseline8Bit else "00"
    return ds


def _sparse(ds: Dataset, img: RGB, tile: int, seed: int) -> None:
    """Rewrite a JPEG 2000 instance as TILED_SPARSE, frames in a shuffled order."""
    frames = _frames(img, tile, tile)
    cols = -(-img.shape[1] // tile)
    order = np.random.default_rng(seed).permutation(len(frames))
    per_frame = []
    for k in order:
        item, plane = Dataset(), Dataset()
        plane.RowPositionInTotalImagePixelMatrix = int(k // cols) * tile + 1
        plane.ColumnPositionInTotalImagePixelMatrix = int(k % cols) * tile + 1
        item.PlanePositionSlideSequence = Sequence([plane])
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    ds.DimensionOrganizationType = "TILED_SPARSE"
    enc = [bytes(imagecodecs.jpeg2k_encode(frames[k], level=0, codecformat="j2k")) for k in order]
    ds.PixelData = encapsulate(enc, has_bot=True)
    ds["PixelData"].VR = "OB"


def _save(ds: Dataset, path: Path) -> None:
    with pydicom.config.disable_value_validation():
        ds.save_as(str(path), enforce_file_format=True)


def write_dicom_wsi(
    out: Path, *, seed: int = 7, n: int = 1, size: tuple[int, int] = (768, 1024),
    single: bool = False, burned_in_pyramid: bool = False,
) -> DicomSlide:  # fmt: skip
    """Write a synthetic DICOM WSI slide: folder `out` (or the file `out` when `single`)."""
    c = plant(seed, n)
    base = tissue_image(seed, size)
    levels = [base, downsample(base, 2), downsample(base, 4)]
    label = render_label([c["LabelPixels"], c["PatientID"], c["AccessionNumber"]], (200, 400))
    out = Path(out)
    if single:
        out.parent.mkdir(parents=True, exist_ok=True)
        ds = _instance(base, "VOLUME", c, seed, 0, 256, JPEGBaseline8Bit)
        ds.BurnedInAnnotation = "YES" if burned_in_pyramid else "NO"
        _save(ds, out)
        return DicomSlide(out, levels[:1], None, c)
    out.mkdir(parents=True, exist_ok=True)
    syntaxes = [JPEGBaseline8Bit, JPEG2000Lossless, ExplicitVRLittleEndian]
    tiles = [256, 256, 128]
    for i, (img, syntax, tile) in enumerate(zip(levels, syntaxes, tiles, strict=True)):
        ds = _instance(img, "VOLUME", c, seed, i, tile, syntax)
        if i == 0 and burned_in_pyramid:
            ds.BurnedInAnnotation = "YES"
        if i == 1:
            _sparse(ds, img, tile, seed)
        _save(ds, out / f"level-{i}.dcm")
    macro = render_macro(downsample(base, 4), label, (200, 600))
    extras = [("LABEL", label), ("OVERVIEW", macro), ("THUMBNAIL", resize(base, (96, 128)))]
    for k, (kind, img) in enumerate(extras, start=3):
        ds = _instance(img, kind, c, seed, k, 1024, JPEGBaseline8Bit)
        _save(ds, out / f"{kind.lower()}.dcm")
    return DicomSlide(out, levels, label, c)
