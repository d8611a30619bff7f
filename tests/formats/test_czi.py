"""Zeiss CZI: the real mosaic (16-bit, 2 tiles) and synthetic slide scans written in the ZISRAW
layout (pyramid subblocks, 2 channels or RGB, zstd tiles, Label/SlidePreview/Thumbnail
attachments, canaries in the XML); facts, reader, policy, and the release flow."""

from __future__ import annotations

from pathlib import Path

import czifile
import numpy as np
import pytest
import zarr

from slidegate.deid.plan import plan_deid
from slidegate.deid.policy import load_deid_policy
from slidegate.errors import CorruptSlideError, UnsupportedSlideError
from slidegate.formats import detect_format, open_reader, read_facts
from slidegate.synth.czi import CziMeta, _shrink, canary_meta, write_czi
from tests.releasing import release_folder


def _image(seed: int, shape: tuple[int, int, int], dtype: str) -> np.ndarray:
    rng = np.random.default_rng(seed)
    top = 4096 if dtype == "uint16" else 256
    return rng.integers(0, top, shape, dtype=dtype)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, CziMeta]:
    meta = canary_meta(seed=4, n=1)
    image = _image(4, (700, 900, 2), "uint16")
    path = tmp_path_factory.mktemp("czi") / "slides" / "C0001.czi"
    path.parent.mkdir()
    write_czi(path, image, meta, levels=3)
    return path, image, meta


def test_real_mosaic_facts_and_pixels(real_slides: Path) -> None:
    slide = real_slides / "zeiss-czi" / "mosaic_test.czi"
    assert detect_format(slide) == "czi"
    facts = read_facts(slide, slide.name)
    (level,) = facts.levels
    assert (level.height, level.width, level.samples, level.dtype) == (624, 1756, 1, "uint16")
    assert facts.mpp_x == pytest.approx(1.0833333) and facts.mpp_y == pytest.approx(1.0833333)
    assert "thumbnail" in {a.kind for a in facts.associated}
    by_name = {f.name: f for f in facts.fields}
    assert by_name["czi.Metadata/Information/Document/UserName"].value == "Timm"
    assert by_name["czi.Metadata/Information/Document/UserName"].location.endswith(
        "Document[1]/UserName[1]"
    )
    assert by_name["czi.Metadata/Information/Image/AcquisitionDateAndTime"].value == (
        "2019-12-07T00:34:54.3773097Z"
    )
    with czifile.CziFile(str(slide)) as czi:
        expected = czi.asarray(max_workers=1).reshape(624, 1756, 1)
    with open_reader(slide) as reader:
        np.testing.assert_array_equal(reader.read(level, 0, 0, 624, 1756), expected)
        np.testing.assert_array_equal(
            reader.read(level, 100, 800, 300, 200), expected[100:400, 800:1000]
        )


@pytest.mark.parametrize("compression", ["none", "lzw", "zstd", "zstd1"])
def test_synthetic_pyramid_channels_and_compression(tmp_path: Path, compression: str) -> None:
    image = _image(1, (520, 700, 2), "uint16")
    path = tmp_path / "s.czi"
    write_czi(path, image, canary_meta(1, 2), levels=3, tile=128, compression=compression)
    facts = read_facts(path, "s.czi")
    assert [(lv.width, lv.height) for lv in facts.levels] == [(700, 520), (350, 260), (175, 130)]
    assert {lv.samples for lv in facts.levels} == {2}
    with open_reader(path) as reader:
        np.testing.assert_array_equal(reader.read(facts.levels[0], 0, 0, 520, 700), image)
        for i, lv in enumerate(facts.levels[1:], start=1):
            want = np.concatenate([_shrink(image[..., c : c + 1], 2**i) for c in (0, 1)], -1)
            got = reader.read(lv, 0, 0, lv.height, lv.width)
            np.testing.assert_array_equal(got, want)
    if compression == "none":  # czifile's own decode of level 0 agrees
        with czifile.CziFile(str(path)) as czi:
            ref = czi.asarray(max_workers=1).reshape(2, 520, 700)
        np.testing.assert_array_equal(np.moveaxis(ref, 0, -1), image)


def test_synthetic_rgb_is_read_as_rgb(tmp_path: Path) -> None:
    image = _image(2, (300, 260, 3), "uint8")
    path = tmp_path / "rgb.czi"
    write_czi(path, image, canary_meta(2, 3), rgb=True, levels=2)
    facts = read_facts(path, "rgb.czi")
    assert facts.levels[0].samples == 3 and facts.levels[0].dtype == "uint8"
    with open_reader(path) as reader:
        np.testing.assert_array_equal(reader.read(facts.levels[0], 0, 0, 300, 260), image)


def test_synthetic_facts_hold_every_canary(synthetic: tuple[Path, np.ndarray, CziMeta]) -> None:
    path, _, meta = synthetic
    facts = read_facts(path, path.name)
    values = {f.value for f in facts.fields}
    for label, value in meta.canaries():
        if not label.startswith("label."):  # label text lives in the Label attachment pixels
            assert value in values, label
    assert sorted(a.kind for a in facts.associated) == ["label", "macro", "thumbnail"]
    label = next(a for a in facts.associated if a.kind == "label")
    assert (label.compression, label.height, label.width) == ("CZI", 240, 240)  # embedded CZI


def test_policy_drops_identifying_fields_and_keeps_scaling(
    synthetic: tuple[Path, np.ndarray, CziMeta], policies_dir: Path
) -> None:
    path, _, meta = synthetic
    policy = load_deid_policy(policies_dir / "deid" / "czi.yaml")
    for name in (
        "czi.Metadata/Information/Document/UserName",
        "czi.Metadata/Information/Document/Name",
        "czi.Metadata/Information/Document/CreationDate",
        "czi.Metadata/Information/Image/AcquisitionDateAndTime",
        "czi.Metadata/Information/Instrument/Microscopes/Microscope@Name",
        "czi.subblock.Tags/AcquisitionTime",
        "czi.header.file_guid",
    ):
        found = policy.rule_for(name)
        assert found is not None and found[1].action == "drop", name
    plan = plan_deid(read_facts(path, path.name), policy, "s-1")
    attrs = plan.attributes
    assert attrs["czi.pixel_size_m"] == "5.000000E-07"
    assert not {v for _, v in meta.canaries()} & set(attrs.values())
    assert len(plan.levels) == 3 and len(plan.dropped_images) == 3


def test_truncated_czi_is_corrupt(
    tmp_path: Path, synthetic: tuple[Path, np.ndarray, CziMeta]
) -> None:
    path, _, _ = synthetic
    bad = tmp_path / "bad.czi"
    bad.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(CorruptSlideError) as info:
        read_facts(bad, "bad.czi")
    assert info.value.reason.startswith("corrupt")


@pytest.mark.integration
def test_synthetic_czi_release_is_clean(
    synthetic: tuple[Path, np.ndarray, CziMeta], prefect_server: object, tmp_path: Path
) -> None:
    path, image, meta = synthetic
    canaries = [{"field": label, "value": value} for label, value in meta.canaries()]
    row = "C0001.czi,CZPATIENT1,CZBLOCK1,CZSPEC1,52,F,C50.9,breast,2022-02-02"
    result, release = release_folder(tmp_path, path.parent, "czi-s", [row], canaries=canaries)
    assert result["published"] is True and result["counts"]["approved"] == 1
    files = [p for p in release.rglob("*") if p.is_file()]
    needles = [v for _, v in meta.canaries()] + ["C0001", "CZPATIENT1", "CZBLOCK1", "CZSPEC1"]
    hits = [(p.name, n) for p in files for n in needles if n.encode() in p.read_bytes()]
    assert hits == []
    (zpath,) = (release / "slides").iterdir()
    group = zarr.open_group(zpath, mode="r")
    assert sorted(group.array_keys()) == ["0", "1", "2"]  # no label, preview or thumbnail
    np.testing.assert_array_equal(np.moveaxis(group["0"][:], 0, -1), image)


def test_not_a_czi_and_z_stack_are_clear_errors(tmp_path: Path) -> None:
    fake = tmp_path / "fake.czi"
    fake.write_bytes(b"not a czi at all")
    with pytest.raises(CorruptSlideError, match="not a readable Zeiss CZI"):
        read_facts(fake, "fake.czi")
    stack = tmp_path / "stack.czi"
    write_czi(stack, _image(5, (256, 256, 1), "uint8"), canary_meta(5, 5), z_planes=2)
    with pytest.raises(UnsupportedSlideError, match="several Z indexes") as info:
        read_facts(stack, "stack.czi")
    assert info.value.reason == "unsupported: CZI several Z indexes"
