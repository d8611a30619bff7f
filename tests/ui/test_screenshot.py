"""Opt-in (`pytest -m ui tests/ui`): the Prefect UI's page of a finished release shows its
artifacts. Drives headless Chromium from Debian (`apt-get install chromium`) over the DevTools
protocol and saves a PNG (to $SLIDEGATE_SCREENSHOT_DIR, e.g. docs/, or the test's tmp folder)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.ui.cdp import chromium, chromium_binary

pytestmark = pytest.mark.ui
REPO = Path(__file__).resolve().parents[2]
RELEASE = "crc-2026-q4"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def flow_run_id(api_url: str, name: str) -> str:
    body = json.dumps({"flow_runs": {"name": {"any_": [name]}}}).encode()
    req = urllib.request.Request(
        f"{api_url}/flow_runs/filter", data=body, headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        runs = json.load(resp)
    assert runs, f"no flow run named {name}"
    return str(runs[0]["id"])


def test_flow_run_page_shows_the_release_artifacts(tmp_path: Path) -> None:
    if chromium_binary() is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    from flows.server import offline_env, start_server, stop_pid
    from slidegate.synth import generate_cohort

    port = free_port()
    env = dict(os.environ)
    env.pop("PREFECT_API_URL", None)
    offline_env(env, tmp_path / "prefect")
    env["PREFECT_UI_API_URL"] = f"http://127.0.0.1:{port}/api"  # the UI calls this API
    server = start_server(tmp_path / "prefect", port, env)
    try:
        cohort = generate_cohort(
            tmp_path / "cohort", slides=4, patients=2, seed=9, base_size=(512, 768)
        )
        spec = cohort.root / "release.yaml"
        spec.write_text(
            f"release: {RELEASE}\nsource: slides\ncohort: cohort.csv\nprofile: restricted\n"
            f"target: {tmp_path / 'target'}\ncanaries: canaries.json\n"
        )
        env["PREFECT_API_URL"] = server.api_url
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "flows.cli",
                "release",
                str(spec),
                "--workers",
                "1",
                "--work-dir",
                str(tmp_path / "work"),
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        run_id = flow_run_id(server.api_url, f"release-{RELEASE}")
        out_dir = Path(os.environ.get("SLIDEGATE_SCREENSHOT_DIR") or tmp_path)
        out_dir.mkdir(parents=True, exist_ok=True)
        png = out_dir / "prefect-release-run.png"
        with chromium(width=1440, height=1500) as page:
            page.goto(f"{server.ui_url}/runs/flow-run/{run_id}")
            page.wait_for_text(f"release-{RELEASE}")
            page.click_text("Artifacts")
            for what in ("summary", "inventory", "deid", "validation", "progress", "slides"):
                page.wait_for_text(f"{RELEASE}-{what}")
            time.sleep(1.0)  # let the cards finish their layout
            text = page.text()
            page.screenshot(png)
        assert "Completed" in text
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000
    finally:
        assert server.pid is not None
        stop_pid(server.pid)
