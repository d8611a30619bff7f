"""`--dask-address`: a release through a separately started `dask scheduler` and two
`dask worker` processes is identical (same manifest checksums, Data Docs included) to one on
the LocalCluster."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from flows.cli import main
from slidegate.settings import Settings
from tests.faults.helpers import (
    comparable,
    differing,
    manifest_of,
    run_release,
    share_key,
    write_spec,
)
from tests.services import S3Service, dask_processes

pytestmark = pytest.mark.integration


@pytest.fixture
def admin_env(s3_service: S3Service, monkeypatch: pytest.MonkeyPatch) -> S3Service:
    for k, v in s3_service.env().items():
        monkeypatch.setenv(k, v)  # the worker processes started below inherit them
    return s3_service


@pytest.fixture
def cohort(tmp_path: Path) -> Any:
    from slidegate.synth import generate_cohort

    return generate_cohort(tmp_path / "cohort", slides=5, patients=3, seed=21, base_size=(512, 768))


@pytest.fixture
def external(tmp_path: Path, prefect_server: Any, admin_env: S3Service) -> Iterator[str]:
    with dask_processes(tmp_path / "dask", n_workers=2) as cluster:
        yield cluster.address


def test_external_scheduler_equals_local_cluster(
    cohort: Any, external: str, admin_env: S3Service, tmp_path: Path
) -> None:
    bucket = f"scale-{uuid.uuid4().hex[:8]}"
    admin_env.client().create_bucket(Bucket=bucket)
    local = Settings(work_dir=tmp_path / "w-local", s3_endpoint_url=admin_env.endpoint_url)
    run_release(write_spec(cohort, f"s3://{bucket}/local", "local"), local)

    # the same release through the external scheduler, with the CLI flag
    remote = replace(local, work_dir=tmp_path / "w-remote", dask_address=external)
    share_key(local, remote)
    spec = write_spec(cohort, f"s3://{bucket}/remote", "remote")
    saved = dict(os.environ)  # the CLI edits its environment (Prefect home, offline flags)
    try:
        code = main(
            [
                "release",
                str(spec),
                "--dask-address",
                external,
                "--work-dir",
                str(remote.work_dir),
                "--s3-endpoint-url",
                admin_env.endpoint_url,
                "--registry-url",  # its own registry: one ledger blocks the same slides twice
                f"sqlite:///{tmp_path}/remote-registry.sqlite",
            ]
        )
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert code == 0

    a, b = manifest_of(admin_env, bucket, "local"), manifest_of(admin_env, bucket, "remote")
    # every object has the same checksum: slides, cohort.csv, reports and the GX Data Docs
    # pages (rendered with the release id and a fixed run time), and so has SHA256SUMS
    assert differing(a, b) == []
    assert sum(o["path"].startswith("reports/data-docs/") for o in a["objects"]) > 10
    assert comparable(a) == comparable(b) and a["sha256sums"] == b["sha256sums"]
    assert sum(o["path"].startswith("slides/") for o in a["objects"]) > 10

    # the work really ran on the two external worker processes
    from distributed import Client

    with Client(external) as client:
        executed = client.run(lambda dask_worker: dask_worker.state.executed_count)
    assert len(executed) == 2 and all(n > 0 for n in executed.values()), executed
    assert sum(executed.values()) >= 5 + 1  # one task per slide (5), at least one publish batch
