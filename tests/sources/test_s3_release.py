"""A release whose `source:` is an S3 prefix and whose staging is on S3 (real SeaweedFS, real
Prefect, LocalCluster of two worker processes) publishes the same slides, byte for byte, as the
same cohort released from a local folder; the source objects are unchanged."""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest

from slidegate.publish.release import verify_release
from slidegate.publish.s3 import S3Store
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
    from a local folder, and from an S3 prefix with staging on S3 to an S3 target, with the
    same pseudonym key."""
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

    for name in (f"{bucket}-stg", f"{bucket}-out"):
        admin.create_bucket(Bucket=name)
    local = Settings(work_dir=tmp / "local" / "work")
    remote = Settings(  # S3 source, staging on S3, S3 target; a registry of its own (one
        # registry refuses a release id published into another target: the steward's rule)
        work_dir=tmp / "s3" / "work",
        registry_url=f"sqlite:///{tmp}/s3/registry.sqlite",
        s3_endpoint_url=s3_service.endpoint_url,
        staging_url=f"s3://{bucket}-stg/staging",
    )
    runs: dict[str, dict[str, Any]] = {}
    with pytest.MonkeyPatch.context() as mp:  # inherited by the Dask worker processes
        mp.setenv("AWS_ACCESS_KEY_ID", s3_service.access_key)  # staging needs write access
        mp.setenv("AWS_SECRET_ACCESS_KEY", s3_service.secret_key)
        for kind, source, target, settings in (
            ("local", "slides", str(tmp / "local" / "target"), local),
            ("s3", f"s3://{bucket}/cohort", f"s3://{bucket}-out/rel", remote),
        ):
            spec = cohort.root / f"{kind}.yaml"
            spec.write_text(
                f"release: {RELEASE}\nsource: {source}\ncohort: cohort.csv\n"
                f"profile: restricted\ntarget: {target}\n"
            )
            if kind == "s3":  # the same pseudonym key, so the outputs can be compared
                key = key_path(settings, RELEASE)
                key.parent.mkdir(parents=True)
                shutil.copy(key_path(local, RELEASE), key)
            runs[kind] = {"result": _run(spec, settings), "settings": settings}
    after = {o["Key"]: o["ETag"] for o in admin.list_objects_v2(Bucket=bucket)["Contents"]}
    return {"runs": runs, "etags": etags, "after": after, "tmp": tmp, "bucket": bucket}


def test_s3_source_release_equals_local_release(releases, s3_service: S3Service) -> None:  # type: ignore[no-untyped-def]
    """Sources on S3 and staging on S3: the same slides, byte for byte, as from a folder."""
    target = S3Store(f"{releases['bucket']}-out", "rel", s3_service.client())
    assert verify_release(target, RELEASE) == []
    local = releases["tmp"] / "local" / "target" / RELEASE
    outcome = json.loads(target.get_bytes(f"{RELEASE}/reports/slides.json"))
    assert outcome == json.loads((local / "reports" / "slides.json").read_text())
    released = {s["format"] for s in outcome if s["status"] == "approved"}
    assert {"svs", "tiff", "dicom"} <= released, outcome
    manifest = json.loads(target.get_bytes(f"{RELEASE}/manifest.json"))
    published = {
        o["path"].removeprefix("slides/"): o["sha256"]
        for o in manifest["objects"]
        if o["path"].startswith("slides/")
    }
    assert published and published == _tree_sums(local / "slides")


def test_sources_unchanged_and_nothing_staged_or_fetched_locally(releases, s3_service) -> None:  # type: ignore[no-untyped-def]
    assert releases["after"] == releases["etags"]
    work = releases["runs"]["s3"]["settings"].work_dir / "releases" / RELEASE
    assert not [p for p in (work / "staging").rglob("*") if p.is_file()]  # all on S3 staging
    assert not any((work / "scratch").glob("*")), "fetched copies must be removed"
    staged = s3_service.client().list_objects_v2(
        Bucket=f"{releases['bucket']}-stg", Prefix=f"staging/{RELEASE}/"
    )
    assert any(o["Key"].endswith(".ome.zarr/zarr.json") for o in staged.get("Contents", []))


def test_s3_facts_name_objects_and_never_reach_the_release(releases, s3_service) -> None:  # type: ignore[no-untyped-def]
    work = releases["runs"]["s3"]["settings"].work_dir / "releases" / RELEASE
    paths = {json.loads(p.read_text())["source_path"] for p in work.glob("private/facts/*.json")}
    assert paths and all(p.startswith("s3://") for p in paths), paths
    target = S3Store(f"{releases['bucket']}-out", "rel", s3_service.client())
    for key in target.list_keys(RELEASE):
        data = target.get_bytes(key)
        assert b"s3://" not in data and b"cohort/" not in data and b"staging" not in data, key
