"""Workers need no disk shared with the flow: with sources and staging on S3, everything the
cohort and publish stages need travels in the slide reports or lives on the staging prefix.

The slide stages run first (as on a worker); then every file they wrote into the work area
(facts, plans, audit records, local staging, scratch) is deleted, as if they had been written
on another machine; the cohort decision and publishing (as in the flow) still produce a
complete, verifiable release, original-format copies included. Real SeaweedFS, core stages.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest

from slidegate.publish.release import verify_release
from slidegate.publish.s3 import S3Store
from slidegate.settings import Settings
from slidegate.stages import publish as publish_stages
from slidegate.stages import slide as slide_stages
from slidegate.stages.cohort import decide_cohort
from slidegate.stages.context import prepare_release
from tests.services import S3Service

RELEASE = "noshare-1"
WORKER_FILES = ("audit", "plans", "private/facts", "staging", "scratch")


def test_release_without_a_shared_work_area(
    s3_service: S3Service, policies_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from slidegate.synth import generate_cohort

    cohort = generate_cohort(tmp_path / "c", slides=3, patients=3, seed=5, tiff_every=2,
                             base_size=(512, 768))  # fmt: skip
    policies = tmp_path / "policies"
    shutil.copytree(policies_dir, policies)
    profile = policies / "profiles" / "restricted.yaml"  # releases 3 unique patients
    text = profile.read_text()
    assert "original_copy: false" in text
    profile.write_text(text.replace("original_copy: false", "original_copy: true"))

    bucket = f"ns-{uuid.uuid4().hex[:10]}"
    admin = s3_service.client()
    for name in (bucket, f"{bucket}-stg", f"{bucket}-out"):
        admin.create_bucket(Bucket=name)
    for path in sorted(p for p in cohort.slides_dir.rglob("*") if p.is_file()):
        admin.upload_file(str(path), bucket, f"src/{path.relative_to(cohort.slides_dir)}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_service.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_service.secret_key)
    spec = cohort.root / "spec.yaml"
    spec.write_text(
        f"release: {RELEASE}\nsource: s3://{bucket}/src\ncohort: cohort.csv\n"
        f"profile: restricted\ntarget: s3://{bucket}-out/rel\n"
    )
    settings = Settings(
        work_dir=tmp_path / "work",
        policies_dir=policies,
        s3_endpoint_url=s3_service.endpoint_url,
        staging_url=f"s3://{bucket}-stg/staging",
    )
    ctx = prepare_release(spec, settings)
    publish_stages.check_target(ctx)

    reports = [slide_stages.process(ctx, slide) for slide in ctx.slides]  # "on the workers"
    assert all(r.status == "ok" for r in reports), [r.reason for r in reports]
    assert all(str(r.output_path).startswith("s3://") for r in reports)
    assert all(str(r.copy_path).startswith("s3://") for r in reports)
    for sub in WORKER_FILES:  # written on the workers: not visible to the flow
        shutil.rmtree(ctx.work / sub, ignore_errors=True)

    outcome = decide_cohort(ctx, reports)  # "in the flow"
    assert outcome.releasable and len(outcome.approved) == 3, outcome.slides
    records = [rec for s in outcome.approved for rec in publish_stages.publish_slide(ctx, s)]
    manifest = publish_stages.finalize(ctx, outcome, records)

    target = S3Store(f"{bucket}-out", "rel", admin)
    assert verify_release(target, RELEASE) == []
    paths = {o["path"] for o in manifest["objects"]}  # type: ignore[union-attr]
    for s in outcome.approved:
        suffix = ".svs" if s.format == "svs" else ".tiff"
        assert f"slides/{s.pseudonym}{suffix}" in paths  # the copy, from the staging prefix
        assert f"slides/{s.pseudonym}.ome.zarr/zarr.json" in paths
    audit = json.loads(target.get_bytes(f"{RELEASE}/reports/audit.json"))
    assert sorted(a["pseudonym"] for a in audit) == sorted(s.pseudonym for s in outcome.approved)
    assert all(a["findings"] == [] and a["problems"] == [] for a in audit)
