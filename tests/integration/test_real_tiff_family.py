"""Every real TIFF-family scanner file (SVS, NDPI, QPTIFF, OME-TIFF, generic TIFF) through the
release flow as one cohort: no identifying value from SOURCES.md in any published byte, the
NDPI macro and the QPTIFF label/overview absent, released pyramids equal to tifffile's decode."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr

from slidegate.convert.codecs import register
from slidegate.settings import Settings

pytestmark = pytest.mark.integration
register()  # pass-through output (JPEG / JPEG 2000 chunks) opens with plain zarr + imagecodecs

SLIDES = {
    "aperio-svs/CMU-1-Small-Region.svs": "svs",
    "hamamatsu-ndpi/test3-DAPI-2-387.ndpi": "ndpi",
    "perkinelmer-qptiff/small_vectra.qptiff": "qptiff",
    "ome-tiff/OS-2-ndpi.ome.tif": "ome-tiff",
    "generic-tiff/boxes.tiff": "tiff",
}
#: identifying values SOURCES.md lists per file (and their other spellings), file names included
KNOWN = {
    "svs": ["CPAPERIOCS", "CMU-1", "12/29/09", "09:59:15", "1004486",
            "b414003d-95c6-48b0-9369-8010ed517ba7"],
    "ndpi": ["950291", "950410", "2017:02:07 13:06:43", "2017:02:07", "2017-02-07",
             "2017/02/07", "13:06:43", "2011/05/23", "2017/01/27", "HS12-15115",
             "ELB0246-0402", "C9600-12", "NDP.scan 2.5.89", "test3-DAPI-2-387"],
    "qptiff": ["RTM61_1", "WIN-518AEG3GFG2", "688b0669-3edf-4fcf-957a-47b06bacfa36",
               "albert_einstein_3channel_fluor", "2020:10:30 13:32:10", "2020:10:30",
               "2020-10-30", "13:32:10", "2020-09-22T19:39:50",
               "4E37D078595BEF06C3E814B632560FAD17D0CE16485D83E74366786231DAC648",
               "small_vectra"],
    "ome-tiff": ["OME Bio-Formats 6.7.0", "77794f72-4f3e-4627-b2e4-93dd22c15977",
                 "OS-2-ndpi.ome.tif", "OS-2-ndpi"],
    "tiff": ["boxes.tiff"],
}  # fmt: skip
PATIENTS = ["TFPATIENTA1", "TFPATIENTB2", "TFPATIENTC3", "TFPATIENTD4", "TFPATIENTE5"]


def _source_levels(path: Path) -> list[np.ndarray]:
    """Every level of tifffile's series 0 as (c, y, x): the reference decode."""
    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        out = []
        for level in series.levels:
            data = level.asarray()
            axes = level.axes
            if axes.endswith("S"):
                data = np.moveaxis(data, -1, 0)
            elif data.ndim == 2:
                data = data[np.newaxis]
            out.append(data)
        return out


@pytest.fixture(scope="module")
def released(real_slides: Path, prefect_server: object, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from flows.release import dask_runner, release_cohort

    tmp = tmp_path_factory.mktemp("tiff-family")
    before = {s: hashlib.sha256((real_slides / s).read_bytes()).hexdigest() for s in SLIDES}
    rows = [
        f"{slide},{patient},BLK{n},SPC{n},{50 + n},F,C18.7,colon,2019-0{n + 1}-11"
        for n, (slide, patient) in enumerate(zip(SLIDES, PATIENTS, strict=True))
    ]
    (tmp / "cohort.csv").write_text(
        "slide,patient,block,specimen,age,sex,diagnosis,site,collection_date\n"
        + "\n".join(rows)
        + "\n"
    )
    spec = tmp / "spec.yaml"
    spec.write_text(
        f"release: tiff-family\nsource: {real_slides}\ncohort: cohort.csv\n"
        "profile: restricted\ntarget: out\n"
    )
    settings = Settings(work_dir=tmp / "work", n_workers=1)
    result = release_cohort.with_options(task_runner=dask_runner(settings))(
        spec=str(spec), settings=settings
    )
    after = {s: hashlib.sha256((real_slides / s).read_bytes()).hexdigest() for s in SLIDES}
    return {"result": result, "release": tmp / "out" / "tiff-family", "same": before == after}


def test_every_tiff_family_file_released(released) -> None:  # type: ignore[no-untyped-def]
    result = released["result"]
    assert result["published"] is True
    assert result["counts"]["approved"] == len(SLIDES), result["counts"]
    assert released["same"]  # sources never modified


def test_no_identifying_value_in_any_output_byte(released) -> None:  # type: ignore[no-untyped-def]
    files = [p for p in released["release"].rglob("*") if p.is_file()]
    needles = [n for values in KNOWN.values() for n in values] + PATIENTS
    hits = []
    for p in files:
        data = p.read_bytes()
        rel = str(p.relative_to(released["release"]))
        for n in needles:
            for form in {n.encode(), n.encode("utf-16-le")}:
                if form in data or n in rel:
                    hits.append((rel, n))
    assert hits == []


def test_released_pyramids_match_sources_and_hold_no_associated_image(
    released,  # type: ignore[no-untyped-def]
    real_slides: Path,
) -> None:
    groups = [
        zarr.open_group(p, mode="r") for p in sorted((released["release"] / "slides").iterdir())
    ]
    by_shape = {g["0"].shape[1:]: g for g in groups}
    assert len(by_shape) == len(SLIDES)
    for slide in SLIDES:
        levels = _source_levels(real_slides / slide)
        group = by_shape[levels[0].shape[1:]]
        assert sorted(group.array_keys()) == [str(i) for i in range(len(levels))], slide
        assert list(group.group_keys()) == []
        for i, expected in enumerate(levels):
            np.testing.assert_array_equal(np.asarray(group[str(i)][:]), expected, err_msg=slide)
    # the NDPI macro (406 x 1188) and the QPTIFF overview / label are not among the arrays
    shapes = {g[k].shape[1:] for g in groups for k in g.array_keys()}
    assert not shapes & {(406, 1188), (203, 594), (398, 201), (120, 199), (360, 480)}
    ndpi = by_shape[(4864, 3968)]
    assert [ndpi[k].shape[1:] for k in sorted(ndpi.array_keys())] == [
        (4864, 3968),
        (2432, 1984),
        (1216, 992),
        (608, 496),
    ]
    assert by_shape[(1440, 1920)]["0"].shape == (3, 1440, 1920)  # QPTIFF channels as c


def test_synthetic_vendor_cohort_through_the_flow_has_no_canary(
    prefect_server: object, tmp_path: Path
) -> None:
    """One synthetic file per TIFF-family vendor (slidegate.synth.vendors), released by the
    flow with every planted value in the spec's canaries file: all approved, zero canaries."""
    import json

    from flows.release import dask_runner, release_cohort
    from slidegate.synth.vendors import WRITERS

    source = tmp_path / "slides"
    source.mkdir()
    slides = [
        writer(source / f"v{n}{suffix}", 20 + n)
        for n, (writer, suffix) in enumerate(WRITERS.values())
    ]
    rows = [
        f"{s.path.name},VPAT{n:03d}X,VBLK{n},VSPC{n},{40 + n},M,C50.9,breast,2018-02-0{n + 1}"
        for n, s in enumerate(slides)
    ]
    (tmp_path / "cohort.csv").write_text(
        "slide,patient,block,specimen,age,sex,diagnosis,site,collection_date\n"
        + "\n".join(rows)
        + "\n"
    )
    planted = [(k, v) for s in slides for k, v in [*s.canaries.items(), *s.extra.items()]]
    (tmp_path / "canaries.json").write_text(
        json.dumps({"canaries": [{"field": k, "value": v} for k, v in planted]})
    )
    (tmp_path / "spec.yaml").write_text(
        f"release: vendors\nsource: {source}\ncohort: cohort.csv\nprofile: restricted\n"
        "target: out\ncanaries: canaries.json\n"
    )
    settings = Settings(work_dir=tmp_path / "work", n_workers=1)
    result = release_cohort.with_options(task_runner=dask_runner(settings))(
        spec=str(tmp_path / "spec.yaml"), settings=settings
    )
    assert result["published"] is True
    assert result["counts"]["approved"] == len(slides), result["counts"]
    release = tmp_path / "out" / "vendors"
    hits = []
    for p in (f for f in release.rglob("*") if f.is_file()):
        data = p.read_bytes().lower()
        for field, value in planted:
            if value.lower().encode() in data or value.lower().encode("utf-16-le") in data:
                hits.append((p.name, field))
    assert hits == []
    groups = [zarr.open_group(p, mode="r") for p in (release / "slides").iterdir()]
    assert len(groups) == len(slides)
    shapes = {g[k].shape[1:] for g in groups for k in g.array_keys()}
    associated = {shape for s in slides for shape in s.associated}
    assert not shapes & associated  # no label, macro or thumbnail among the released arrays
