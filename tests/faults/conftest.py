"""Fault tests run real releases: a real Prefect server, real Dask, a real SeaweedFS.

`fault_cohort` is small (5 slides, 3 patients) so one release takes seconds; `baseline` is an
uninterrupted release of it that the faulty runs are compared with (same pseudonym key)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from slidegate.settings import Settings
from tests.faults.helpers import manifest_of, run_release, write_spec
from tests.services import S3Service


@pytest.fixture(scope="session")
def fault_cohort(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from slidegate.synth import generate_cohort

    root = tmp_path_factory.mktemp("fault-cohort")
    return generate_cohort(root, slides=5, patients=3, seed=5, base_size=(768, 1024))


@pytest.fixture(scope="session")
def s3_env(s3_service: S3Service) -> Iterator[S3Service]:
    """Admin credentials in the environment (Dask worker processes inherit them)."""
    old = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ.update(s3_service.env())
    yield s3_service
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def fault_bucket(s3_env: S3Service) -> str:
    name = f"faults-{uuid.uuid4().hex[:8]}"
    s3_env.client().create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def baseline(
    fault_cohort: Any,
    prefect_server: Any,
    s3_env: S3Service,
    fault_bucket: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    """One uninterrupted release on the default LocalCluster."""
    work = tmp_path_factory.mktemp("baseline-work")
    settings = Settings(work_dir=work, s3_endpoint_url=s3_env.endpoint_url, n_workers=2)
    spec = write_spec(fault_cohort, f"s3://{fault_bucket}/baseline", "baseline")
    result = run_release(spec, settings)
    assert result["published"] is True
    return {
        "settings": settings,
        "manifest": manifest_of(s3_env, fault_bucket, "baseline"),
        "result": result,
    }
