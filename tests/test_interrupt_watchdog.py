"""flows/interrupt.py alone, in a few seconds (the full Ctrl-C test on a real release is
tests/orchestration/test_interrupt.py, slow): a run that swallows the KeyboardInterrupt (an
engine busy in C code) is still stopped by the watchdog within the deadline, its child
processes killed, the resume hint printed, exit 130."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from flows.interrupt import DEADLINE_S

REPO = Path(__file__).resolve().parents[1]
STUBBORN = """
import subprocess, sys, time
from flows.interrupt import Interruptible
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
print(child.pid, flush=True)
with Interruptible("r1", ["release", "spec.yaml"]):
    while True:
        try:
            time.sleep(0.05)
        except KeyboardInterrupt:
            pass
"""


def test_watchdog_stops_a_run_that_ignores_the_interrupt(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PREFECT_API_URL": "http://127.0.0.1:9/api"}
    proc = subprocess.Popen(
        [sys.executable, "-c", STUBBORN], cwd=REPO, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        child = int(proc.stdout.readline())
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert elapsed < DEADLINE_S, elapsed
    assert "cancelling the flow run" in err
    assert "Run `slidegate release spec.yaml` again to resume" in err
    time.sleep(0.5)
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == "zombie"
