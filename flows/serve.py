"""`slidegate serve`: one command to a running scheduled system on one machine.

Starts (or reuses) the local Prefect server, creates the process work pool, registers the
deployments of deploy/prefect.yaml, and starts a worker (detached, pid in the work area).
`slidegate serve --stop` stops the worker and the server that slidegate started.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path

from flows.server import PrefectServer, ensure_server, stop_pid
from slidegate.errors import SlidegateError
from slidegate.procs import pid_alive

REPO = Path(__file__).resolve().parent.parent
PREFECT_FILE = REPO / "deploy" / "prefect.yaml"
DEFAULT_POOL = "slidegate-local"


@dataclass(frozen=True)
class Served:
    server: PrefectServer
    pool: str
    worker_pid: int
    worker_started: bool
    collection: Path


def prefect_cli(args: list[str], env: MutableMapping[str, str], timeout: float = 300) -> str:
    """Run `python -m prefect ...` from the repository root; raise with its output on failure."""
    proc = subprocess.run(
        [sys.executable, "-m", "prefect", *args],
        cwd=REPO,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
        raise SlidegateError(
            f"`prefect {' '.join(args[:3])}` failed (exit {proc.returncode}):\n" + "\n".join(tail)
        )
    return proc.stdout


def deploy_env(
    env: MutableMapping[str, str], *, work_dir: Path, collection: Path, pool: str
) -> None:
    """The variables deploy/prefect.yaml reads (`{{ $NAME }}`) and the worker inherits."""
    env["SLIDEGATE_REPO"] = str(REPO)
    env["SLIDEGATE_WORK_DIR"] = str(work_dir.resolve())
    env["SLIDEGATE_COLLECTION_SPEC"] = str(collection.resolve())
    env["SLIDEGATE_WORK_POOL"] = pool
    env.setdefault("PREFECT_WORKER_QUERY_SECONDS", "5")


def ensure_pool(pool: str, env: MutableMapping[str, str]) -> None:
    listed = prefect_cli(["work-pool", "ls"], env)
    if pool not in listed:
        prefect_cli(["work-pool", "create", pool, "--type", "process"], env)


def deploy(env: MutableMapping[str, str]) -> str:
    return prefect_cli(["--no-prompt", "deploy", "--all", "--prefect-file", str(PREFECT_FILE)], env)


def start_worker(pool: str, env: MutableMapping[str, str], home: Path) -> tuple[int, bool]:
    """A detached `prefect worker start`; reused when its pid file names a live process."""
    pid_file = home / f"worker-{pool}.pid"
    if pid_file.is_file():
        pid = int(pid_file.read_text().strip())
        if pid_alive(pid):
            return pid, False
    log = open(home / f"worker-{pool}.log", "ab")  # noqa: SIM115 - the detached child owns it
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--type", "process"],
        cwd=REPO,
        env=dict(env),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    pid_file.write_text(str(proc.pid))
    time.sleep(1.0)
    if proc.poll() is not None:
        raise SlidegateError(f"the Prefect worker exited at once; see {home / log.name}")
    return proc.pid, True


def stop_worker(home: Path, pool: str = DEFAULT_POOL) -> bool:
    pid_file = home / f"worker-{pool}.pid"
    if not pid_file.is_file():
        return False
    stopped = stop_pid(int(pid_file.read_text().strip()))
    pid_file.unlink(missing_ok=True)
    return stopped


def serve(
    env: MutableMapping[str, str],
    *,
    work_dir: Path,
    collection: Path,
    port: int,
    pool: str = DEFAULT_POOL,
) -> Served:
    home = work_dir.resolve() / "prefect"
    if not env.get("PREFECT_API_URL"):  # the UI must call the API on this port, not 4200
        env.setdefault("PREFECT_UI_API_URL", f"http://127.0.0.1:{port}/api")
    server = ensure_server(env, home, port)
    deploy_env(env, work_dir=work_dir, collection=collection, pool=pool)
    ensure_pool(pool, env)
    deploy(env)
    pid, started = start_worker(pool, env, home)
    return Served(
        server=server, pool=pool, worker_pid=pid, worker_started=started, collection=collection
    )


def demo_collection(out: Path) -> Path:
    """A synthetic collection to export when serve is given none (first run only)."""
    spec = out / "collection" / "collection.yaml"
    if not spec.is_file():
        from slidegate.synth import generate_cohort

        cohort = generate_cohort(out / "collection", slides=4, patients=2, seed=3)
        spec = cohort.root / "collection.yaml"
        spec.write_text(
            "collection: demo-collection\nsource: slides\ncohort: cohort.csv\n"
            f"profile: controlled-access\ntarget: {(out / 'exports').resolve()}\n"
            "canaries: canaries.json\n",
            encoding="utf-8",
        )
    return spec.resolve()
