"""Detection names what it recognised and the fix (issue 13 item 4): DICOM without its Part 10
preamble, a DICOM object that is not a whole-slide image, an NDPI set file, Olympus VSI / ETS;
a DICOM WSI instance whose frames tile a larger matrix is a pyramid level without ImageType.
Fixtures are written with pydicom / tifffile / raw bytes; messages name no path, no value."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
import tifffile
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from slidegate.errors import UnsupportedSlideError
from slidegate.formats import open_reader, read_facts

#: identifying values of the real highdicom file (SOURCES.md)
PHI = ("Test^Patient",)


def _refused(path: Path) -> UnsupportedSlideError:
    with pytest.raises(UnsupportedSlideError) as err:
        read_facts(path, "slide-7")
    message = str(err.value)
    assert str(path.parent) not in message and path.name not in message
    assert not any(v in message or v in err.value.reason for v in PHI)
    return err.value


@pytest.fixture
def sm_image(real_slides: Path) -> Path:
    return real_slides / "dicom-wsi" / "highdicom_sm_image.dcm"


def test_dicom_wsi_without_preamble_is_read_or_named_with_the_fix(
    sm_image: Path, tmp_path: Path
) -> None:
    """No preamble but the file meta kept (its transfer syntax stated): read as any DICOM WSI,
    by the reader and by the audit's independent reader; the data set alone (no file meta, so
    no transfer syntax): refused by name with the fix."""
    from slidegate.audit import audit_output
    from slidegate.convert.ome_zarr import write_ome_zarr
    from slidegate.deid.plan import plan_deid
    from slidegate.deid.policy import load_deid_policy

    raw = sm_image.read_bytes()
    assert raw[128:132] == b"DICM"
    with_meta = tmp_path / "meta-only.dcm"  # no preamble, file meta group kept
    with_meta.write_bytes(raw[132:])
    facts, before = read_facts(with_meta, "m"), read_facts(sm_image, "a")
    assert facts.format == "dicom" and facts.levels == before.levels
    policy = Path(__file__).resolve().parents[2] / "policies" / "deid" / "dicom.yaml"
    plan = plan_deid(facts, load_deid_policy(policy), "s-00000000000000d1")
    out = tmp_path / "out.ome.zarr"
    write_ome_zarr(with_meta, plan, out)
    result = audit_output(out, facts, plan, [("patient", PHI[0])])
    assert result.ok and result.pixels_checked, (result.findings, result.problems)

    bare = tmp_path / "bare.dcm"  # the data set alone: no preamble, no file meta
    ds = pydicom.dcmread(sm_image)
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    write_dataset(buffer, ds)
    bare.write_bytes(buffer.getvalue())
    assert bare.read_bytes()[128:132] != b"DICM"
    err = _refused(bare)
    assert err.reason == "unsupported: DICOM without preamble (re-write as Part 10)"
    assert "DICOM whole-slide image instance without the Part 10 preamble" in str(err)
    assert "dcmconv" in str(err)


def test_a_dicom_that_is_not_a_whole_slide_image_names_its_sop_class(tmp_path: Path) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientName = "Test^Patient"
    ds.Rows = ds.Columns = 8
    ds.SamplesPerPixel, ds.BitsAllocated, ds.BitsStored, ds.HighBit = 1, 16, 16, 15
    ds.PixelRepresentation = 0
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = np.zeros((8, 8), np.uint16).tobytes()
    path = tmp_path / "ct.dcm"
    ds.save_as(path, enforce_file_format=True)
    err = _refused(path)
    assert err.reason == "unsupported: DICOM, not a whole-slide image (CT Image Storage)"
    assert "not a VL Whole Slide Microscopy image" in str(err)
    no_preamble = tmp_path / "ct-raw.dcm"
    no_preamble.write_bytes(path.read_bytes()[132:])
    err = _refused(no_preamble)
    assert "not a whole-slide image (CT Image Storage)" in err.reason


def test_ndpi_set_and_olympus_files_are_named_with_the_export_to_use(tmp_path: Path) -> None:
    ndpis = tmp_path / "case.ndpis"
    ndpis.write_text(
        "[NanoZoomer Digital Pathology Image Set]\nNoImages=2\nImage0=a.ndpi\nImage1=b.ndpi\n"
    )
    err = _refused(ndpis)
    assert err.reason == "unsupported: NDPI set file (use its .ndpi files)"
    assert "put the .ndpi files" in str(err)

    vsi = tmp_path / "case.vsi"  # a VSI is a small TIFF (stripped overview) + ETS files
    tifffile.imwrite(vsi, np.zeros((64, 64, 3), np.uint8), photometric="rgb")
    (tmp_path / "_case_" / "stack1").mkdir(parents=True)
    ets = tmp_path / "_case_" / "stack1" / "frame_t.ets"
    ets.write_bytes(b"SIS\x00" + b"\x00" * 60 + b"ETS\x00" + b"\x00" * 200)
    for path in (vsi, ets):
        err = _refused(path)
        assert err.reason == "unsupported: Olympus VSI/ETS (export as OME-TIFF)"
        assert "Olympus cellSens" in str(err) and "OME-TIFF" in str(err)
        assert "stripped" not in str(err)


def test_a_wsi_instance_without_image_type_is_a_pyramid_level(
    sm_image: Path, tmp_path: Path
) -> None:
    """Tiled frames (25 frames of 10 x 10 in a 50 x 50 matrix) and no ImageType: a level, read
    by the converter's reader and found by the audit's independent reader alike."""
    from slidegate.formats.dicom_verify import _volume_headers

    untyped = tmp_path / "untyped.dcm"
    shutil.copyfile(sm_image, untyped)
    ds = pydicom.dcmread(untyped)
    del ds.ImageType
    ds.save_as(untyped)
    before, after = read_facts(sm_image, "a"), read_facts(untyped, "b")
    assert [(lv.height, lv.width) for lv in after.levels] == [
        (lv.height, lv.width) for lv in before.levels
    ]
    lv = after.levels[0]
    with open_reader(sm_image) as ra, open_reader(untyped) as rb:
        np.testing.assert_array_equal(
            rb.read(lv, 0, 0, lv.height, lv.width), ra.read(lv, 0, 0, lv.height, lv.width)
        )
    assert len(_volume_headers(untyped)) == 1

    single = tmp_path / "single.dcm"  # one untyped frame, no larger matrix: not a level
    ds.NumberOfFrames = 1
    ds.TotalPixelMatrixRows, ds.TotalPixelMatrixColumns = ds.Rows, ds.Columns
    ds.PixelData = ds.PixelData[: int(ds.Rows) * int(ds.Columns) * int(ds.SamplesPerPixel)]
    ds.save_as(single)
    err = _refused(single)
    assert "no pyramid" in str(err)
