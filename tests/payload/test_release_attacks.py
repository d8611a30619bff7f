"""Release-level attack: text hidden in compressed payloads never leaves, the slides still do.

One real release (Prefect server, Dask, local target, original-format copies on) of four
slides crafted with tifffile / pydicom (tests/payload/slides.py): a generic TIFF with one
hiding place per JPEG tile (text after EOI, COM / APPn after the scan, EXIF, XMP, ICC, a JFIF
thumbnail, an Adobe segment with a tail, fill bytes, a progressive tile with a COM between its
scans), an SVS whose shared JPEGTables carry a COM and text after their EOI, a JPEG 2000 SVS
(COM in the main and a tile-part header, text after EOC, a JP2 `xml ` box) and the real
wsi2dcm DICOM pyramid with hidden segments in its level-0 frames. Shown: every slide is
released, its level 0 passed through (cleaned, not re-encoded), its pixels equal to the
source decode (OME-Zarr and copy), and no secret in any published byte or key, searched by
tests/leaksearch.py in every encoding (UTF-8/16, case, hex, base64 inside JSON: zarr.json's
codec tables).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
import tifffile
import zarr
from pydicom.encaps import generate_frames

from slidegate.convert.codecs import register
from slidegate.settings import DEFAULT_POLICIES_DIR, Settings
from tests.leaksearch import find_leaks
from tests.payload import slides

pytestmark = pytest.mark.integration
RELEASE = "hidden-1"
SECRET = "CANARYHIDE"
PASSTHROUGH = {"jpeg", "numcodecs.imagecodecs_jpeg2k"}  # no re-encoding in jpeg mode here


def _release(tmp_path: Path, source: Path, names: list[str]) -> tuple[dict[str, Any], Path]:
    from distributed import LocalCluster

    from flows.release import dask_runner, release_cohort

    policies = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICIES_DIR, policies)
    profile = policies / "profiles" / "restricted.yaml"
    profile.write_text(profile.read_text().replace("original_copy: false", "original_copy: true"))
    (tmp_path / "cohort.csv").write_text(
        "slide,patient,block,specimen,age,sex,diagnosis,site,collection_date\n"
        + "".join(
            f"{n},HIDPAT{i},HIDBLK{i},HIDSPC{i},5{i},F,C18.7,colon,2021-02-0{i + 1}\n"
            for i, n in enumerate(names)
        )
    )
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"release: {RELEASE}\nsource: {source}\ncohort: cohort.csv\n"
                    "profile: restricted\ntarget: out\n")  # fmt: skip
    with LocalCluster(n_workers=1, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address=None) as cluster:  # fmt: skip
        settings = Settings(work_dir=tmp_path / "work", policies_dir=policies,
                            dask_address=cluster.scheduler_address)  # fmt: skip
        result: dict[str, Any] = release_cohort.with_options(task_runner=dask_runner(settings))(
            spec=str(spec), settings=settings
        )
    return result, tmp_path / "out" / RELEASE


def _dicom_frames(path: Path) -> list[bytes]:
    ds = pydicom.dcmread(path)
    return [bytes(f) for f in generate_frames(ds.PixelData, number_of_frames=ds.NumberOfFrames)]


def test_hidden_payload_text_never_leaves(
    prefect_server: object, real_slides: Path, tmp_path: Path
) -> None:
    src = tmp_path / "slides"
    src.mkdir()
    words = [
        *slides.generic_tiff(src / "g.tiff", SECRET),
        *slides.svs_shared_tables(src / "s.svs", SECRET),
        *slides.svs_j2k(src / "j.svs", SECRET),
        *slides.dicom_frames(real_slides / "dicom-wsi" / "cmu-1-small-region-wsi2dcm",
                             src / "dcm", SECRET),
    ]  # fmt: skip
    raw = b"".join(p.read_bytes() for p in src.rglob("*") if p.is_file())
    assert all(w.encode() in raw for w in words)  # every secret is really in the sources
    result, out = _release(tmp_path, src, ["g.tiff", "s.svs", "j.svs", "dcm"])
    assert result["published"] is True and result["counts"]["approved"] == 4

    assert find_leaks(out, {w: w for w in words}) == []  # no byte, no key
    register()
    reports = {r["slide"]: r for r in json.loads((out / "reports" / "slides.json").read_text())}
    work = tmp_path / "work" / "releases" / RELEASE / "plans"
    seen = set()
    for pseudonym in reports:
        plan = json.loads((work / f"{pseudonym}.json").read_text())
        name = plan["slide_id"]
        seen.add(name)
        (zarr_dir,) = (out / "slides").glob(f"{pseudonym}*zarr")
        meta = json.loads((zarr_dir / "0" / "zarr.json").read_text())
        codecs = {c["name"] for c in meta["codecs"][0]["configuration"]["codecs"]}
        assert codecs & PASSTHROUGH, name  # cleaned and passed through, not re-encoded
        got = np.asarray(zarr.open_group(str(zarr_dir), mode="r")["0"][:]).transpose(1, 2, 0)
        copies = [p for p in (out / "slides").iterdir() if p.name.startswith(pseudonym)
                  and "zarr" not in p.name]  # fmt: skip
        assert len(copies) == 1, name
        if name != "dcm":
            want = tifffile.imread(src / name)
            np.testing.assert_array_equal(got, want)
            np.testing.assert_array_equal(tifffile.imread(copies[0]), want)
            continue
        source_frames = _dicom_frames(src / "dcm" / "level-0-frames-0-30.dcm")
        copy_frames = _dicom_frames(copies[0] / "level-0.dcm")
        rows = cols = 500  # the wsi2dcm frames
        across = -(-got.shape[1] // cols)
        for k, frame in enumerate(source_frames):
            want = slides.decode_jpeg(frame)
            np.testing.assert_array_equal(slides.decode_jpeg(copy_frames[k]), want)
            r, c = divmod(k, across)
            tile = got[r * rows : (r + 1) * rows, c * cols : (c + 1) * cols]
            np.testing.assert_array_equal(tile, want[: tile.shape[0], : tile.shape[1]])
    assert seen == {"g.tiff", "s.svs", "j.svs", "dcm"}
