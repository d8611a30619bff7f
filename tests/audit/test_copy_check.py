"""The audit's needles for original-format copies: a DICOM copy carries technical attributes
and standard UIDs by design, never an identifying value or a canary."""

from __future__ import annotations

from slidegate.audit.copy_check import DICOM_STRUCTURAL, copy_needles


def test_dicom_copy_needles_keep_identifiers_and_canaries() -> None:
    needles = {
        "dicom.PatientName": b"Doe^Jane",
        "dicom.StudyInstanceUID": b"1.2.3.4.20190604",  # remapped in the copy: still searched
        "dicom.StudyInstanceUID[date]": b"20190604",
        "dicom.TransferSyntaxUID": b"1.2.840.10008.1.2.4.50",
        "dicom.TransferSyntaxUID[date]": b"2.840.10",
        "dicom.OpticalPathSequence.IlluminationTypeCodeSequence.CodeMeaning": b"Brightfield",
        "dicom.TotalPixelMatrixOriginSequence.XOffsetInSlideCoordinateSystem#2": b"23.449873",
        "canary:ContainerIdentifier": b"CANARY-1234",
    }
    kept = copy_needles(needles, "dicom")
    assert sorted(kept) == [
        "canary:ContainerIdentifier",
        "dicom.PatientName",
        "dicom.StudyInstanceUID",
        "dicom.StudyInstanceUID[date]",
    ]
    assert copy_needles(needles, "svs") == needles  # a TIFF copy carries no source value
    assert "dicom.PixelMeasuresSequence.PixelSpacing" not in DICOM_STRUCTURAL  # nested path:
    assert "dicom.SharedFunctionalGroupsSequence.PixelMeasuresSequence.PixelSpacing" in (
        DICOM_STRUCTURAL
    )
    assert not any(p.endswith("UID") for p in DICOM_STRUCTURAL)
