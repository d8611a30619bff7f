"""Object Lock from the profile, on a real SeaweedFS: every put (multipart too) carries the
retention, a locked version cannot be deleted, and the target check refuses a bucket without
Object Lock or a local folder before any work."""

from __future__ import annotations

import hashlib
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from slidegate.errors import PolicyError, SpecError
from slidegate.profile import load_policies
from slidegate.publish.policy import PublishPolicy
from slidegate.publish.s3 import S3Store
from slidegate.publish.stores import check_writable, open_store
from slidegate.settings import Settings
from slidegate.stages.context import prepare_release
from slidegate.stages.publish import check_target
from tests.publish.publish_profiles import policies_with
from tests.services import S3Service

LOCK = {"object_lock": {"mode": "GOVERNANCE", "retain_days": 2}}


def locked_bucket(s3: S3Service) -> str:
    name = f"lock-{uuid.uuid4().hex[:10]}"
    s3.client().create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    return name


def test_publish_section_is_strict(policies_dir: Path, tmp_path: Path) -> None:
    assert not PublishPolicy().active and PublishPolicy().put_args() == {}  # default: off
    bad = {"object_lock": {"mode": "GOVERNANCE", "retain_days": 1, "legal_hold": True}}
    lib = policies_with(policies_dir, tmp_path, "typo", bad)
    with pytest.raises(PolicyError, match=r"unknown key 'publish\.object_lock\.legal_hold'"):
        load_policies(lib, "typo")
    policies_with(lib.parent, tmp_path, "worm", {"object_lock": {"mode": "WORM", "retain_days": 1}})
    with pytest.raises(PolicyError, match=r"publish\.object_lock\.mode"):
        load_policies(lib, "worm")
    policies_with(lib.parent, tmp_path, "ok", LOCK)
    lock = load_policies(lib, "ok").profile.publish.object_lock
    assert lock is not None and (lock.mode, lock.retain_days) == ("GOVERNANCE", 2)


def test_every_put_is_locked_and_a_locked_version_cannot_be_deleted(
    s3_service: S3Service, tmp_path: Path
) -> None:
    bucket = locked_bucket(s3_service)
    store = S3Store(bucket, "rel", s3_service.client(), publish=PublishPolicy.model_validate(LOCK))
    check_writable(store, "r1")  # the probe is put unlocked and deleted
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(17 * 1024 * 1024))  # multipart (16 MB threshold)
    store.put_file("r1/big.bin", big, hashlib.sha256(big.read_bytes()).hexdigest())
    store.put_bytes("r1/manifest.json", b"{}", hashlib.sha256(b"{}").hexdigest())

    client = s3_service.client()
    soon = datetime.now(UTC) + timedelta(days=2)
    for key in ("rel/r1/big.bin", "rel/r1/manifest.json"):
        head = client.head_object(Bucket=bucket, Key=key)
        assert head["ObjectLockMode"] == "GOVERNANCE"
        assert abs(head["ObjectLockRetainUntilDate"] - soon) < timedelta(minutes=5)
        with pytest.raises(ClientError) as denied:
            client.delete_object(Bucket=bucket, Key=key, VersionId=head["VersionId"])
        assert denied.value.response["Error"]["Code"] == "AccessDenied"
        assert client.head_object(Bucket=bucket, Key=key)["VersionId"] == head["VersionId"]
    versions = client.list_object_versions(Bucket=bucket, Prefix="rel/r1/.slidegate-probe")
    assert all(
        "ObjectLockMode"
        not in client.head_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])
        for v in versions.get("Versions", [])
    )


def _ctx(cohort: Any, target: str, lib: Path, work: Path, s3: S3Service) -> Any:
    spec = cohort.root / f"{uuid.uuid4().hex[:6]}.yaml"
    spec.write_text(
        f"release: lock-1\nsource: slides\ncohort: cohort.csv\nprofile: locked\ntarget: {target}\n",
        encoding="utf-8",
    )
    settings = Settings(work_dir=work, policies_dir=lib, s3_endpoint_url=s3.endpoint_url)
    return prepare_release(spec, settings)


@pytest.fixture(scope="module")
def one_slide(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from slidegate.synth import generate_cohort

    root = tmp_path_factory.mktemp("lock-cohort")
    return generate_cohort(root, slides=1, patients=1, seed=3, base_size=(256, 256))


def test_check_target_needs_object_lock_on_the_bucket_and_s3(
    s3_service: S3Service,
    policies_dir: Path,
    one_slide: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for k, v in s3_service.env().items():
        monkeypatch.setenv(k, v)
    lib = policies_with(policies_dir, tmp_path, "locked", LOCK)
    plain = f"plain-{uuid.uuid4().hex[:10]}"
    s3_service.client().create_bucket(Bucket=plain)
    ctx = _ctx(one_slide, f"s3://{plain}/x", lib, tmp_path / "w1", s3_service)
    with pytest.raises(SpecError) as info:
        check_target(ctx)
    msg = str(info.value)
    assert f"bucket '{plain}' does not have Object Lock enabled" in msg
    assert "--object-lock-enabled-for-bucket" in msg and "publish.object_lock" in msg
    assert s3_service.client().list_objects_v2(Bucket=plain).get("KeyCount", 0) == 0

    bucket = locked_bucket(s3_service)
    ctx = _ctx(one_slide, f"s3://{bucket}/x", lib, tmp_path / "w2", s3_service)
    assert check_target(ctx) == f"s3://{bucket}/x"

    ctx = _ctx(one_slide, str(tmp_path / "folder"), lib, tmp_path / "w3", s3_service)
    with pytest.raises(SpecError, match=r"need an S3 target, but the target .* is a local folder"):
        check_target(ctx)
    assert not (tmp_path / "folder").exists()
    with pytest.raises(SpecError, match="local folder"):
        open_store(str(tmp_path), Settings(), PublishPolicy.model_validate(LOCK))


@pytest.mark.integration
def test_release_with_object_lock_and_sse(
    s3_service: S3Service,
    policies_dir: Path,
    prefect_server: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A whole release (real Prefect, Dask, SeaweedFS): every published object is locked and
    encrypted, and the receiver's check passes."""
    from slidegate.publish.release import verify_release
    from slidegate.synth import generate_cohort
    from tests.faults.helpers import RELEASE, run_release

    for k, v in s3_service.env().items():
        monkeypatch.setenv(k, v)  # the LocalCluster's worker processes inherit them
    publish = {**LOCK, "encryption": {"sse": "AES256"}}
    lib = policies_with(policies_dir, tmp_path, "locked", publish)
    cohort = generate_cohort(tmp_path / "c", slides=5, patients=3, seed=21, base_size=(512, 768))
    bucket = locked_bucket(s3_service)
    spec = cohort.root / "locked.yaml"
    spec.write_text(
        f"release: {RELEASE}\nsource: slides\ncohort: cohort.csv\nprofile: locked\n"
        f"target: s3://{bucket}/rel\n",
        encoding="utf-8",
    )
    settings = Settings(
        work_dir=tmp_path / "work", policies_dir=lib, s3_endpoint_url=s3_service.endpoint_url
    )
    assert run_release(spec, settings)["published"] is True

    client = s3_service.client()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert f"rel/{RELEASE}/manifest.json" in keys and len(keys) > 20
    for key in keys:
        head = client.head_object(Bucket=bucket, Key=key)
        assert (head.get("ObjectLockMode"), head.get("ServerSideEncryption")) == (
            "GOVERNANCE",
            "AES256",
        ), key
    assert verify_release(S3Store(bucket, "rel", client), RELEASE) == []
