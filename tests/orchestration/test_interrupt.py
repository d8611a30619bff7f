"""Ctrl-C (issue 14 item 5): SIGINT to the CLI process during a release cancels the flow run
(state Cancelled), stops the Dask workers and exits within 10 s saying how to resume; the same
command then completes the release. A real CLI process, Prefect server and LocalCluster."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from tests.orchestration.conftest import REPO, SLIDEGATE, cli_env, wait_for_run

pytestmark = [pytest.mark.integration, pytest.mark.slow]
RELEASE = "ctrl-c-1"


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _state(name: str) -> str | None:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name]))
        )
    states = [r.state.type.value for r in runs if r.state is not None]
    return states[0] if len(states) == 1 else ",".join(sorted(states))


def test_ctrl_c_cancels_within_10_s_and_the_rerun_completes(prefect_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from slidegate.synth import generate_cohort

    cohort = generate_cohort(
        tmp_path / "cohort", slides=6, patients=3, seed=13, base_size=(2048, 3072)
    )
    spec = cohort.root / "release.yaml"
    spec.write_text(
        f"release: {RELEASE}\nsource: slides\ncohort: cohort.csv\nprofile: restricted\n"
        f"target: {tmp_path / 'out'}\ncanaries: canaries.json\n"
    )
    env = cli_env(
        prefect_server.api_url, SLIDEGATE_REGISTRY_URL=f"sqlite:///{tmp_path / 'reg.sqlite'}"
    )
    args = ["release", str(spec), "--work-dir", str(tmp_path / "work"), "--workers", "1"]
    proc = subprocess.Popen(
        [*SLIDEGATE, *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        wait_for_run(f"release-{RELEASE}", "RUNNING", timeout=120)
        deadline = time.monotonic() + 60  # the cluster is up and a slide is being converted
        children: list[psutil.Process] = []
        while time.monotonic() < deadline:
            children = psutil.Process(proc.pid).children(recursive=True)
            if len(children) >= 2 and any((tmp_path / "work").rglob("*.ome.zarr")):
                break
            time.sleep(0.5)
        assert children, "no worker process started"
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)  # the CLI process only, as the test says
        _, err = proc.communicate(timeout=30)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    print(f"\nexit after SIGINT: {elapsed:.1f} s, code {proc.returncode}")
    print("\n".join(err.splitlines()[-4:]))
    assert elapsed < 10, err[-3000:]
    assert proc.returncode == 130, err[-3000:]
    assert "again to resume" in err and "Traceback" not in err, err[-3000:]
    assert not (tmp_path / "out" / RELEASE / "manifest.json").exists()
    time.sleep(1)
    assert [c.pid for c in children if _alive(c.pid)] == []  # workers stopped
    assert _state(f"release-{RELEASE}") == "CANCELLED"

    rerun = subprocess.run(
        [*SLIDEGATE, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-2000:]
    assert (tmp_path / "out" / RELEASE / "manifest.json").is_file()
