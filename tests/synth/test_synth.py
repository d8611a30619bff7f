"""Tests of the synthetic cohort generator: real files written, re-read with tifffile, raw bytes
searched for every planted canary."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import tifffile
from tifffile.tifffile import svs_description_metadata

from slidegate.synth import (
    COLUMNS,
    SynthCohort,
    downsample,
    generate_cohort,
    label_lines,
    plan_cohort,
    render_label,
    tissue_image,
)
from slidegate.synth.label import MACRO_SIZE
from slidegate.synth.plan import RARE
from slidegate.synth.texture import resize

SIZE = (1024, 1536)
ARGS: dict[str, Any] = {
    "slides": 6,
    "patients": 3,
    "seed": 7,
    "tiff_every": 3,
    "corrupt": 1,
    "base_size": SIZE,
}
METADATA_PREFIXES = ("aperio.", "tiff.")


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> SynthCohort:
    return generate_cohort(tmp_path_factory.mktemp("a"), **ARGS)


@pytest.fixture(scope="module")
def canaries(cohort: SynthCohort) -> list[dict[str, str]]:
    data = json.loads(cohort.canaries_json.read_text("utf-8"))
    assert set(data) == {"canaries"}
    return list(data["canaries"])


@pytest.fixture(scope="module")
def table(cohort: SynthCohort) -> pd.DataFrame:
    return pd.read_csv(cohort.cohort_csv, dtype=str)


def _pages(tif: tifffile.TiffFile) -> list[tifffile.TiffPage]:
    pages = [p for p in tif.pages if isinstance(p, tifffile.TiffPage)]
    assert len(pages) == len(tif.pages)
    return pages


def _slides(cohort: SynthCohort, suffix: str, *, corrupt: bool = False) -> list[Path]:
    paths = sorted(cohort.slides_dir.glob(f"*{suffix}"))
    limit = cohort.n_slides
    return [p for p in paths if (int(p.stem[1:]) > limit) == corrupt]


def test_same_seed_same_bytes_other_seed_other_bytes(cohort: SynthCohort, tmp_path: Path) -> None:
    first = _hashes(cohort.root)
    assert len(first) == 6 + 1 + 2
    again = generate_cohort(tmp_path / "b", **ARGS)
    assert _hashes(again.root) == first
    other = generate_cohort(tmp_path / "c", **{**ARGS, "seed": 8})
    second = _hashes(other.root)
    assert second.keys() == first.keys()
    assert all(second[k] != first[k] for k in first)


def test_file_names_and_kinds(cohort: SynthCohort, table: pd.DataFrame) -> None:
    names = sorted(p.name for p in cohort.slides_dir.iterdir())
    expected = ["S0001.svs", "S0002.svs", "S0003.tiff", "S0004.svs", "S0005.svs", "S0006.tiff"]
    assert names == [*expected, "S0007.svs"]
    assert list(table["slide"]) == names
    assert (cohort.n_slides, cohort.n_patients, cohort.n_corrupt) == (6, 3, 1)


def test_svs_layout_like_aperio(cohort: SynthCohort) -> None:
    svs = _slides(cohort, ".svs")
    assert len(svs) == 4
    for path in svs:
        with tifffile.TiffFile(path) as tif:
            assert tif.is_svs
            assert [s.name for s in tif.series] == ["Baseline", "Thumbnail", "Label", "Macro"]
            levels = [lvl.shape for lvl in tif.series[0].levels]
            assert levels == [(1024, 1536, 3), (256, 384, 3)]
            assert tif.series[1].shape == (64, 96, 3)
            pages = _pages(tif)
            assert len(pages) == 5
            base, thumb, reduced, label, macro = pages
            for page in (base, reduced):
                assert page.is_tiled and (page.tilelength, page.tilewidth) == (256, 256)
                assert page.compression == 7 and page.photometric == 2 and page.subfiletype == 0
                assert {271, 272, 305, 306, 315} <= set(page.tags.keys())
            assert not thumb.is_tiled and thumb.compression == 7
            assert reduced.description.startswith("Aperio Image Library v12.0.15 \r\n1536x1024 ->")
            # OpenSlide's rule: non-tiled page, NewSubfileType 1 = label, 9 = macro
            assert not label.is_tiled and label.subfiletype == 1 and label.compression == 5
            assert not macro.is_tiled and macro.subfiletype == 9 and macro.compression == 7
            assert label.description == "Aperio Image Library v12.0.15\r\nlabel 387x463"
            assert macro.description == "Aperio Image Library v12.0.15\r\nmacro 1280x431"
            meta = svs_description_metadata(base.description)
            assert meta["OriginalWidth"] == 1536 and meta["Originalheight"] == 1024
            assert meta["MPP"] == pytest.approx(0.499)
            tail = base.description.split("|", 1)[1]
            assert reduced.description.endswith(tail) and thumb.description.endswith(tail)


def test_svs_matches_real_aperio_page_kinds(cohort: SynthCohort, real_slides: Path) -> None:
    def kinds(path: Path) -> list[tuple[bool, int, int, int]]:
        with tifffile.TiffFile(path) as tif:
            pages = _pages(tif)
            picked = [pages[0], pages[1], pages[-2], pages[-1]]
            return [(p.is_tiled, p.compression, p.photometric, p.subfiletype) for p in picked]

    real = real_slides / "aperio-svs" / "CMU-1-Small-Region.svs"
    assert kinds(_slides(cohort, ".svs")[0]) == kinds(real)


def test_generic_tiff_is_one_pyramid(cohort: SynthCohort) -> None:
    tiffs = _slides(cohort, ".tiff")
    assert len(tiffs) == 2
    for path in tiffs:
        with tifffile.TiffFile(path) as tif:
            assert not tif.is_svs
            shapes = [lvl.shape for lvl in tif.series[0].levels]
            assert shapes == [(1024, 1536, 3), (512, 768, 3), (256, 384, 3)]
            base = _pages(tif)[0]
            assert base.is_tiled and base.compression == 7
            assert base.tags["ResolutionUnit"].value == 3
            assert base.tags["XResolution"].value == (40000, 1)  # 10000 / 0.25 um px per cm
            assert {269, 305, 306, 315, 316} <= set(base.tags.keys())
            last = _pages(tif)[-1]
            assert len(tif.pages) == 2 and not last.is_tiled and last.compression == 5
            assert last.shape == (463, 387, 3)


def test_every_canary_is_planted(
    cohort: SynthCohort, canaries: list[dict[str, str]], table: pd.DataFrame
) -> None:
    csv_text = cohort.cohort_csv.read_text("utf-8")
    blobs = {p.name: p.read_bytes() for p in cohort.slides_dir.iterdir()}
    fields = Counter(c["field"] for c in canaries)
    for name in (
        "aperio.Filename",
        "aperio.User",
        "aperio.ImageID",
        "tiff.Make",
        "tiff.HostComputer",
        "tiff.ImageDescription",
        "label.text",
    ):
        assert fields[name] > 0, name
    plan = plan_cohort(7, 6, 3, 3, 1)
    for c in canaries:
        assert len(c["value"]) >= 8
        name = c["slide"].removeprefix("slides/")
        value = c["value"].encode()
        if c["field"].startswith(METADATA_PREFIXES):
            assert value in blobs[name], c["field"]
            others = [n for n, b in blobs.items() if n != name and value in b]
            assert others == [], c["field"]  # unique to its slide
        elif c["field"].startswith("cohort."):
            column = c["field"].removeprefix("cohort.")
            row = table[table["slide"] == name]
            assert list(row[column]) == [c["value"]]
            assert c["value"] in csv_text
        else:
            assert c["field"] == "label.text"
            assert value not in blobs[name]  # pixels only, checked below
            slide = next(s for s in plan.slides if s.filename == name)
            assert c["value"] in label_lines(plan, slide)


def test_canaries_are_not_substrings_of_each_other(canaries: list[dict[str, str]]) -> None:
    owner = {c["value"]: (c["slide"], c["field"]) for c in canaries}
    for a, (slide, field) in owner.items():
        inside = [owner[b] for b in owner if a != b and a in b]
        # the only allowed overlap: a slide's scan time inside its own TIFF DateTime
        assert inside in ([], [(slide, "tiff.DateTime")]), field
        assert not inside or field == "aperio.Time"


def test_label_pixels_carry_the_label_text(cohort: SynthCohort) -> None:
    plan = plan_cohort(7, 6, 3, 3, 1)
    seen = set()
    for slide in plan.slides[:6]:
        with tifffile.TiffFile(cohort.slides_dir / slide.filename) as tif:
            pages = _pages(tif)
            label = pages[-2].asarray() if slide.kind == "svs" else pages[-1].asarray()
            expected = render_label(label_lines(plan, slide))
            np.testing.assert_array_equal(label, expected)  # lossless LZW: exact text pixels
            assert (label.mean(axis=2) < 80).mean() > 0.01  # dark ink exists
            seen.add(label.tobytes())
            if slide.kind == "svs":
                macro = pages[-1].asarray().astype(np.int16)
                h = MACRO_SIZE[0]
                w = round(expected.shape[1] * h / expected.shape[0])
                diff = np.abs(macro[:, :w] - resize(expected, (h, w)).astype(np.int16))
                assert diff.mean() < 6  # label area of the macro shows the same label
    assert len(seen) == 6


def test_levels_are_consistent(cohort: SynthCohort) -> None:
    path = _slides(cohort, ".svs")[0]
    with tifffile.TiffFile(path) as tif:
        base = tif.series[0].levels[0].asarray()
        reduced = tif.series[0].levels[1].asarray()
    expected = downsample(base, 4).astype(np.int16)
    assert np.abs(reduced.astype(np.int16) - expected).mean() < 3


def test_cohort_table_structure(table: pd.DataFrame) -> None:
    assert list(table.columns) == list(COLUMNS)
    assert len(table) == 7
    assert set(table["sex"]) <= {"F", "M"}
    assert table["collection_date"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    assert table["age"].str.fullmatch(r"\d+").all()
    normal = table.iloc[:6]
    for _, rows in normal.groupby("patient"):
        assert len(rows) >= 2 and rows["block"].nunique() >= 2
    assert (table.groupby("block")["patient"].nunique() == 1).all()
    assert (table.groupby("block")["specimen"].nunique() == 1).all()
    assert (table.groupby("specimen")["block"].nunique() == 1).all()
    assert (table.groupby("specimen")["collection_date"].nunique() == 1).all()
    assert table.drop_duplicates("specimen")["collection_date"].is_unique


def _classes(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    people = table.drop_duplicates("patient").copy()
    people["band"] = people["age"].astype(int) // 10
    key = people[["sex", "diagnosis", "site", "band"]].astype(str).agg("|".join, axis=1)
    return people, key.map(key.value_counts())


def test_risk_structure_three_patients(table: pd.DataFrame) -> None:
    people, size = _classes(table)
    assert len(people) == 3
    last = people["patient"].str.endswith("P0003PTID")
    assert list(size[last]) == [1] and list(size[~last]) == [2, 2]
    assert people.loc[last, "diagnosis"].iloc[0] in {code for code, _, _ in RARE}
    assert people.loc[~last, "age"].is_unique
    corrupt_owner = table.iloc[6]["patient"]
    assert corrupt_owner in set(people.loc[~last, "patient"])


@pytest.mark.parametrize("patients", [1, 2, 3, 4, 7, 10, 23])
def test_risk_structure_many_patients(patients: int) -> None:
    plan = plan_cohort(11, 2 * patients, patients, 4, 2)
    rare = [p for p in plan.patients if p.rare]
    assert (plan.patients[-1].rare) == (patients != 2)
    if patients != 2:
        assert len(rare) == patients // 5 + (patients % 5 != 0)  # every 5th and the last
    keys = Counter((p.sex, p.diagnosis, p.site, p.age // 10) for p in plan.patients)
    for p in plan.patients:
        assert (keys[(p.sex, p.diagnosis, p.site, p.age // 10)] == 1) == p.rare
    slides = Counter(s.patient for s in plan.slides if not s.corrupt)
    assert min(slides.values()) >= 2
    kinds = Counter(s.kind for s in plan.slides)
    assert kinds["svs"] >= 1 and kinds["tiff"] >= 1
    if len(rare) < patients:  # corrupt slides go to common patients when there are any
        assert not any(plan.patients[s.patient - 1].rare for s in plan.slides if s.corrupt)


def test_kinds_at_least_one_of_each() -> None:
    assert sorted(s.kind for s in plan_cohort(1, 2, 1, 4, 0).slides) == ["svs", "tiff"]
    assert [s.kind for s in plan_cohort(1, 3, 1, 1, 0).slides] == ["svs", "tiff", "tiff"]
    with pytest.raises(ValueError):
        plan_cohort(1, 2, 3, 4, 0)


def test_texture_is_tissue_not_noise() -> None:
    img = tissue_image(3, (512, 768))
    grey = img.astype(np.float32).mean(axis=2)
    corr = np.corrcoef(grey[:, :-1].ravel(), grey[:, 1:].ravel())[0, 1]
    assert corr > 0.8
    background = (img.min(axis=2) > 215).mean()
    assert 0.15 < background < 0.9
    pink = ((img[..., 0] > 170) & (img[..., 1] < 175) & (img[..., 2] > 130)).mean()
    assert pink > 0.05
    nuclei = ((grey < 120) & (img[..., 2] > img[..., 1])).mean()
    assert nuclei > 0.002
    other = tissue_image(4, (512, 768))
    assert np.abs(img.astype(np.int16) - other).mean() > 10
    np.testing.assert_array_equal(img, tissue_image(3, (512, 768)))


def test_corrupt_slide_is_truncated_and_unreadable(cohort: SynthCohort) -> None:
    (bad,) = _slides(cohort, ".svs", corrupt=True)
    sizes = [p.stat().st_size for p in _slides(cohort, ".svs")]
    assert bad.stat().st_size < 0.6 * min(sizes)
    with pytest.raises(Exception), tifffile.TiffFile(bad) as tif:  # noqa: B017 - any error
        for series in tif.series:
            series.asarray()
