"""The S3 secret key never appears in logs, artifacts, reports or exceptions: three CLI runs
(read-only key, wrong secret, a good key) and a grep of everything they left behind."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.faults.helpers import RELEASE, write_spec
from tests.services import S3Service

pytestmark = pytest.mark.integration


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        timeout=300,
        check=False,
    )


def _prefect_texts() -> list[str]:
    """Every log line, artifact, flow run and task run (states, parameters) on the server."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter

    texts: list[str] = []
    with get_client(sync_client=True) as client:
        offset = 0
        while batch := client.read_logs(log_filter=LogFilter(), limit=200, offset=offset):
            texts += [lg.message for lg in batch]
            offset += len(batch)
        texts += [json.dumps(a.model_dump(mode="json")) for a in client.read_artifacts()]
        texts += [json.dumps(r.model_dump(mode="json")) for r in client.read_flow_runs()]
        texts += [json.dumps(r.model_dump(mode="json")) for r in client.read_task_runs()]
    assert offset > 0
    return texts


def test_secret_key_never_leaks(
    fault_cohort: Any, prefect_server: Any, s3_env: S3Service, fault_bucket: str, tmp_path: Path
) -> None:
    repo = Path(__file__).resolve().parents[2]
    wrong = "Wr0ng" + secrets.token_hex(18)
    base = {
        **os.environ,
        "PYTHONPATH": str(repo),
        "SLIDEGATE_PUBLISH_RETRIES": "1",
        "SLIDEGATE_PUBLISH_RETRY_DELAY_S": "1",
        "SLIDEGATE_S3_MAX_ATTEMPTS": "2",
    }
    runs = {
        "read-only": s3_env.env(readonly=True),
        "wrong": {"AWS_ACCESS_KEY_ID": s3_env.access_key, "AWS_SECRET_ACCESS_KEY": wrong},
        "good": s3_env.env(),
    }
    spec = write_spec(fault_cohort, f"s3://{fault_bucket}/secrets", "secrets")
    outputs: list[bytes] = []
    codes = {}
    for name, creds in runs.items():
        work = tmp_path / f"work-{name}"
        done = _cli(
            [
                "release",
                str(spec),
                "--work-dir",
                str(work),
                "--s3-endpoint-url",
                s3_env.endpoint_url,
            ],
            {**base, **creds},
            tmp_path,
        )
        codes[name] = done.returncode
        outputs += [done.stdout, done.stderr]
    assert codes == {"read-only": 2, "wrong": 2, "good": 0}, outputs
    assert b"credentials are wrong or lack permission" in outputs[1]  # read-only: stderr
    assert b"credentials are wrong or lack permission" in outputs[3]  # wrong secret: stderr

    # everything a run leaves behind: console, work areas, the release, the Prefect server
    blobs = list(outputs)
    blobs += [p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()]
    client = s3_env.client()
    listed = client.list_objects_v2(Bucket=fault_bucket, Prefix=f"secrets/{RELEASE}/")
    keys = [o["Key"] for o in listed.get("Contents", [])]
    assert f"secrets/{RELEASE}/manifest.json" in keys
    blobs += [client.get_object(Bucket=fault_bucket, Key=k)["Body"].read() for k in keys]
    blobs += [t.encode() for t in _prefect_texts()]
    for secret in (s3_env.secret_key, s3_env.readonly_secret_key, wrong):
        hits = [i for i, blob in enumerate(blobs) if secret.encode() in blob]
        assert hits == [], f"secret found in {len(hits)} output(s)"
