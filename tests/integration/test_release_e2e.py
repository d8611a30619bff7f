"""End-to-end: a synthetic cohort through `release_cohort` on real parts (Prefect server,
LocalCluster of 2 workers, SeaweedFS S3), then every published byte is checked by a receiver."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import pytest
import tifffile
import zarr

from slidegate.models import DeidPlan, SlideFacts
from slidegate.pseudonym import load_or_create_key
from slidegate.settings import Settings
from slidegate.stages.context import key_path

pytestmark = pytest.mark.integration
RELEASE = "e2e-1"


def source_mpp(tif: tifffile.TiffFile) -> float:
    """Micrometres per pixel read straight from the source tags (not via slidegate)."""
    page = tif.pages[0]
    if tif.is_svs:
        return float(page.description.split("MPP = ")[1].split("|")[0])
    num, den = page.tags["XResolution"].value
    assert page.tags["ResolutionUnit"].value == 3  # centimetre
    return 10000 / (num / den)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from slidegate.synth import generate_cohort

    root = tmp_path_factory.mktemp("cohort")
    return generate_cohort(root, slides=8, patients=3, seed=11, corrupt=1, base_size=(1024, 1536))


@pytest.fixture(scope="module")
def published(cohort, prefect_server, s3_service, tmp_path_factory):  # type: ignore[no-untyped-def]
    """Run the release once; download every published object."""
    import os

    from flows.release import dask_runner, release_cohort

    tmp = tmp_path_factory.mktemp("e2e")
    before = {p.name: sha256(p) for p in cohort.slides_dir.iterdir()}
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_service.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=s3_service.access_key,
        aws_secret_access_key=s3_service.secret_key,
    )
    s3.create_bucket(Bucket="releases")
    spec = cohort.root / "e2e.yaml"
    spec.write_text(
        f"release: {RELEASE}\nsource: slides\ncohort: cohort.csv\nprofile: controlled-access\n"
        "target: s3://releases/wsi\ncanaries: canaries.json\n"
    )
    os.environ["AWS_ACCESS_KEY_ID"] = s3_service.access_key  # inherited by the Dask workers
    os.environ["AWS_SECRET_ACCESS_KEY"] = s3_service.secret_key
    settings = Settings(work_dir=tmp / "work", s3_endpoint_url=s3_service.endpoint_url, n_workers=2)
    result = release_cohort.with_options(task_runner=dask_runner(settings))(
        spec=str(spec), settings=settings
    )
    out = tmp / "download"
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket="releases", Prefix=f"wsi/{RELEASE}/"
    ):
        for obj in page.get("Contents", []):
            rel = obj["Key"].removeprefix(f"wsi/{RELEASE}/")
            keys.append(rel)
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            s3.download_file("releases", obj["Key"], str(out / rel))
    return {
        "result": result,
        "root": out,
        "keys": sorted(keys),
        "settings": settings,
        "before": before,
        "spec": spec,
    }


def test_release_completes_with_manifest_last(published) -> None:  # type: ignore[no-untyped-def]
    assert published["result"]["published"] is True
    keys = published["keys"]
    assert "manifest.json" in keys and "SHA256SUMS" in keys and "cohort.csv" in keys
    assert any(k.startswith("reports/risk") for k in keys)
    assert any(k.startswith("slides/") for k in keys)


def test_no_canary_or_inventory_phi_in_any_published_byte(published, cohort) -> None:  # type: ignore[no-untyped-def]
    canaries = json.loads(cohort.canaries_json.read_text())["canaries"]
    needles = {c["value"] for c in canaries if len(c["value"]) >= 6}
    work = published["settings"].work_dir.resolve() / "releases" / RELEASE
    for facts_path in (work / "private" / "facts").glob("*.json"):
        facts = SlideFacts.load(facts_path)
        plan = DeidPlan.model_validate_json((work / "plans" / facts_path.name).read_text())
        dropped = {f.name for f in plan.fields if f.action != "keep"}
        needles |= {
            f.value.strip() for f in facts.fields if f.name in dropped and len(f.value.strip()) >= 8
        }
    assert len(needles) > 50
    hits = []
    for path in published["root"].rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            hits += [(str(path), n) for n in needles if n.encode() in data]
    assert hits == []


def test_released_slides_match_sources(published, cohort) -> None:  # type: ignore[no-untyped-def]
    root = published["root"]
    table = pd.read_csv(cohort.cohort_csv, dtype=str)
    pseudo = load_or_create_key(key_path(published["settings"], RELEASE))
    by_pseudonym = {pseudo("s", s): s for s in table["slide"]}
    released = sorted(p for p in (root / "slides").iterdir())
    assert len(released) >= 2  # controlled access: the rare patient withheld, one slide each kept
    for zpath in released:
        slide_id = by_pseudonym[zpath.name.removesuffix(".ome.zarr")]
        group = zarr.open_group(zpath, mode="r")
        ms = group.attrs["ome"]["multiscales"][0]
        with tifffile.TiffFile(cohort.slides_dir / slide_id) as tif:
            levels = tif.series[0].levels
            mpp = source_mpp(tif)
            # exactly the pyramid: no label, macro or thumbnail arrays
            assert sorted(group.array_keys()) == [str(i) for i in range(len(levels))]
            assert list(group.group_keys()) == []
            for i, level in enumerate(levels):
                src = level.asarray()
                arr = group[str(i)]
                assert arr.shape == (src.shape[2], src.shape[0], src.shape[1])
                diff = np.abs(arr[:].transpose(1, 2, 0).astype(int) - src.astype(int))
                assert diff.max() <= 2, f"{zpath.name} level {i} differs from its source"
                scale = ms["datasets"][i]["coordinateTransformations"][0]["scale"]
                ds = levels[0].shape[1] / level.shape[1]
                assert scale[1] == pytest.approx(mpp * ds, rel=0.02)


def test_checksums_and_manifest_verify(published) -> None:  # type: ignore[no-untyped-def]
    root = published["root"]
    sums = subprocess.run(
        ["sha256sum", "-c", "SHA256SUMS"], cwd=root, capture_output=True, text=True
    )
    assert sums.returncode == 0, sums.stdout + sums.stderr
    manifest = json.loads((root / "manifest.json").read_text())
    listed = {o["path"]: o["sha256"] for o in manifest["objects"]}
    on_disk = {k for k in published["keys"] if k not in ("manifest.json", "SHA256SUMS")}
    assert set(listed) == on_disk
    assert all(sha256(root / k) == listed[k] for k in listed)
    assert manifest["sha256sums"] == sha256(root / "SHA256SUMS")
    summed = {line.split("  ", 1)[1] for line in (root / "SHA256SUMS").read_text().splitlines()}
    assert summed == on_disk


def test_withheld_patient_and_corrupt_slide_absent_and_explained(published, cohort) -> None:  # type: ignore[no-untyped-def]
    table = pd.read_csv(cohort.cohort_csv, dtype=str)
    table["band"] = table["age"].astype(int) // 10
    qi = ["sex", "diagnosis", "site", "band"]
    patients = table.drop_duplicates("patient")
    sizes = patients.groupby(qi)["patient"].transform("size")
    rare = set(patients.loc[sizes == 1, "patient"])
    assert rare, "the synthetic cohort should contain a rare patient"
    pseudo = load_or_create_key(key_path(published["settings"], RELEASE))
    rare_slides = {pseudo("s", s) for s in table.loc[table["patient"].isin(rare), "slide"]}
    statuses = {
        r["slide"]: r
        for r in json.loads((published["root"] / "reports" / "slides.json").read_text())
    }
    for p in rare_slides:
        assert not (published["root"] / "slides" / f"{p}.ome.zarr").exists()
        assert statuses[p]["status"] == "withheld" and "risk" in statuses[p]["reason"]
    quarantined = [r for r in statuses.values() if r["status"] == "quarantined"]
    assert len(quarantined) == 1 and "corrupt" in quarantined[0]["reason"]
    assert not (published["root"] / "slides" / f"{quarantined[0]['slide']}.ome.zarr").exists()
    released = pd.read_csv(published["root"] / "cohort.csv", dtype=str)
    assert not set(released["slide"]) & (rare_slides | {quarantined[0]["slide"]})
    assert not set(released["patient"]) & {pseudo("p", p) for p in rare}
    assert sorted(released["slide"]) == sorted(
        p.name.removesuffix(".ome.zarr") for p in (published["root"] / "slides").iterdir()
    )


def test_sources_unchanged(published, cohort) -> None:  # type: ignore[no-untyped-def]
    after = {p.name: sha256(p) for p in cohort.slides_dir.iterdir()}
    assert after == published["before"]


def test_prefect_artifacts_and_logs_carry_no_phi(published, cohort) -> None:  # type: ignore[no-untyped-def]
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter

    canaries = [c["value"] for c in json.loads(cohort.canaries_json.read_text())["canaries"]]
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts()
        logs = client.read_logs(log_filter=LogFilter(), limit=200)
    text = json.dumps([a.model_dump(mode="json") for a in artifacts])
    text += json.dumps([lg.model_dump(mode="json") for lg in logs])
    assert any(a.type == "markdown" for a in artifacts)
    assert any(a.type == "table" for a in artifacts)
    assert [c for c in canaries if c in text] == []


def test_release_readme_lists_every_slide_and_column(published) -> None:  # type: ignore[no-untyped-def]
    """Issue 14 item 2: README.md is a published object (manifest, SHA256SUMS), lists every
    published slide with what its own OME-Zarr says, and every cohort.csv column."""
    root = published["root"]
    readme = (root / "README.md").read_text(encoding="utf-8")
    manifest = json.loads((root / "manifest.json").read_text())
    assert "README.md" in {o["path"] for o in manifest["objects"]}
    assert "  README.md" in (root / "SHA256SUMS").read_text()
    assert f"# Release `{RELEASE}`" in readme and "sha256sum -c SHA256SUMS" in readme
    assert "slidegate verify" in readme and "profile: `controlled-access`" in readme

    codebook = readme.split("## cohort.csv codebook")[1].split("## Slides")[0]
    columns = [line.split("`")[1] for line in codebook.splitlines() if line.startswith("| `")]
    header = pd.read_csv(root / "cohort.csv", dtype=str, nrows=0).columns.tolist()
    assert columns == header and len(header) >= 8
    rows = {line.split("`")[1]: line for line in codebook.splitlines() if line.startswith("| `")}
    assert "10-year bands" in rows["age"] and "`90+`" in rows["age"]
    assert "`F`, `M`, `U`" in rows["sex"]
    assert "`s-` and 16 lower-case hex digits" in rows["slide"]

    table = readme.split("## Slides")[1]
    slide_rows = {
        line.split("`")[1]: [c.strip() for c in line.split("|")[1:-1]]
        for line in table.splitlines()
        if line.startswith("| `")
    }
    published_slides = sorted(p.name.removesuffix(".ome.zarr") for p in (root / "slides").iterdir()
                              if p.name.endswith(".ome.zarr"))  # fmt: skip
    assert sorted(slide_rows) == published_slides and len(published_slides) >= 2
    released = pd.read_csv(root / "cohort.csv", dtype=str)
    assert sorted(released["slide"]) == published_slides
    for pseudonym, cells in slide_rows.items():
        meta = json.loads((root / "slides" / f"{pseudonym}.ome.zarr" / "zarr.json").read_text())
        ms = meta["attributes"]["ome"]["multiscales"][0]
        level0 = json.loads(
            (root / "slides" / f"{pseudonym}.ome.zarr" / "0" / "zarr.json").read_text()
        )
        c, h, w = level0["shape"]
        assert cells[1].startswith("TIFF")  # synthetic SVS / TIFF
        assert cells[2] == str(len(ms["datasets"]))
        assert cells[3] == f"{w} x {h}"
        scale = ms["datasets"][0]["coordinateTransformations"][0]["scale"]
        assert cells[4] == f"{scale[2]:.4g} micrometer"
        assert cells[5].startswith(str(c))
        assert cells[6] == level0["data_type"]


def test_release_readme_snippets_run(published) -> None:  # type: ignore[no-untyped-def]
    """The README's zarr-python and dask snippets run as written in the release folder."""
    import os
    import re

    from slidegate.convert import register

    register()  # the receiver's codecs, as `pip install ./receiver` would add them
    readme = (published["root"] / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
    runnable = [b for b in blocks if "ome_zarr" not in b]
    assert len(runnable) == 2  # zarr-python, dask (ome-zarr-py: its own venv)
    cwd = os.getcwd()
    os.chdir(published["root"])
    try:
        for block in runnable:
            scope: dict[str, object] = {}
            exec(compile(block, "README.md", "exec"), scope)
            assert "level0" in scope
    finally:
        os.chdir(cwd)
