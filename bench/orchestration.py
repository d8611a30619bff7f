"""T4: the same cohort through the Prefect + Dask flow (dry run) vs the core stage functions in
a plain loop. Runs in its own process (`python -m bench.orchestration WORK`): it starts a
Prefect server of its own on a free loopback port and sets PREFECT_API_URL for its Dask workers.

Per-slide work is the real one (inventory, de-identify + convert, audit re-open) plus the
cohort decision (risk + Great Expectations), in both arms. Overhead = flow - loop.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SLIDES = 20
SPEED_SLIDES = 8
BASE = (8192, 8192)  # benchmark.md's S size
TEXTURES = 4  # distinct textures (each costs ~5-10 s to make once); slide i uses i % TEXTURES


def _cohort(work: Path) -> Path:
    """20 S-size SVS slides (bench.inputs, fast) under a synthetic cohort table (slidegate.synth
    writes the table and small slides, which are then replaced)."""
    from bench.inputs import write_slide
    from slidegate.synth import generate_cohort

    root = work / f"t4-cohort-{SLIDES}-{BASE[0]}x{BASE[1]}"
    if not (root / "cohort.csv").exists():
        generate_cohort(root, slides=SLIDES, patients=10, seed=5, base_size=(512, 512),
                        tiff_every=SLIDES + 1)  # fmt: skip
        for i, slide in enumerate(sorted((root / "slides").glob("S*.svs"))):
            write_slide(slide, BASE, seed=1 + i % TEXTURES)
    for name, rows in (("all", SLIDES), ("speed", SPEED_SLIDES)):
        lines = (root / "cohort.csv").read_text().splitlines()
        (root / f"{name}.csv").write_text("\n".join(lines[: rows + 1]) + "\n")
        (root / f"{name}.yaml").write_text(
            f"release: t4-{name}\nsource: slides\ncohort: {name}.csv\nprofile: open-access\n"
            f"target: {root / 'target'}\n"
        )
    return root


def _loop(spec: Path, work: Path) -> tuple[float, float]:
    """(whole loop, its per-slide part) in seconds."""
    from slidegate.settings import Settings
    from slidegate.stages.cohort import decide_cohort
    from slidegate.stages.context import prepare_release
    from slidegate.stages.slide import process

    shutil.rmtree(work, ignore_errors=True)
    t0 = time.perf_counter()
    ctx = prepare_release(spec, Settings(work_dir=work))
    reports = [process(ctx, s) for s in ctx.slides]
    slides_s = time.perf_counter() - t0
    decide_cohort(ctx, reports)
    return time.perf_counter() - t0, slides_s


def _flow(spec: Path, work: Path, workers: int, address: str | None = None) -> float:
    from flows.release import dask_runner, release_cohort
    from slidegate.settings import Settings

    shutil.rmtree(work, ignore_errors=True)
    settings = Settings(work_dir=work, n_workers=workers, dask_address=address)
    t0 = time.perf_counter()
    result = release_cohort.with_options(task_runner=dask_runner(settings))(
        spec=str(spec), dry_run=True, settings=settings
    )
    elapsed = time.perf_counter() - t0
    counts = result.get("counts", {}) if isinstance(result, dict) else {}
    if not counts:
        raise RuntimeError("flow returned no slide counts")
    return elapsed


def run(work: Path) -> dict[str, Any]:
    from flows.server import offline_env, start_server, stop_pid

    root = _cohort(work)
    home = work / "t4-prefect"
    offline_env(os.environ, home)
    os.environ["PREFECT_HOME"] = str(home)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = start_server(home, port, os.environ)
    os.environ["PREFECT_API_URL"] = server.api_url
    try:
        loop_s, loop_slides_s = _loop(root / "all.yaml", work / "t4-loop")
        try:
            flow_s = _flow(root / "all.yaml", work / "t4-flow1", 1)
            speed1 = _flow(root / "speed.yaml", work / "t4-speed1", 1)
            speed2 = _flow(root / "speed.yaml", work / "t4-speed2", 2)
            warm_s = _warm_flow(root, work)
        except Exception as exc:  # the flow arm failed: keep the loop figure
            return {"error": f"flow failed: {type(exc).__name__}: {str(exc)[:200]}",
                    "slides": SLIDES, "loop_s": loop_s}  # fmt: skip
    finally:
        if server.pid is not None:
            stop_pid(server.pid)
    over = flow_s - loop_s
    # marginal: what one more slide adds to the flow beyond its work (20- vs 8-slide run, one
    # worker each); fixed: the rest (cluster start, worker imports, teardown)
    marginal = (flow_s - speed1) / (SLIDES - SPEED_SLIDES) - loop_slides_s / SLIDES
    return {
        "slides": SLIDES, "slide_shape": BASE, "speed_slides": SPEED_SLIDES,
        "loop_s": loop_s, "loop_slides_s": loop_slides_s, "flow_s": flow_s,
        "overhead_per_slide_s": over / SLIDES, "marginal_overhead_per_slide_s": marginal,
        "fixed_overhead_s": over - SLIDES * marginal,
        "overhead_share": over / flow_s, "speed_1_worker_s": speed1, "speed_2_workers_s": speed2,
        "speedup_2_vs_1": speed1 / speed2, "reps": 1,
        "warm_flow_s": warm_s, "warm_overhead_per_slide_s": (warm_s - loop_s) / SLIDES,
        "warm_overhead_share": (warm_s - loop_s) / warm_s,
    }  # fmt: skip


def _warm_flow(root: Path, work: Path) -> float:
    """The 20-slide flow on a Dask cluster that is already up and warm (one worker process
    that has run a release before), as with `--dask-address` in production: no cluster
    start or worker imports in the timed run."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as cluster:  # fmt: skip
        address = cluster.scheduler_address
        _flow(root / "speed.yaml", work / "t4-warmup", 1, address)  # untimed: warms the worker
        return _flow(root / "all.yaml", work / "t4-warm", 1, address)


def run_t4(work: Path) -> dict[str, Any]:
    """Run T4 in a child process (own environment, own Prefect server); never raises."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench.orchestration", str(work)],
        capture_output=True, text=True, check=False, cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    for line in proc.stdout.splitlines():
        if line.startswith("T4 "):
            result: dict[str, Any] = json.loads(line[3:])
            print(f"T4: {result}", flush=True)
            return result
    return {"error": (proc.stderr or proc.stdout)[-600:]}


if __name__ == "__main__":
    print("T4 " + json.dumps(run(Path(sys.argv[1]))), flush=True)
