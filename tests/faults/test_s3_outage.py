"""S3 stops in the middle of publishing: retries with backoff, then a clear failure and no
manifest; S3 back, the same command resumes, uploads only what was missing, and the manifest
equals an uninterrupted run's (apart from its timestamp)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from flows.cli import main
from slidegate.errors import TransientIOError
from slidegate.publish.release import verify_release
from slidegate.publish.s3 import S3Store
from slidegate.settings import Settings
from tests.faults.helpers import (
    RELEASE,
    comparable,
    differing,
    fast,
    manifest_of,
    run_release,
    share_key,
)
from tests.faults.helpers import write_spec as spec_for
from tests.services import OutageProxy, S3Service

pytestmark = pytest.mark.integration


def _keys(s3: S3Service, bucket: str, prefix: str) -> set[str]:
    pages = s3.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {o["Key"] for page in pages for o in page.get("Contents", [])}


@pytest.mark.slow  # ~2 min (a release, an S3 outage, a resume): make test-all
def test_outage_mid_publish_then_resume(
    fault_cohort: Any,
    baseline: dict[str, Any],
    s3_env: S3Service,
    fault_bucket: str,
    tmp_path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    upstream = int(s3_env.endpoint_url.rsplit(":", 1)[1])
    proxy = OutageProxy(upstream)
    proxy.up()
    settings = fast(Settings(work_dir=tmp_path / "work", s3_endpoint_url=proxy.endpoint_url))
    share_key(baseline["settings"], settings)
    spec = spec_for(fault_cohort, f"s3://{fault_bucket}/outage", "outage")
    prefix = f"outage/{RELEASE}/"

    # S3 stops after the 5th slide object has been sent, in the middle of publishing
    proxy.fail_on("PUT", "/slides/", 5)
    started = time.monotonic()
    with pytest.raises(TransientIOError) as failure:
        run_release(spec, settings)
    elapsed = time.monotonic() - started
    assert proxy.went_down.is_set()
    message = str(failure.value)
    assert "No manifest was written" in message and "run the same command" in message
    assert "storage unreachable" in message
    assert s3_env.secret_key not in message and s3_env.access_key not in message

    # the target holds no manifest, and the receiver's check says so
    present = _keys(s3_env, fault_bucket, prefix)
    assert f"{prefix}manifest.json" not in present and f"{prefix}SHA256SUMS" not in present
    slide_objects = {k for k in present if "/slides/" in k}
    assert (
        1
        <= len(slide_objects)
        < sum(o["path"].startswith("slides/") for o in baseline["manifest"]["objects"])
    )
    store = S3Store(fault_bucket, "outage", s3_env.client())
    assert verify_release(store, RELEASE) == [f"release {RELEASE!r} has no manifest.json"]
    assert (
        main(
            [
                "verify",
                f"s3://{fault_bucket}/outage/{RELEASE}",
                "--s3-endpoint-url",
                s3_env.endpoint_url,
            ]
        )
        == 1
    )
    assert (
        main(["list", f"s3://{fault_bucket}/outage", "--s3-endpoint-url", s3_env.endpoint_url]) == 0
    )
    assert RELEASE not in capsys.readouterr().out.split()

    # S3 is back: the same command resumes
    proxy.up()
    proxy.requests.clear()
    result = run_release(spec, settings)
    assert result["published"] is True

    # only what was missing was uploaded
    listed = {o["path"] for o in baseline["manifest"]["objects"]}
    missing_slides = {
        p for p in listed if p.startswith("slides/") and f"{prefix}{p}" not in slide_objects
    }
    put_slides = {
        path.split(f"/{prefix}", 1)[1].split("?")[0]
        for method, path in proxy.requests
        if method == "PUT" and "/slides/" in path
    }
    assert put_slides == missing_slides

    # identical manifest apart from the creation time (every object, Data Docs included);
    # the receiver's check passes
    resumed = manifest_of(s3_env, fault_bucket, "outage")
    assert differing(resumed, baseline["manifest"]) == []
    assert any(o["path"].startswith("reports/data-docs/") for o in resumed["objects"])
    assert comparable(resumed) == comparable(baseline["manifest"])
    assert verify_release(store, RELEASE) == []
    assert (
        main(
            [
                "verify",
                f"s3://{fault_bucket}/outage/{RELEASE}",
                "--s3-endpoint-url",
                s3_env.endpoint_url,
            ]
        )
        == 0
    )
    print(f"outage run failed after {elapsed:.1f} s")  # backoff 1 s + 4 s, plus S3 attempts
