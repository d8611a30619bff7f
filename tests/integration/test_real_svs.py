"""The real CMU-1-Small-Region.svs through the same flow, as its own cohort."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import zarr

from slidegate.settings import Settings

pytestmark = pytest.mark.integration

#: identifying values of the real file (SOURCES.md), its file name included; the User GUID
#: is read from the file itself
KNOWN = ["CPAPERIOCS", "CMU-1", "12/29/09", "09:59:15", "1004486"]


def test_real_svs_release_has_no_identifying_value_and_no_label(
    real_slides: Path, prefect_server: object, tmp_path: Path
) -> None:
    from flows.release import dask_runner, release_cohort
    from slidegate.formats import read_facts

    source = real_slides / "aperio-svs"
    slide = source / "CMU-1-Small-Region.svs"
    before = hashlib.sha256(slide.read_bytes()).hexdigest()
    user = next(f.value for f in read_facts(slide, slide.name).fields if f.name == "aperio.User")
    (tmp_path / "cohort.csv").write_text(
        "slide,patient,block,specimen,age,sex,diagnosis,site,collection_date\n"
        "CMU-1-Small-Region.svs,CMU1PATIENT,CMU1BLOCK,CMU1SPEC,57,F,C18.7,colon,2009-12-29\n"
    )
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"release: cmu-1\nsource: {source}\ncohort: cohort.csv\nprofile: restricted\ntarget: out\n"
    )
    from distributed import LocalCluster

    # an existing scheduler, as `--dask-address` uses it (the flow must not start its own)
    with LocalCluster(
        n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        settings = Settings(work_dir=tmp_path / "work", dask_address=cluster.scheduler_address)
        result = release_cohort.with_options(task_runner=dask_runner(settings))(
            spec=str(spec), settings=settings
        )
    assert result["published"] is True and result["counts"]["approved"] == 1
    release = tmp_path / "out" / "cmu-1"
    files = [p for p in release.rglob("*") if p.is_file()]
    needles = [*KNOWN, user, "CMU1PATIENT", "CMU1BLOCK", "CMU1SPEC", "2009-12-29"]
    hits = [(p.name, n) for p in files for n in needles if n.encode() in p.read_bytes()]
    assert hits == []
    (zpath,) = (release / "slides").iterdir()
    group = zarr.open_group(zpath, mode="r")
    assert sorted(group.array_keys()) == ["0"]  # the one pyramid level; no label, macro, thumb
    assert group["0"].shape == (3, 2967, 2220)
    assert hashlib.sha256(slide.read_bytes()).hexdigest() == before
