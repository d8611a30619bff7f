"""3DHISTECH MRXS: a hand-written synthetic slide folder (real layout) read through OpenSlide,
its facts (every Slidedat.ini key, SLIDE_ID in the .dat headers), the region reader, and the
whole release flow: zero canaries in any output byte, no label or macro, level 0 = OpenSlide."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import openslide
import pytest
import zarr

from slidegate.deid.plan import plan_deid
from slidegate.deid.policy import load_deid_policy
from slidegate.errors import CorruptSlideError
from slidegate.formats import detect_format, open_reader, read_facts
from slidegate.synth.mrxs import MrxsMeta, canary_meta, write_mrxs
from tests.releasing import release_folder


@pytest.fixture(scope="module")
def slide(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, MrxsMeta]:
    meta = canary_meta(seed=5, n=1)
    root = tmp_path_factory.mktemp("mrxs") / "slides"
    return write_mrxs(root, "M0001", meta, seed=5), meta


def test_synthetic_folder_has_the_real_layout(slide: tuple[Path, MrxsMeta]) -> None:
    path, meta = slide
    folder = path.with_suffix("")
    ini = (folder / "Slidedat.ini").read_bytes()
    assert ini.startswith(b"\xef\xbb\xbf") and b"\r\n" in ini
    for value in (meta.slide_id, meta.slide_name, meta.project_name, meta.created, meta.scanner_id):
        assert value.encode() in ini
    assert f'ProfileName="{meta.profile_name}"'.encode() in (folder / "Data0000.dat").read_bytes()
    for name in ("Index.dat", "Data0000.dat"):
        assert (folder / name).read_bytes()[5 : 5 + len(meta.slide_id)] == meta.slide_id.encode()
    osr = openslide.OpenSlide(str(path))
    assert {"label", "macro"} <= set(osr.associated_images)
    assert osr.level_count == 3


def test_facts_list_every_ini_key_and_each_slide_id_copy(slide: tuple[Path, MrxsMeta]) -> None:
    path, meta = slide
    assert detect_format(path) == "mrxs"
    facts = read_facts(path, "M0001.mrxs")
    by_name = {f.name: f for f in facts.fields}
    assert by_name["mirax.GENERAL.SLIDE_NAME"].value == meta.slide_name
    assert by_name["mirax.GENERAL.PROJECT_NAME"].value == meta.project_name
    assert by_name["mirax.GENERAL.SLIDE_CREATIONDATETIME"].value == meta.created
    assert by_name["mirax.NONHIERLAYER_0_SECTION.SCANNER_HARDWARE_ID"].value == meta.scanner_id
    copies = {(f.name, f.location) for f in facts.fields if f.value == meta.slide_id}
    assert copies == {
        ("mirax.GENERAL.SLIDE_ID", "Slidedat.ini [GENERAL] SLIDE_ID"),
        ("mrxs.index.SLIDE_ID", "Index.dat byte 5"),
        ("mrxs.datafile.SLIDE_ID", "Data0000.dat byte 5"),
    }
    assert by_name["mrxs.datafile.ProfileName"].value == meta.profile_name
    assert by_name["mrxs.datafile.ProfileName"].location.startswith("Data0000.dat byte ")
    osr = openslide.OpenSlide(str(path))
    props = {k for k in osr.properties if k.startswith("mirax.")}
    assert props == {f.name for f in facts.fields if f.name.startswith("mirax.")}
    kinds = sorted(a.kind for a in facts.associated)
    assert kinds == ["label", "macro", "macro", "thumbnail"]  # + the .mrxs picture itself
    assert [(lv.width, lv.height) for lv in facts.levels] == list(osr.level_dimensions)
    assert facts.mpp_x == pytest.approx(0.25)


def test_every_phi_field_has_an_explicit_drop_rule(policies_dir: Path) -> None:
    policy = load_deid_policy(policies_dir / "deid" / "mrxs.yaml")
    for name in (
        "mirax.GENERAL.SLIDE_NAME",
        "mirax.GENERAL.PROJECT_NAME",
        "mirax.GENERAL.SLIDE_ID",
        "mirax.GENERAL.SLIDE_CREATIONDATETIME",
        "mirax.GENERAL.SLIDE_UTC_CREATIONDATETIME",
        "mirax.NONHIERLAYER_0_SECTION.SCANNER_HARDWARE_ID",
        "mirax.NONHIERLAYER_1_SECTION.SCANNER_HARDWARE_ID",
        "mrxs.index.SLIDE_ID",
        "mrxs.datafile.SLIDE_ID",
        "mrxs.datafile.ProfileName",
    ):
        found = policy.rule_for(name)
        assert found is not None and found[1].action == "drop", name
        assert found[1].class_ != "technical", name


def test_plan_keeps_no_canary(slide: tuple[Path, MrxsMeta], policies_dir: Path) -> None:
    path, meta = slide
    facts = read_facts(path, "M0001.mrxs")
    plan = plan_deid(facts, load_deid_policy(policies_dir / "deid" / "mrxs.yaml"), "s-1")
    values = set(plan.attributes.values())
    assert not {v for _, v in meta.canaries()} & values
    assert len(plan.levels) == 3 and len(plan.dropped_images) == 4


def test_reader_matches_openslide_at_every_level(slide: tuple[Path, MrxsMeta]) -> None:
    path, _ = slide
    facts = read_facts(path, "M0001.mrxs")
    osr = openslide.OpenSlide(str(path))
    with open_reader(path) as reader:
        for lv in facts.levels:
            want = np.asarray(osr.read_region((0, 0), lv.index, (lv.width, lv.height)))[..., :3]
            got = reader.read(lv, 0, 0, lv.height, lv.width)
            np.testing.assert_array_equal(got, want)
            part = reader.read(lv, 7, 13, lv.height - 20, lv.width - 30)
            np.testing.assert_array_equal(part, want[7 : lv.height - 13, 13 : lv.width - 17])


def test_missing_folder_is_a_clear_error(tmp_path: Path, slide: tuple[Path, MrxsMeta]) -> None:
    path, _ = slide
    lonely = tmp_path / "lonely.mrxs"
    lonely.write_bytes(path.read_bytes())
    with pytest.raises(CorruptSlideError, match="folder") as info:
        read_facts(lonely, "lonely.mrxs")
    assert info.value.reason == "corrupt: MRXS folder missing"


def test_hash_covers_the_folder(tmp_path: Path) -> None:
    meta = canary_meta(seed=6, n=2)
    path = write_mrxs(tmp_path, "M0002", meta, seed=6, size=(512, 512), levels=2)
    before = read_facts(path, "M0002.mrxs").sha256
    index = path.with_suffix("") / "Index.dat"
    index.write_bytes(index.read_bytes() + b"\0")
    assert read_facts(path, "M0002.mrxs").sha256 != before


@pytest.mark.integration
def test_synthetic_mrxs_release_is_clean(
    slide: tuple[Path, MrxsMeta], prefect_server: object, tmp_path: Path
) -> None:

    path, meta = slide
    source = path.parent
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in source.rglob("*.*")}
    canaries = [{"field": label, "value": value} for label, value in meta.canaries()]
    row = "M0001.mrxs,MXPATIENT1,MXBLOCK1,MXSPEC1,44,F,C50.9,breast,2021-07-02"
    result, release = release_folder(tmp_path, source, "mrxs-1", [row], canaries=canaries)
    assert result["published"] is True and result["counts"]["approved"] == 1
    files = [p for p in release.rglob("*") if p.is_file()]
    needles = [v for _, v in meta.canaries()] + ["M0001", "MXPATIENT1", "MXBLOCK1", "MXSPEC1"]
    hits = [(p.name, n) for p in files for n in needles if n.encode() in p.read_bytes()]
    assert hits == []
    assert not any(n in str(p.relative_to(release)) for p in files for n in needles)
    (zpath,) = (release / "slides").iterdir()
    group = zarr.open_group(zpath, mode="r")
    assert sorted(group.array_keys()) == ["0", "1", "2"]  # pyramid only: no label, no macro
    osr = openslide.OpenSlide(str(path))
    want = np.asarray(osr.read_region((0, 0), 0, osr.dimensions))[..., :3]
    np.testing.assert_array_equal(np.moveaxis(group["0"][:], 0, -1), want)
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in source.rglob("*.*")}
    assert after == before  # the source slide and its folder are untouched
