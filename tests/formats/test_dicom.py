"""DICOM WSI handler on synthetic slides with canaries: layout, fields, reader, plan, audit."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
import zarr
from pydicom.encaps import get_frame
from pydicom.pixels import iter_pixels

from slidegate.audit import audit_output
from slidegate.audit.reopen import verify_output
from slidegate.convert.ome_zarr import write_ome_zarr
from slidegate.deid.plan import plan_deid, summarize
from slidegate.deid.policy import load_deid_policy
from slidegate.errors import CorruptSlideError, PolicyViolation, UnsupportedSlideError
from slidegate.formats import detect_format, open_reader, read_facts
from slidegate.formats.dicom_reader import DicomRegionReader, open_dicom
from slidegate.synth.dicom import DicomSlide, write_dicom_wsi

POLICY = Path(__file__).resolve().parents[2] / "policies" / "deid" / "dicom.yaml"


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> DicomSlide:
    return write_dicom_wsi(tmp_path_factory.mktemp("dicom") / "slide", seed=11)


@pytest.fixture(scope="module")
def released(synth: DicomSlide, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    facts = read_facts(synth.path, "slide")
    plan = plan_deid(facts, load_deid_policy(POLICY), "s-0000000000000001")
    out = tmp_path_factory.mktemp("out") / "slide.ome.zarr"
    write_ome_zarr(synth.path, plan, out)
    return {"facts": facts, "plan": plan, "out": out}


def _pydicom_level(file: Path, height: int, width: int) -> np.ndarray:
    """A whole level assembled from pydicom's own decode of its frames (TILED_FULL)."""
    ds = pydicom.dcmread(file, stop_before_pixels=True)
    th, tw = int(ds.Rows), int(ds.Columns)
    cols = -(-width // tw)
    out = np.zeros((-(-height // th) * th, cols * tw, 3), np.uint8)
    for i, frame in enumerate(iter_pixels(str(file))):
        r, c = divmod(i, cols)
        out[r * th : (r + 1) * th, c * tw : (c + 1) * tw] = frame
    return out[:height, :width]


def test_layout_levels_associated_and_mpp(synth: DicomSlide) -> None:
    assert detect_format(synth.path) == "dicom"
    facts = read_facts(synth.path, "slide")
    assert facts.format == "dicom"
    assert [(lv.height, lv.width) for lv in facts.levels] == [(768, 1024), (384, 512), (192, 256)]
    assert [lv.compression for lv in facts.levels] == ["JPEG", "JPEG2000", "NONE"]
    assert [lv.downsample for lv in facts.levels] == [1.0, 2.0, 4.0]
    assert sorted(a.kind for a in facts.associated) == ["label", "macro", "thumbnail"]
    assert facts.mpp_x == pytest.approx(0.25) and facts.mpp_y == pytest.approx(0.25)
    # level 0 is instance 0: its values win when a kept field is written once
    assert facts.levels[0].page == 0


def test_every_planted_metadata_canary_is_inventoried(synth: DicomSlide) -> None:
    facts = read_facts(synth.path, "slide")
    values = "\n".join(f.value for f in facts.fields)
    missing = [k for k, v in synth.canaries.items() if k != "LabelPixels" and v not in values]
    assert missing == []
    names = {f.name for f in facts.fields}
    assert "dicom.0009,1001" in names and "dicom.0009,1002" in names  # private text + binary
    assert "dicom.SpecimenDescriptionSequence.SpecimenIdentifier" in names
    assert all(f.location.startswith("instance ") for f in facts.fields)
    family, given = synth.canaries["PatientName"].split("^")
    parts = {f.value for f in facts.fields if f.name == "dicom.PatientName"}
    assert {family, given} <= parts  # each name component is searched on its own


def test_region_reads_match_pydicom_decode(synth: DicomSlide) -> None:
    facts = read_facts(synth.path, "slide")
    with open_reader(synth.path) as reader:
        lv0, lv1, lv2 = facts.levels
        full0 = reader.read(lv0, 0, 0, lv0.height, lv0.width)
        ref0 = _pydicom_level(synth.path / "level-0.dcm", lv0.height, lv0.width)
        assert np.abs(full0.astype(int) - ref0.astype(int)).max() <= 2  # two JPEG decoders
        assert np.abs(full0.astype(int) - synth.levels[0].astype(int)).mean() < 3  # lossy
        # the sparse JPEG 2000 level (frames shuffled) and the native level: exact
        np.testing.assert_array_equal(reader.read(lv1, 0, 0, 384, 512), synth.levels[1])
        np.testing.assert_array_equal(reader.read(lv2, 0, 0, 192, 256), synth.levels[2])
        # a region across tile borders equals the same crop of the whole level
        np.testing.assert_array_equal(reader.read(lv0, 250, 250, 300, 520), full0[250:550, 250:770])
        np.testing.assert_array_equal(
            reader.read(lv2, 100, 120, 92, 136), synth.levels[2][100:, 120:]
        )


def test_region_reader_cache_is_bounded(synth: DicomSlide) -> None:
    facts = read_facts(synth.path, "slide")
    tile_bytes = 256 * 256 * 3
    with DicomRegionReader(synth.path, cache_bytes=2 * tile_bytes) as reader:
        reader.read(facts.levels[0], 0, 0, 768, 1024)
        assert reader._cached <= 2 * tile_bytes and len(reader._cache) <= 2


def test_raw_tiles_are_the_stored_frames(synth: DicomSlide) -> None:
    ds = pydicom.dcmread(synth.path / "level-0.dcm")
    with open_dicom(synth.path) as slide:
        grid = slide.grids[0]
        assert (grid.rows, grid.columns, grid.tile_height, grid.compression) == (3, 4, 256, "JPEG")
        assert grid.transfer_syntax == "1.2.840.10008.1.2.4.50"
        for r in range(grid.rows):
            for c in range(grid.columns):
                expected = get_frame(ds.PixelData, r * grid.columns + c, number_of_frames=12)
                assert slide.raw_tile(0, r, c) == expected
        # sparse level: the raw tile at (r, c) is the frame whose position is (r, c)
        tile = slide.tile(1, 1, 0)
        assert tile is not None
        np.testing.assert_array_equal(tile[:128], synth.levels[1][256:384, 0:256])


def test_plan_keeps_only_technical_fields(released: dict[str, Any]) -> None:
    plan = released["plan"]
    kept = [f for f in plan.fields if f.action != "drop"]
    assert kept and all(f.field_class == "technical" for f in kept)
    attrs = plan.attributes
    assert attrs["dicom.PixelSpacing"] == "0.00025000\\0.00025000"
    assert attrs["dicom.TotalPixelMatrixColumns"] == "1024"  # level 0's value
    assert not any(k.startswith("dicom.0009") for k in attrs)
    counts = summarize(plan)
    assert counts["images_dropped.label"] == 1 and counts["images_dropped.macro"] == 1
    assert counts["images_dropped.thumbnail"] == 1 and counts["levels"] == 3


def test_output_has_no_canary_and_matches_source(
    released: dict[str, Any], synth: DicomSlide
) -> None:
    out: Path = released["out"]
    data = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    names = "\n".join(str(p.relative_to(out)) for p in out.rglob("*"))
    hits = [k for k, v in synth.canaries.items() if v.encode() in data or v in names]
    for part in synth.canaries["PatientName"].split("^"):
        assert part.encode() not in data
    assert hits == []
    group = zarr.open_group(out, mode="r")
    assert sorted(group.array_keys()) == ["0", "1", "2"]  # no label, overview, thumbnail
    assert [zarr.open_array(out / k, mode="r").shape for k in "012"] == [
        (3, 768, 1024),
        (3, 384, 512),
        (3, 192, 256),
    ]
    np.testing.assert_array_equal(np.asarray(group["1"]).transpose(1, 2, 0), synth.levels[1])
    result = audit_output(out, released["facts"], released["plan"], list(synth.canaries.items()))
    assert result.ok and result.pixels_checked, (result.findings, result.problems)


def test_reopen_check_catches_changed_pixels(released: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "copy.ome.zarr"
    shutil.copytree(released["out"], out)
    arr = zarr.open_array(out / "2", mode="r+")
    arr[:, 10:20, 10:20] = 255 - np.asarray(arr[:, 10:20, 10:20])
    facts = released["facts"]
    problems = verify_output(out, released["plan"], Path(facts.source_path))
    assert problems and "level 2" in problems[0] and "pydicom" in problems[0]


def test_single_file_slide(tmp_path: Path) -> None:
    slide = write_dicom_wsi(tmp_path / "one.dcm", seed=12, single=True)
    facts = read_facts(slide.path, "one.dcm")
    assert len(facts.levels) == 1 and facts.associated == ()
    plan = plan_deid(facts, load_deid_policy(POLICY), "s-0000000000000002")
    out = tmp_path / "one.ome.zarr"
    write_ome_zarr(slide.path, plan, out)
    result = audit_output(out, facts, plan, list(slide.canaries.items()))
    assert result.ok and result.pixels_checked, (result.findings, result.problems)


def test_burned_in_annotation_on_pyramid_is_a_policy_violation(tmp_path: Path) -> None:
    slide = write_dicom_wsi(tmp_path / "burned", seed=13, burned_in_pyramid=True)
    with pytest.raises(PolicyViolation) as err:
        read_facts(slide.path, "burned")
    assert "burned-in" in err.value.reason
    assert slide.canaries["PatientID"] not in str(err.value)


def test_label_only_slide_has_no_pyramid(tmp_path: Path, synth: DicomSlide) -> None:
    folder = tmp_path / "labels"
    folder.mkdir()
    shutil.copy(synth.path / "label.dcm", folder / "label.dcm")
    shutil.copy(synth.path / "overview.dcm", folder / "overview.dcm")
    with pytest.raises(UnsupportedSlideError) as err:
        read_facts(folder, "labels")
    assert "without pyramid" in err.value.reason and "label" in str(err.value)


def test_truncated_instance_is_corrupt(tmp_path: Path, synth: DicomSlide) -> None:
    bad = tmp_path / "bad.dcm"
    raw = (synth.path / "level-0.dcm").read_bytes()
    bad.write_bytes(raw[: len(raw) // 2])
    facts = read_facts(bad, "bad.dcm")  # the header is intact: the inventory works
    lv = facts.levels[0]
    with pytest.raises(CorruptSlideError), open_reader(bad) as reader:
        reader.read(lv, 0, 0, lv.height, lv.width)
    bad.write_bytes(raw[:400])  # header cut: corrupt at inventory, named by file
    with pytest.raises(CorruptSlideError) as err:
        read_facts(bad, "bad.dcm")
    assert err.value.reason.startswith("corrupt")


def test_policy_has_an_explicit_rule_for_every_ps315_attribute() -> None:
    """phi-locations.md 4.5: each attribute it names has a rule of its own (not a catch-all)."""
    policy = load_deid_policy(POLICY)
    named = [
        "LabelText", "BarcodeValue", "ContainerIdentifier",
        "IssuerOfTheContainerIdentifierSequence.LocalNamespaceEntityID", "ContainerDescription",
        "SpecimenDescriptionSequence.SpecimenIdentifier",
        "SpecimenDescriptionSequence.IssuerOfTheSpecimenIdentifierSequence.UniversalEntityID",
        "SpecimenDescriptionSequence.SpecimenUID",
        "SpecimenDescriptionSequence.SpecimenShortDescription",
        "SpecimenDescriptionSequence.SpecimenDetailedDescription",
        "SpecimenDescriptionSequence.SpecimenPreparationSequence.SpecimenPreparationStepContentItemSequence.TextValue",
        "SpecimenAccessionNumber", "SlideIdentifier", "PatientName", "PatientID",
        "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyDate", "ContentDate",
        "AcquisitionDateTime", "DeviceSerialNumber", "StationName", "OperatorsName",
        "StudyDescription", "SeriesDescription", "StudyInstanceUID", "SeriesInstanceUID",
        "SOPInstanceUID", "FrameOfReferenceUID", "PyramidUID", "ImageComments",
    ]  # fmt: skip
    catch_all = {"dicom.*,*", "dicom.*UID", "dicom.*DateTime", "dicom.*Date", "dicom.*Time",
                 "dicom.*Name", "dicom.*ID", "dicom.*Identifier", "dicom.*Description",
                 "dicom.*Comments", "dicom.*TextValue"}  # fmt: skip
    for name in named:
        found = policy.rule_for(f"dicom.{name}")
        assert found is not None and found[0] not in catch_all, name
        assert found[1].action == "drop", name
    assert policy.rule_for("dicom.0009,1001") is not None  # private tags: dropped, classed


@pytest.mark.parametrize("layout", ["no-offset-table", "offset-table"])
def test_frames_split_over_fragments(synth: DicomSlide, tmp_path: Path, layout: str) -> None:
    """Frames in several fragments each: found by the Basic Offset Table, else by the JPEG
    end-of-image markers (PS3.5 A.4)."""
    from pydicom.encaps import encapsulate, generate_frames

    ds = pydicom.dcmread(synth.path / "level-0.dcm")
    frames = list(generate_frames(ds.PixelData, number_of_frames=int(ds.NumberOfFrames)))
    ds.PixelData = encapsulate(frames, fragments_per_frame=3, has_bot=layout == "offset-table")
    ds.save_as(tmp_path / "split.dcm", enforce_file_format=True)
    facts = read_facts(tmp_path / "split.dcm", "split.dcm")
    lv = facts.levels[0]
    with open_reader(tmp_path / "split.dcm") as split, open_reader(synth.path) as whole:
        np.testing.assert_array_equal(
            split.read(lv, 0, 0, lv.height, lv.width), whole.read(lv, 0, 0, lv.height, lv.width)
        )
    with open_dicom(tmp_path / "split.dcm") as slide:
        assert slide.raw_tile(0, 2, 3) == frames[11]
