"""A Dask worker process is killed (SIGKILL) in the middle of converting a slide: distributed
reschedules the task on another worker, and the release is complete and identical to an
uninterrupted one."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from distributed import Client, LocalCluster
from distributed.diagnostics.plugin import WorkerPlugin

from slidegate.publish.release import verify_release
from slidegate.publish.s3 import S3Store
from slidegate.settings import Settings
from tests.faults.helpers import (
    RELEASE,
    comparable,
    fast,
    manifest_of,
    run_release,
    share_key,
    write_spec,
)
from tests.services import S3Service

pytestmark = pytest.mark.integration


class KillMidConversion(WorkerPlugin):
    """Once per test: when this worker starts a `process-slide` task, wait until the slide's
    staging output appears on disk (conversion under way), then SIGKILL the worker process."""

    def __init__(self, staging: str, marker: str) -> None:
        self.staging, self.marker = staging, marker

    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
        if finish != "executing" or "process_slide" not in str(key):
            return
        try:
            fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return  # one kill only
        os.write(fd, f"{os.getpid()} {key}".encode())
        os.close(fd)
        threading.Thread(target=self._kill, daemon=True).start()

    def _kill(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if any(Path(self.staging).glob("*.ome.zarr/*")):
                break
            time.sleep(0.002)
        os.kill(os.getpid(), signal.SIGKILL)


def test_worker_killed_mid_conversion(
    fault_cohort: Any, baseline: dict[str, Any], s3_env: S3Service, fault_bucket: str, tmp_path
) -> None:
    settings = fast(Settings(work_dir=tmp_path / "work", s3_endpoint_url=s3_env.endpoint_url))
    share_key(baseline["settings"], settings)
    staging = settings.work_dir.resolve() / "releases" / RELEASE / "staging"
    marker = tmp_path / "killed"
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as cluster,
        Client(cluster) as client,
    ):
        pids_before = set(client.run(os.getpid).values())
        client.register_plugin(KillMidConversion(str(staging), str(marker)))
        spec = write_spec(fault_cohort, f"s3://{fault_bucket}/killed", "killed")
        result = run_release(
            spec, Settings(**{**settings.__dict__, "dask_address": cluster.scheduler_address})
        )
        pids_after = set(client.run(os.getpid).values())

    killed_pid = int(marker.read_text().split()[0])
    assert killed_pid in pids_before and killed_pid not in pids_after  # really killed
    assert result["published"] is True
    assert result["counts"] == baseline["result"]["counts"]
    assert comparable(manifest_of(s3_env, fault_bucket, "killed")) == comparable(
        baseline["manifest"]
    )
    assert verify_release(S3Store(fault_bucket, "killed", s3_env.client()), RELEASE) == []
