"""Helpers for the orchestration tests: a policies copy with steward profiles, run lookups."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SLIDEGATE = [sys.executable, "-m", "flows.cli"]


@pytest.fixture(scope="session")
def steward_policies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's policies plus `steward` (manual approval) and `steward-timeout`."""
    out = tmp_path_factory.mktemp("policies") / "policies"
    shutil.copytree(REPO / "policies", out)
    base = (out / "profiles" / "restricted.yaml").read_text()
    base = base.replace("approval: auto", "approval: manual")
    assert "approval: manual" in base
    (out / "profiles" / "steward.yaml").write_text(base)
    (out / "profiles" / "steward-timeout.yaml").write_text(
        base + "approval_timeout_days: 0.0001  # about 9 s\n"
    )
    return out


def cli_env(api_url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(PREFECT_API_URL=api_url, PYTHONPATH=str(REPO), **extra)
    return env


def slidegate(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SLIDEGATE, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


def wait_for_run(name: str, state: str, timeout: float = 180) -> Any:
    """The flow run called `name` once it reaches the state type `state` (e.g. PAUSED)."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    deadline = time.monotonic() + timeout
    seen = None
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name]))
            )
            for run in runs:
                seen = run.state.type.value if run.state else None
                if seen == state:
                    return run
            time.sleep(1)
    raise AssertionError(f"flow run {name} did not reach {state} in {timeout}s (last: {seen})")
