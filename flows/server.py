"""A local Prefect server on 127.0.0.1: reused when running, started (detached) when not.

Without a server, every Dask worker would start its own temporary one (stack-notes.md).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path

from slidegate.errors import SlidegateError

DEFAULT_PORT = 4200


@dataclass(frozen=True)
class PrefectServer:
    api_url: str
    started: bool  # True when this call started it
    pid: int | None = None

    @property
    def ui_url(self) -> str:
        return self.api_url.removesuffix("/api")


def healthy(api_url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=timeout) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def offline_env(env: MutableMapping[str, str], home: Path) -> None:
    """Settings for a private, offline Prefect: own home, no telemetry."""
    env.setdefault("PREFECT_HOME", str(home))
    env.setdefault("DO_NOT_TRACK", "1")
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    env.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    env.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "slidegate")


def start_server(
    home: Path, port: int, env: MutableMapping[str, str], wait: float = 120.0
) -> PrefectServer:
    """Start `prefect server start` detached on 127.0.0.1:port; wait until healthy."""
    home.mkdir(parents=True, exist_ok=True)
    api_url = f"http://127.0.0.1:{port}/api"
    child_env = dict(env)
    child_env.pop("PREFECT_API_URL", None)
    child_env["PREFECT_UI_API_URL"] = api_url  # the UI in the browser talks to this server
    child_env["PREFECT_HOME"] = str(home)
    log = open(home / "server.log", "ab")  # noqa: SIM115 - the detached child owns it
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "prefect",
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=child_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    (home / "server.pid").write_text(str(proc.pid))
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if healthy(api_url):
            return PrefectServer(api_url=api_url, started=True, pid=proc.pid)
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    stop_pid(proc.pid)
    raise SlidegateError(
        f"the local Prefect server did not start on 127.0.0.1:{port}; see {home / 'server.log'}"
        " (is the port taken? set another with --prefect-port, or set PREFECT_API_URL)"
    )


def ensure_server(
    env: MutableMapping[str, str], home: Path, port: int = DEFAULT_PORT
) -> PrefectServer:
    """Use PREFECT_API_URL when set; else reuse or start the local server. Sets the env."""
    offline_env(env, home)
    if env.get("PREFECT_API_URL"):
        return PrefectServer(api_url=env["PREFECT_API_URL"].rstrip("/"), started=False)
    api_url = f"http://127.0.0.1:{port}/api"
    server = (
        PrefectServer(api_url=api_url, started=False)
        if healthy(api_url)
        else start_server(home, port, env)
    )
    env["PREFECT_API_URL"] = server.api_url
    return server


def stop_server(home: Path) -> bool:
    pid_file = home / "server.pid"
    if not pid_file.is_file():
        return False
    stopped = stop_pid(int(pid_file.read_text().strip()))
    pid_file.unlink(missing_ok=True)
    return stopped


def stop_pid(pid: int, grace: float = 15.0) -> bool:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our own child: reap it
                return True
        except ChildProcessError:
            pass
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    os.killpg(pid, signal.SIGKILL)
    return True
