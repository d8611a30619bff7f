"""More DICOM transfer syntaxes, one decoder choice (issue 13 item 2): JPEG-LS, JPEG XL, lossless
JPEG and RLE DICOM WSI slides (written here with pydicom + imagecodecs, not slidegate's synth)
are inventoried, converted and pass the audit's independent re-open, which finds the frames with
pydicom and decodes them with pydicom where it has a decoder here, else with imagecodecs (once
"RuntimeError" for JPEG-LS). A codec this machine cannot decode is named at inventory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
import zarr
from pydicom._uid_dict import UID_dictionary
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixels.encoders.base import RLELosslessEncoder
from pydicom.uid import generate_uid

from slidegate.audit import audit_output
from slidegate.audit.reopen import verify_output
from slidegate.audit.sources import DicomSource
from slidegate.convert.ome_zarr import write_ome_zarr
from slidegate.deid.plan import plan_deid
from slidegate.deid.policy import load_deid_policy
from slidegate.errors import UnsupportedSlideError
from slidegate.formats import open_reader, read_facts
from slidegate.formats.dicom_independent import pydicom_decodes

POLICY = Path(__file__).resolve().parents[2] / "policies" / "deid" / "dicom.yaml"
WSI = "1.2.840.10008.5.1.4.1.1.77.1.6"
TILE = 64
PHI = "Codec^Patient"


def _image(samples: int, dtype: type) -> np.ndarray:
    y, x = np.mgrid[0:160, 0:224]
    top = 255 if dtype is np.uint8 else 4000
    planes = [(x * 3 + y) % top, (y * 5) % top, ((x + y) * 2) % top][:samples]
    return np.stack(planes, -1).astype(dtype)


def _rle(tile: np.ndarray) -> bytes:
    rows, cols, samples = tile.shape
    bits = tile.dtype.itemsize * 8
    return bytes(
        RLELosslessEncoder.encode(
            tile.tobytes(),
            rows=rows,
            columns=cols,
            samples_per_pixel=samples,
            bits_allocated=bits,
            bits_stored=bits,
            pixel_representation=0,
            photometric_interpretation="RGB" if samples == 3 else "MONOCHROME2",
            number_of_frames=1,
            planar_configuration=0,
        )
    )


#: name -> (transfer syntax, encoder of one (h, w, samples) tile, samples, dtype)
CASES: dict[str, tuple[str, Callable[[np.ndarray], bytes], int, type]] = {
    "jpeg-ls": ("1.2.840.10008.1.2.4.80", imagecodecs.jpegls_encode, 3, np.uint8),
    "jpeg-ls-16bit": (
        "1.2.840.10008.1.2.4.80",
        lambda t: imagecodecs.jpegls_encode(t[..., 0]),
        1,
        np.uint16,
    ),
    "jpeg-xl": (
        "1.2.840.10008.1.2.4.110",
        lambda t: imagecodecs.jpegxl_encode(t, lossless=True),
        3,
        np.uint8,
    ),
    "lossless-jpeg": (
        "1.2.840.10008.1.2.4.70",
        lambda t: imagecodecs.ljpeg_encode(t[..., 0]),
        1,
        np.uint16,
    ),
    "rle": ("1.2.840.10008.1.2.5", _rle, 3, np.uint8),
}


def write_wsi(
    path: Path, ts: str, encode: Callable[[np.ndarray], bytes], image: np.ndarray
) -> Path:
    """One-level TILED_FULL DICOM WSI whose frames are `encode`d tiles (edge tiles padded)."""
    h, w, samples = image.shape
    rows, cols = -(-h // TILE), -(-w // TILE)
    padded = np.zeros((rows * TILE, cols * TILE, samples), image.dtype)
    padded[:h, :w] = image
    frames = [
        encode(np.ascontiguousarray(padded[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE]))
        for r in range(rows)
        for c in range(cols)
    ]
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = WSI
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ts
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = WSI, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName, ds.Modality = PHI, "SM"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"]
    ds.Rows = ds.Columns = TILE
    ds.TotalPixelMatrixRows, ds.TotalPixelMatrixColumns = h, w
    ds.NumberOfFrames = len(frames)
    ds.DimensionOrganizationType = "TILED_FULL"
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = "RGB" if samples == 3 else "MONOCHROME2"
    if samples == 3:
        ds.PlanarConfiguration = 0
    bits = image.dtype.itemsize * 8
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits, bits - 1, 0
    ds.PixelData = encapsulate(frames, has_bot=True)
    ds["PixelData"].VR = "OB"
    known = ts in UID_dictionary
    if not known:  # pydicom 3.0 does not know the JPEG XL UIDs (DICOM 2024): only to write
        UID_dictionary[ts] = ("JPEG XL", "Transfer Syntax", "", "", "JPEGXL")
    try:
        ds.save_as(path, enforce_file_format=True)
    finally:
        if not known:
            del UID_dictionary[ts]
    return path


@pytest.mark.parametrize("case", sorted(CASES))
def test_transfer_syntax_converts_and_passes_the_independent_reopen(
    case: str, tmp_path: Path
) -> None:
    ts, encode, samples, dtype = CASES[case]
    image = _image(samples, dtype)
    slide = write_wsi(tmp_path / f"{case}.dcm", ts, encode, image)
    facts = read_facts(slide, case)
    (lv,) = facts.levels
    with open_reader(slide) as reader:
        np.testing.assert_array_equal(reader.read(lv, 0, 0, lv.height, lv.width), image)
    independent = DicomSource(slide).level(lv)  # the audit's reader for derived levels
    assert independent is not None
    region = independent(slice(0, lv.height), slice(0, lv.width))
    np.testing.assert_array_equal(np.moveaxis(region, 0, -1), image)
    plan = plan_deid(facts, load_deid_policy(POLICY), "s-00000000000000c1")
    out = tmp_path / "out.ome.zarr"
    write_ome_zarr(slide, plan, out)
    result = audit_output(out, facts, plan, [("patient", PHI)])
    assert result.ok and result.pixels_checked, (result.findings, result.problems)
    level0 = np.asarray(zarr.open_group(out, mode="r")["0"][:])
    np.testing.assert_array_equal(np.moveaxis(level0, 0, -1), image)
    # the re-open is not blind: one changed pixel block is caught, by the independent decoder
    arr = zarr.open_array(out / "0", mode="r+")
    arr[:, 5:9, 5:9] = np.asarray(arr[:, 5:9, 5:9]) ^ 1
    problems = verify_output(out, plan, slide)
    assert problems and "level 0" in problems[0] and "could not be compared" not in problems[0]


def test_pydicom_alone_cannot_decode_them_here() -> None:
    """Why the fallback exists: without it the audit could not re-open these at all."""
    assert not pydicom_decodes("1.2.840.10008.1.2.4.80")  # JPEG-LS
    assert not pydicom_decodes("1.2.840.10008.1.2.4.70")  # lossless JPEG
    assert not pydicom_decodes("1.2.840.10008.1.2.4.110")  # JPEG XL


def test_a_codec_this_machine_cannot_decode_is_named_at_inventory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ts, encode, samples, dtype = CASES["jpeg-ls"]
    slide = write_wsi(tmp_path / "ls.dcm", ts, encode, _image(samples, dtype))
    monkeypatch.setattr(imagecodecs.JPEGLS, "available", False)  # an imagecodecs without it
    with pytest.raises(UnsupportedSlideError) as err:
        read_facts(slide, "ls")
    assert err.value.reason == "unsupported: no JPEGLS decoder on this machine"
    assert "JPEGLS" in str(err.value) and "RuntimeError" not in str(err.value)
    assert str(tmp_path) not in str(err.value)


def test_deflated_dicom_is_named_with_the_fix(tmp_path: Path) -> None:
    ts, encode, samples, dtype = CASES["rle"]
    slide = write_wsi(tmp_path / "rle.dcm", ts, encode, _image(samples, dtype))
    from slidegate.formats.dicom_frames import compression_name

    compression_name("1.2.840.10008.1.2.5")  # RLE is supported
    with pytest.raises(UnsupportedSlideError) as err:
        compression_name("1.2.840.10008.1.2.1.99")
    assert "Deflated" in err.value.reason and "dcmconv" in str(err.value)
    assert slide.exists()
