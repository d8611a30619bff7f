"""A release whose `source:` is an S3 prefix (real SeaweedFS, real Prefect, LocalCluster of two
worker processes) publishes the same slides, byte for byte, as the same cohort released from a
local folder; the source objects are unchanged."""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest

from slidegate.publish.release import verify_release
from slidegate.publish.stores import LocalStore, S3Store
from slidegate.settings import Settings
from slidegate.stages.context import key_path
from tests.services import S3Service

RELEASE = "s3src-1"


def _tree_sums(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _run(spec: Path, settings: Settings) -> dict[str, Any]:
    from flows.release import dask_runner, release_cohort

    result: dict[str, Any] = release_cohort.with_options(task_runner=dask_runner(settings))(
        spec=str(spec), settings=settings
    )
    return result


@pytest.fixture(scope="module")
def releases(prefect_server, s3_service: S3Service, real_slides: Path, tmp_path_factory):  # type: ignore[no-untyped-def]
    """The same cohort (2 SVS, 2 generic TIFF, CMU-1-Small-Region.svs, a DICOM file) released
    from a local folder and from an S3 prefix, with the same pseudonym key."""
    from slidegate.synth import generate_cohort
    from slidegate.synth.dicom import write_dicom_wsi

    tmp = tmp_path_factory.mktemp("s3src")
    cohort = generate_cohort(tmp / "c", slides=4, patients=2, seed=3, tiff_every=2,
                             base_size=(768, 1024))  # fmt: skip
    shutil.copy(
        real_slides / "aperio-svs" / "CMU-1-Small-Region.svs", cohort.slides_dir / "cmu.svs"
    )
    write_dicom_wsi(cohort.slides_dir / "dicom" / "one.dcm", seed=12, single=True)
    lines = cohort.cohort_csv.read_text().splitlines()
    first = lines[1].split(",", 1)[1]
    lines += [f"cmu.svs,{first}", f"dicom/one.dcm,{first}"]
    cohort.cohort_csv.write_text("\n".join(lines) + "\n")

    bucket = f"src-{uuid.uuid4().hex[:10]}"
    admin = s3_service.client()
    admin.create_bucket(Bucket=bucket)
    for path in sorted(p for p in cohort.slides_dir.rglob("*") if p.is_file()):
        admin.upload_file(str(path), bucket, f"cohort/{path.relative_to(cohort.slides_dir)}")
    etags = {
        o["Key"]: o["ETag"] for o in admin.list_objects_v2(Bucket=bucket)["Contents"]
    }  # fmt: skip

    runs: dict[str, dict[str, Any]] = {}
    with pytest.MonkeyPatch.context() as mp:  # inherited by the Dask worker processes
        mp.setenv("AWS_ACCESS_KEY_ID", s3_service.readonly_access_key)  # sources: read only
        mp.setenv("AWS_SECRET_ACCESS_KEY", s3_service.readonly_secret_key)
        for kind, source in (("local", "slides"), ("s3", f"s3://{bucket}/cohort")):
            spec = cohort.root / f"{kind}.yaml"
            spec.write_text(
                f"release: {RELEASE}\nsource: {source}\ncohort: cohort.csv\n"
                f"profile: open-access\ntarget: {tmp / kind / 'target'}\n"
            )
            settings = Settings(
                work_dir=tmp / kind / "work", s3_endpoint_url=s3_service.endpoint_url
            )
            if kind == "s3":  # the same pseudonym key, so the outputs can be compared
                key = key_path(settings, RELEASE)
                key.parent.mkdir(parents=True)
                shutil.copy(key_path(runs["local"]["settings"], RELEASE), key)
            runs[kind] = {"result": _run(spec, settings), "settings": settings}
            runs[kind]["target"] = tmp / kind / "target" / RELEASE
        # staging on S3, S3 source and S3 target: a steward's prefix needs write access
        mp.setenv("AWS_ACCESS_KEY_ID", s3_service.access_key)
        mp.setenv("AWS_SECRET_ACCESS_KEY", s3_service.secret_key)
        for name in (f"{bucket}-stg", f"{bucket}-out"):
            admin.create_bucket(Bucket=name)
        spec = cohort.root / "staged.yaml"
        spec.write_text(
            f"release: {RELEASE}\nsource: s3://{bucket}/cohort\ncohort: cohort.csv\n"
            f"profile: open-access\ntarget: s3://{bucket}-out/rel\n"
        )
        settings = Settings(
            work_dir=tmp / "staged" / "work",
            s3_endpoint_url=s3_service.endpoint_url,
            staging_url=f"s3://{bucket}-stg/staging",
        )
        key = key_path(settings, RELEASE)
        key.parent.mkdir(parents=True)
        shutil.copy(key_path(runs["local"]["settings"], RELEASE), key)
        runs["staged"] = {"result": _run(spec, settings), "settings": settings}
    after = {o["Key"]: o["ETag"] for o in admin.list_objects_v2(Bucket=bucket)["Contents"]}
    return {"runs": runs, "etags": etags, "after": after, "tmp": tmp, "bucket": bucket}


def test_s3_source_release_equals_local_release(releases) -> None:  # type: ignore[no-untyped-def]
    local, s3 = releases["runs"]["local"], releases["runs"]["s3"]
    outcome = json.loads((s3["target"] / "reports" / "slides.json").read_text())
    assert outcome == json.loads((local["target"] / "reports" / "slides.json").read_text())
    local_slides = _tree_sums(local["target"] / "slides")
    s3_slides = _tree_sums(s3["target"] / "slides")
    assert s3_slides and s3_slides == local_slides
    released = {s["format"] for s in outcome if s["status"] == "approved"}
    assert {"svs", "tiff", "dicom"} <= released, outcome
    assert verify_release(LocalStore(s3["target"].parent), RELEASE) == []


def test_source_objects_unchanged_and_no_scratch_left(releases) -> None:  # type: ignore[no-untyped-def]
    assert releases["after"] == releases["etags"]
    work = releases["runs"]["s3"]["settings"].work_dir / "releases" / RELEASE
    assert not any((work / "scratch").glob("*")), "fetched copies must be removed"


def test_s3_facts_name_objects_and_never_reach_the_release(releases) -> None:  # type: ignore[no-untyped-def]
    s3 = releases["runs"]["s3"]
    facts_dir = s3["settings"].work_dir / "releases" / RELEASE / "private" / "facts"
    paths = {json.loads(p.read_text())["source_path"] for p in facts_dir.glob("*.json")}
    assert paths and all(p.startswith("s3://") for p in paths), paths
    for file in s3["target"].rglob("*"):
        if file.is_file():
            data = file.read_bytes()
            assert b"s3://" not in data and b"cohort/" not in data, file


def test_staging_on_s3_leaves_nothing_local_and_publishes_the_same_slides(  # type: ignore[no-untyped-def]
    releases, s3_service: S3Service
) -> None:
    run, bucket = releases["runs"]["staged"], releases["bucket"]
    work = run["settings"].work_dir / "releases" / RELEASE
    assert not [p for p in (work / "staging").rglob("*") if p.is_file()]
    admin = s3_service.client()
    staged = admin.list_objects_v2(Bucket=f"{bucket}-stg", Prefix=f"staging/{RELEASE}/")
    assert any(o["Key"].endswith("/zarr.json") for o in staged.get("Contents", []))
    target = S3Store(f"{bucket}-out", "rel", admin)
    assert verify_release(target, RELEASE) == []
    manifest = json.loads(target.get_bytes(f"{RELEASE}/manifest.json"))
    published = {
        o["path"].removeprefix("slides/"): o["sha256"]
        for o in manifest["objects"]
        if o["path"].startswith("slides/")
    }
    local = releases["runs"]["local"]["target"] / "slides"
    assert published and published == _tree_sums(local)
