"""T5: releases of 10, 100 (1,000 on demand) tiny synthetic slides through the real CLI, a
real Prefect server (started once, reused by every run) and a LocalCluster of 2 workers, to a
local folder target; against the same work in a plain loop. Runs sizes interleaved.

    python -m bench.scale WORK [--sizes 10,100] [--reps 2] [--workers 2] [--py-spy DIR]

Per run: wall time of the CLI, CLI start to the first slide task, slide-task median, slide
and publish phases (from the Prefect API's task runs), peak RSS of the flow process, of the
Dask workers and of the server (sampled every 0.2 s), and the server database's size.
Overhead per slide = (flow - loop) / slides; slope = growth of a per-slide figure between
sizes. Prints one line `T5 {json}` at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BASE = (256, 256)  # tiny: the per-slide work is small, so the orchestration cost shows
LOOP = """
import json, sys, time
from pathlib import Path
from bench.scale import loop_release
print("LOOP " + json.dumps(loop_release(Path(sys.argv[1]), Path(sys.argv[2]))), flush=True)
"""


def cohort(work: Path, n: int) -> Path:
    """A synthetic cohort of n tiny slides (slidegate.synth), made once."""
    from slidegate.synth import generate_cohort

    root = work / f"t5-cohort-{n}"
    if not (root / "cohort.csv").is_file():
        generate_cohort(root, slides=n, patients=max(3, n // 3), seed=5, base_size=BASE)
    return root


def write_spec(root: Path, run_dir: Path, release: str) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    spec = run_dir / "release.yaml"
    spec.write_text(
        f"release: {release}\nsource: {root / 'slides'}\ncohort: {root / 'cohort.csv'}\n"
        f"profile: controlled-access\ntarget: {run_dir / 'target'}\n"
        f"canaries: {root / 'canaries.json'}\n",
        encoding="utf-8",
    )
    return spec


def loop_release(spec: Path, run_dir: Path) -> dict[str, float]:
    """The flow's work in a plain loop in one process: prepare, every slide, the cohort
    decision, every upload, the manifest. Times after imports."""
    from slidegate.ledger import record_release
    from slidegate.settings import Settings
    from slidegate.stages.cohort import decide_cohort
    from slidegate.stages.context import prepare_release
    from slidegate.stages.publish import check_target, finalize, publish_slide
    from slidegate.stages.slide import process

    settings = Settings(
        work_dir=run_dir / "work", registry_url=f"sqlite:///{run_dir / 'registry.sqlite'}"
    )
    t0 = time.perf_counter()
    ctx = prepare_release(spec, settings)
    check_target(ctx)
    reports = [process(ctx, s) for s in ctx.slides]
    t1 = time.perf_counter()
    outcome = decide_cohort(ctx, reports)
    t2 = time.perf_counter()
    records = [r for s in outcome.approved for r in publish_slide(ctx, s)]
    t3 = time.perf_counter()
    record_release(ctx.settings, ctx.work, ctx.release, ctx.key_id, "publishing")
    finalize(ctx, outcome, records)
    return {"loop_s": time.perf_counter() - t0, "slides_s": t1 - t0, "decide_s": t2 - t1,
            "publish_s": t3 - t2, "approved": float(len(outcome.approved))}  # fmt: skip


class RssSampler:
    """Peak RSS by role of a process tree (flow = the root, workers = Dask worker processes)
    and of the server, sampled every `every` seconds."""

    def __init__(self, root: int, server: int | None, every: float = 0.2) -> None:
        self.root, self.server, self.every = root, server, every
        self.peak: dict[str, float] = {"flow": 0.0, "worker": 0.0, "server": 0.0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _role(self, proc: Any) -> str:
        try:
            cmd = " ".join(proc.cmdline())
        except Exception:
            return "other"
        return "worker" if "multiprocessing" in cmd or "spawn_main" in cmd else "other"

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                root = psutil.Process(self.root)
                self._note("flow", root.memory_info().rss)
                for child in root.children(recursive=True):
                    if self._role(child) == "worker":
                        self._note("worker", child.memory_info().rss)
                if self.server:
                    self._note("server", psutil.Process(self.server).memory_info().rss)
            except Exception:  # a process ended between listing and reading
                pass
            self._stop.wait(self.every)

    def _note(self, role: str, rss: int) -> None:
        self.peak[role] = max(self.peak[role], rss / 2**20)

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join(timeout=5)
        return dict(self.peak)


def task_phases(release: str) -> dict[str, Any]:
    """From the Prefect API: the flow run of `release` and its task runs' timings."""
    from prefect import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterName,
        TaskRunFilter,
        TaskRunFilterFlowRunId,
    )

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[f"release-{release}"]))
        )
        if not runs:
            return {}
        run = runs[0]
        tasks, offset = [], 0
        while True:
            page = client.read_task_runs(
                task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=[run.id])),
                offset=offset,
                limit=200,
            )
            tasks += page
            offset += len(page)
            if len(page) < 200:
                break

    def spans(prefix: str) -> list[tuple[float, float]]:
        return [
            (t.start_time.timestamp(), t.end_time.timestamp())
            for t in tasks
            if t.name.startswith(prefix) and t.start_time and t.end_time
        ]

    out: dict[str, Any] = {"flow_start": run.start_time.timestamp() if run.start_time else None}
    for name, prefix in (("slide", "slide-s-"), ("publish", "publish-s-")):
        s = spans(prefix)
        if s:
            out[f"{name}_tasks"] = len(s)
            out[f"{name}_task_median_s"] = statistics.median(e - b for b, e in s)
            out[f"{name}_first_start"] = min(b for b, _ in s)
            out[f"{name}_phase_s"] = max(e for _, e in s) - min(b for b, _ in s)
    return out


def flow_release(spec: Path, run_dir: Path, workers: int, server: int | None,
                 spy: Path | None) -> dict[str, Any]:  # fmt: skip
    """`slidegate release SPEC` as a user runs it, with the server already up."""
    cmd = [sys.executable, "-m", "flows.cli", "release", str(spec), "--work-dir",
           str(run_dir / "work"), "--registry-url", f"sqlite:///{run_dir / 'registry.sqlite'}",
           "--workers", str(workers)]  # fmt: skip
    if spy is not None:  # py-spy over the flow and its worker processes
        cmd = [str(Path(sys.executable).with_name("py-spy")), "record", "--subprocesses",
               "--rate", "50", "--format", "speedscope",
               "--output", str(spy / f"{run_dir.name}.json"), "--", *cmd]  # fmt: skip
    t0 = time.time()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    sampler = RssSampler(proc.pid, server)
    out, _ = proc.communicate()
    wall = time.time() - t0
    peak = sampler.stop()
    rec: dict[str, Any] = {"wall_s": wall, "rc": proc.returncode, "rss_mb": peak}
    if proc.returncode != 0:
        rec["error"] = out.decode(errors="replace")[-800:]
        return rec
    phases = task_phases(spec.parent.name)
    if "slide_first_start" in phases:
        phases["start_to_first_slide_s"] = phases.pop("slide_first_start") - t0
    phases.pop("publish_first_start", None)
    if phases.get("flow_start"):
        phases["start_to_flow_s"] = phases.pop("flow_start") - t0
    rec.update(phases)
    return rec


def start_server(work: Path) -> tuple[Any, Path]:
    from flows.server import offline_env
    from flows.server import start_server as start

    home = work / "t5-prefect"
    shutil.rmtree(home, ignore_errors=True)
    offline_env(os.environ, home)
    os.environ["PREFECT_HOME"] = str(home)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = start(home, port, os.environ)
    os.environ["PREFECT_API_URL"] = server.api_url
    return server, home


def db_mb(home: Path) -> float:
    return sum(p.stat().st_size for p in home.glob("prefect.db*")) / 2**20


def run(work: Path, sizes: list[int], reps: int, workers: int, spy: Path | None) -> dict[str, Any]:
    from flows.server import stop_pid

    roots = {n: cohort(work, n) for n in sizes}
    server, home = start_server(work)
    runs: list[dict[str, Any]] = []
    try:
        for rep in range(reps):
            for n in sizes:
                for arm in ("loop", "flow"):
                    release = f"t5-{arm}-{n}-r{rep}"
                    run_dir = work / "t5-runs" / release
                    shutil.rmtree(run_dir, ignore_errors=True)
                    spec = write_spec(roots[n], run_dir, release)
                    load = os.getloadavg()[0]
                    if arm == "loop":
                        rec = _loop(spec, run_dir)
                    else:
                        rec = flow_release(spec, run_dir, workers, server.pid, spy)
                        rec["server_db_mb"] = db_mb(home)
                    rec.update({"arm": arm, "slides": n, "rep": rep, "load1": load})
                    runs.append(rec)
                    print(f"T5 run {json.dumps(rec)}", file=sys.stderr, flush=True)
                    shutil.rmtree(run_dir, ignore_errors=True)
    finally:
        if server.pid is not None:
            stop_pid(server.pid)
    return summarise(runs, sizes, workers)


def _loop(spec: Path, run_dir: Path) -> dict[str, Any]:
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-c", LOOP, str(spec), str(run_dir)], cwd=REPO,
                          capture_output=True, text=True, check=False)  # fmt: skip
    rec: dict[str, Any] = {"wall_s": time.time() - t0, "rc": proc.returncode}
    for line in proc.stdout.splitlines():
        if line.startswith("LOOP "):
            rec.update(json.loads(line[5:]))
    if proc.returncode != 0:
        rec["error"] = proc.stderr[-800:]
    return rec


def summarise(runs: list[dict[str, Any]], sizes: list[int], workers: int) -> dict[str, Any]:
    def med(arm: str, n: int, key: str) -> float | None:
        vals = [r[key] for r in runs if r["arm"] == arm and r["slides"] == n and key in r
                and r.get("rc") == 0]  # fmt: skip
        return statistics.median(vals) if vals else None

    per: dict[str, Any] = {}
    for n in sizes:
        flow, loop = med("flow", n, "wall_s"), med("loop", n, "loop_s")
        row: dict[str, Any] = {"flow_s": flow, "loop_s": loop}
        for key in (
            "start_to_first_slide_s",
            "start_to_flow_s",
            "slide_task_median_s",
            "slide_phase_s",
            "publish_phase_s",
            "publish_tasks",
            "server_db_mb",
        ):
            row[key] = med("flow", n, key)  # fmt: skip
        for role in ("flow", "worker", "server"):
            vals = [r["rss_mb"][role] for r in runs if r["arm"] == "flow" and r["slides"] == n
                    and "rss_mb" in r]  # fmt: skip
            row[f"peak_rss_{role}_mb"] = max(vals) if vals else None
        if flow is not None and loop is not None:
            row["overhead_per_slide_s"] = (flow - loop) / n
        if row["slide_phase_s"] is not None:
            row["slide_phase_per_slide_s"] = row["slide_phase_s"] / n
        if row["publish_phase_s"] is not None:
            row["publish_phase_per_slide_s"] = row["publish_phase_s"] / n
        per[str(n)] = row
    return {"sizes": sizes, "workers": workers, "base": BASE, "by_size": per, "runs": runs}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("work", type=Path)
    ap.add_argument("--sizes", default="10,100")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--py-spy", type=Path, help="record py-spy profiles of each flow run here")
    args = ap.parse_args(argv)
    if args.py_spy:
        args.py_spy.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    result = run(args.work.resolve(), sizes, args.reps, args.workers, args.py_spy)
    print("T5 " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())


def run_t5(work: Path, sizes: str = "10,100", reps: int = 1) -> dict[str, Any]:
    """T5 in a child process (own Prefect server); never raises."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench.scale", str(work), "--sizes", sizes, "--reps", str(reps)],
        capture_output=True, text=True, check=False, cwd=REPO,
    )  # fmt: skip
    for line in proc.stdout.splitlines():
        if line.startswith("T5 "):
            result: dict[str, Any] = json.loads(line[3:])
            return result
    return {"error": (proc.stderr or proc.stdout)[-600:]}


def _f(x: float | None, fmt: str = ".2f") -> str:
    return "n/a" if x is None else format(x, fmt)


def t5_rows(t5: dict[str, Any]) -> list[str]:
    """Rows of the BENCHMARKS.md targets table: figure next to goal (issue 17)."""
    if "error" in t5 or not t5.get("by_size"):
        return [f"| T5 scale (tiny slides) | see issue 17 | not measured: "
                f"{str(t5.get('error', 'no runs'))[:160]} | - |"]  # fmt: skip
    by = {int(k): v for k, v in t5["by_size"].items()}
    lo, hi = min(by), max(by)
    a, b = by[lo], by[hi]
    rows = []

    def row(what: str, goal: str, figure: str, ok: bool | None) -> None:
        rows.append(f"| {what} | {goal} | {figure} | {'-' if ok is None else _met(ok)} |")

    ma, mb = a.get("slide_task_median_s"), b.get("slide_task_median_s")
    if ma and mb:
        row(f"T5 slide-task median, {hi} vs {lo} slides", "<= 1.2x (at 1,000)",
            f"{mb:.2f} vs {ma:.2f} s = {mb / ma:.2f}x", mb / ma <= 1.2)  # fmt: skip
    over = b.get("overhead_per_slide_s")
    row(f"T5 overhead per slide at {hi} (flow - plain loop)", "<= 0.15 s (at 1,000)",
        f"{_f(over)} s (flow {_f(b.get('flow_s'), '.1f')} s, loop {_f(b.get('loop_s'), '.1f')} s)",
        None if over is None else over <= 0.15)  # fmt: skip
    pub = b.get("publish_phase_per_slide_s")
    row(f"T5 publish phase per slide at {hi}", "<= 0.05 s",
        f"{_f(pub, '.3f')} s ({b.get('publish_tasks')} task(s))",
        None if pub is None else pub <= 0.05)  # fmt: skip
    fa, fb = a.get("peak_rss_flow_mb"), b.get("peak_rss_flow_mb")
    if fa and fb:
        per_kb = (fb - fa) * 1024 / (hi - lo)
        row("T5 flow peak RSS growth per slide", "<= 50 KB",
            f"{fa:.0f} -> {fb:.0f} MB = {per_kb:.0f} KB/slide", per_kb <= 50)  # fmt: skip
    wa, wb = a.get("peak_rss_worker_mb"), b.get("peak_rss_worker_mb")
    if wa and wb:
        row("T5 worker peak RSS flat in cohort size", "flat (within 10%)",
            f"{wa:.0f} -> {wb:.0f} MB ({100 * (wb / wa - 1):+.0f}%)", wb <= 1.1 * wa)  # fmt: skip
    s0 = b.get("start_to_first_slide_s")
    row("T5 CLI start to first slide task (server up)", "<= 5 s",
        f"{_f(s0, '.1f')} s (to the flow run {_f(b.get('start_to_flow_s'), '.1f')} s)",
        None if s0 is None else s0 <= 5)  # fmt: skip
    da, db = a.get("server_db_mb"), b.get("server_db_mb")
    if da is not None and db is not None:
        row("T5 Prefect server DB size after the runs", "- (no goal)",
            f"{da:.1f} MB after the {lo}-slide run, {db:.1f} MB after the {hi}", None)  # fmt: skip
    sa, sb = a.get("peak_rss_server_mb"), b.get("peak_rss_server_mb")
    if sa and sb:
        row("T5 Prefect server peak RSS", "- (no goal)", f"{sa:.0f} -> {sb:.0f} MB", None)
    return rows


def _met(ok: bool) -> str:
    return "met" if ok else "missed"
