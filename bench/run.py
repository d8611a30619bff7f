"""`make bench`: T0-T2 (+T4) of /work/shared/reference/benchmark.md on inputs generated here.

Every measured job is its own process (bench/tasks.py or a shell command); the parent takes
wall time, CPU time and peak RSS from `os.wait4`. Cases run interleaved (A B C A B C ...),
REPS times, outputs deleted between runs, page cache warm (every input is read once first).
A run whose correctness gate fails is recorded and does not count.

    python -m bench.run [--sizes S,M,J2K] [--reps 3] [--quick] [--cases T0,T1] [--stages]
    (--quick: S only, 1 rep; --cases: a subset, e.g. `--cases "T0 cp,T1" --no-report`)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import gates, report
from bench.inputs import SIZES, write_slide

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
INPUT_VERSION = "2"  # bump when inputs.py changes what it writes


@dataclass
class Case:
    name: str  # e.g. "T1 passthrough"
    test: str  # T0 / T1 / T2
    size: str  # S / M / J2K
    threads: int
    argv: Callable[[Path, Path], list[str]]  # (src, out) -> command
    gate: Callable[[Path, Path], dict[str, Any]] | None = None
    env: dict[str, str] = field(default_factory=dict)
    reps: int | None = None  # override the global repetitions


def _py(job: str, threads: int, opts: dict[str, Any] | None = None) -> Callable[..., list[str]]:
    def argv(src: Path, out: Path) -> list[str]:
        args = [sys.executable, "-m", "bench.tasks", job, str(src), str(out), str(threads)]
        return [*args, json.dumps(opts)] if opts is not None else args

    return argv


def _env(threads: int) -> dict[str, str]:
    n = str(threads)
    return {"VIPS_CONCURRENCY": n, "ZARR_THREADING__MAX_WORKERS": n, "BLOSC_NTHREADS": n,
            "OMP_NUM_THREADS": n}  # fmt: skip


def _levels(src: Path) -> int:
    from slidegate.formats import read_facts

    return len(read_facts(src, src.name).levels)


def gate_passthrough(src: Path, out: Path) -> dict[str, Any]:
    tiles = gates.chunks_are_source_tiles(src, out, _levels(src))
    h, w = _shape(src)
    gates.random_regions(src, gates.zarr_reader(out), (h, w), exact=True)
    problems = gates.ngff_ok(out)
    assert not problems, problems
    return {"tiles_identical": tiles, "regions": "100 exact", "ngff": "ok"}


def gate_copy(src: Path, out: Path) -> dict[str, Any]:
    """T3: the copy re-opened by the audit's own check (tifffile + OpenSlide, every tile)."""
    from slidegate.audit.copy_check import check_copy
    from slidegate.deid import load_deid_policy, plan_deid
    from slidegate.formats import read_facts

    facts = read_facts(src, src.name)
    policy = load_deid_policy(REPO / "policies" / f"deid/{facts.format}.yaml")
    plan = plan_deid(facts, policy, "s-0000000000000000")
    problems = check_copy(out, plan, src)
    assert not problems, problems
    return {"copy_check": "ok (tiles identical, no label/macro, OpenSlide aperio)"}


def gate_reencode(exact: bool) -> Callable[[Path, Path], dict[str, Any]]:
    def gate(src: Path, out: Path) -> dict[str, Any]:
        worst = gates.random_regions(src, gates.zarr_reader(out), _shape(src), exact=exact)
        problems = gates.ngff_ok(out)
        assert not problems, problems
        return {"regions": "100 exact" if exact else f"100, min PSNR {worst:.1f} dB",
                "ngff": "ok"}  # fmt: skip

    return gate


def gate_vips(src: Path, out: Path) -> dict[str, Any]:
    worst = gates.random_regions(src, gates.vips_reader(out), _shape(src), exact=False)
    return {"regions": f"100, min PSNR {worst:.1f} dB"}


def _shape(src: Path) -> tuple[int, int]:
    import tifffile

    with tifffile.TiffFile(src) as tif:
        page = tif.pages[0]
        return int(page.imagelength), int(page.imagewidth)  # type: ignore[union-attr]


def cases_for(size: str, threads: tuple[int, ...]) -> list[Case]:
    pol = str(REPO / "policies")
    out: list[Case] = []
    if size == "J2K":
        out.append(
            Case(
                "T1 passthrough (JPEG 2000)",
                "T1",
                size,
                1,
                _py("slidegate", 1, {"policies": pol}),
                gate_passthrough,
            )
        )
        out.append(Case("T2 slidegate 2x -> JPEG Q95 (JPEG 2000 source)", "T2", size, 1,
                        _py("slidegate", 1, {"policies": pol, "mode": "jpeg", "quality": 95,
                                             "pyramid": "2x"}),
                        gate_reencode(False)))  # fmt: skip  # Q90 of this J2K source: 38 dB
        return out
    out += [
        Case("T0 cat", "T0", size, 1, lambda s, o: ["sh", "-c", f"cat '{s}' > /dev/null"]),
        Case("T0 cp", "T0", size, 1, lambda s, o: ["cp", str(s), str(o)]),
        Case("T0 tifffile decode level 0", "T0", size, 1, _py("decode", 1)),
        Case(
            "T3 slidegate original-format copy",
            "T3",
            size,
            1,
            _py("copy", 1, {"policies": pol}),
            gate_copy,
        ),
    ]
    for n in threads:
        out.append(Case("T1 slidegate passthrough", "T1", size, n,
                        _py("slidegate", n, {"policies": pol}), gate_passthrough))  # fmt: skip
        out.append(Case("T2 slidegate 2x -> JPEG", "T2", size, n,
                        _py("slidegate", n, {"policies": pol, "mode": "jpeg", "pyramid": "2x"}),
                        gate_reencode(False)))  # fmt: skip
        out.append(Case("T2 libvips tiffsave pyramid JPEG", "T2", size, n,
                        _py("vips", n, {"kind": "tiffsave"}), gate_vips))  # fmt: skip
        out.append(Case(VIPS_420, "T2", size, n,
                        _py("vips", n, {"kind": "tiffsave", "subsample": "on"}),
                        gate_vips))  # fmt: skip
        if size == "S":  # slower or secondary: S only, to keep `make bench` near 20 minutes
            out.append(Case("T2 slidegate 2x -> zstd", "T2", size, n,
                            _py("slidegate", n, {"policies": pol, "mode": "lossless",
                                                 "pyramid": "2x"}),
                            gate_reencode(True)))  # fmt: skip
            out.append(Case("T2 libvips dzsave JPEG", "T2", size, n,
                            _py("vips", n, {"kind": "dz"})))  # fmt: skip
            out.append(Case("T2 naive tifffile->dask->zarr (level 0)", "T2", size, n,
                            _py("naive", n), reps=1))  # fmt: skip
    for case in out:
        case.env = _env(case.threads)
    return out


#: libvips at slidegate's colour handling (YCbCr, 4:2:0): the equal-work comparison (issue 19)
VIPS_420 = "T2 libvips tiffsave pyramid JPEG 4:2:0"


def run_one(case: Case, src: Path, work: Path) -> dict[str, Any]:
    out = work / "out" / f"{case.size}-{case.name.replace(' ', '_')}-{case.threads}"
    _rm(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if "dzsave" in case.name:
        out = out.with_suffix("")  # dzsave appends .dzi / _files
    env = {**os.environ, **case.env, "PYTHONPATH": str(REPO)}
    t0 = time.perf_counter()
    cmd = [sys.executable, "-S", str(ROOT / "launch.py"), *case.argv(src, out)]
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, check=False)
    outer = time.perf_counter() - t0
    rec: dict[str, Any] = {
        "case": case.name, "test": case.test, "size": case.size, "threads": case.threads,
        "wall_s": outer, "cpu_s": 0.0, "peak_rss_mb": 0.0, "ok": False,
    }  # fmt: skip
    rc = proc.returncode
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            rec.update(json.loads(line[7:]))
        elif line.startswith("RUSAGE "):
            usage = json.loads(line[7:])
            rc = usage.pop("rc")
            rec.update(usage)
    rec["ok"] = rc == 0
    stderr = proc.stderr
    if rc != 0:
        rec["error"] = stderr[-800:]
    elif case.gate is not None:
        try:
            rec["gate"] = case.gate(src, out)
        except AssertionError as exc:
            rec["ok"], rec["gate_failed"] = False, str(exc)[:300]
    _rm(out)
    for extra in (out.with_suffix(".dzi"), Path(str(out) + "_files"), Path(str(out) + ".dzi")):
        _rm(extra)
    return rec


def _rm(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()


def make_inputs(work: Path, sizes: list[str]) -> dict[str, Path]:
    paths: dict[str, Path] = {}
    (work / "inputs").mkdir(parents=True, exist_ok=True)
    for size in sizes:
        h, w = SIZES[size]
        path = work / "inputs" / f"{size}-{h}x{w}-v{INPUT_VERSION}.svs"
        if not path.exists():
            t0 = time.perf_counter()
            tmp = path.with_suffix(".part")
            write_slide(tmp, (h, w), compression=33003 if size == "J2K" else 7)
            tmp.replace(path)
            print(f"generated {path.name} in {time.perf_counter() - t0:.1f} s", flush=True)
        paths[size] = path
        with open(path, "rb") as fh:  # warm the page cache
            while fh.read(1 << 24):
                pass
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="S,M,J2K")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--quick", action="store_true", help="S only, 1 repetition, no T4")
    ap.add_argument("--t4", action="store_true", help="also run T4 (Prefect + Dask)")
    ap.add_argument("--t5", action="store_true", help="also run T5 (scale: tiny-slide releases)")
    ap.add_argument("--t5-sizes", default="10,100", help="T5 cohort sizes (1,000: add ,1000)")
    ap.add_argument("--stages", action="store_true",
                    help="also the slide stage on tissue inputs, stage by stage")  # fmt: skip
    ap.add_argument("--work", default=str(ROOT / "work"))
    ap.add_argument(
        "--cases", default="", help="only cases whose name holds one of these words (a,b)"
    )
    ap.add_argument("--no-report", action="store_true")
    ap.add_argument("--no-risk", action="store_true", help="skip the risk case (bench/risk.py)")
    args = ap.parse_args(argv)
    sizes = ["S"] if args.quick else args.sizes.split(",")
    reps = 1 if args.quick else args.reps
    threads = tuple(int(t) for t in args.threads.split(","))
    work = Path(args.work)
    started = time.time()
    load_start = report.machine()["loadavg_at_end"]
    inputs = make_inputs(work, sizes)
    cases = [c for s in sizes for c in cases_for(s, threads)]
    if args.cases:
        words = [w.strip() for w in args.cases.split(",") if w.strip()]
        cases = [c for c in cases if any(w in c.name for w in words)]
    runs: list[dict[str, Any]] = []
    for rep in range(reps):
        for case in cases:
            if case.reps is not None and rep >= case.reps:
                continue
            rec = run_one(case, inputs[case.size], work)
            rec["rep"] = rep
            runs.append(rec)
            why = rec.get("gate_failed", rec.get("error", ""))
            flag = "ok" if rec["ok"] else f"FAILED {why}"
            print(f"[{rep}] {case.size:3} {case.name:45} t={case.threads} "
                  f"{rec['wall_s']:7.2f} s {rec['peak_rss_mb']:7.0f} MB {flag}",
                  flush=True)  # fmt: skip
    results = _results(inputs, reps, runs, None, started, load_start)
    _save(results, args.quick, args.no_report)  # T0-T2 are kept even if T4 fails or is cut
    if args.t4 and not args.quick:
        from bench.orchestration import run_t4

        results = _results(inputs, reps, runs, run_t4(work), started, load_start)
        _save(results, args.quick, args.no_report)
    if args.t5 and not args.quick:
        from bench.scale import run_t5

        results["t5"] = run_t5(work, args.t5_sizes)
        results["elapsed_s"] = time.time() - started
        _save(results, args.quick, args.no_report)
    ok = all(r["ok"] for r in runs)
    if args.stages and not args.quick:
        from bench import stages

        ok &= stages.main(["run", "--work", str(work)] + (["--no-report"] * args.no_report)) == 0
    if not args.quick and not args.no_risk:  # 5,000 slides through the risk model
        from bench import risk

        ok &= risk.main(["run", *(["--no-report"] if args.no_report else [])]) == 0
    return 0 if ok else 1


def _results(
    inputs: dict[str, Path],
    reps: int,
    runs: list[dict[str, Any]],
    t4: dict[str, Any] | None,
    started: float,
    load_start: list[str],
) -> dict[str, Any]:
    return {
        "loadavg_at_start": load_start,
        "machine": report.machine(),
        "versions": report.versions(),
        "inputs": {
            s: {"path": p.name, "bytes": p.stat().st_size, "shape": SIZES[s]}
            for s, p in inputs.items()
        },
        "reps": reps,
        "runs": runs,
        "t4": t4,
        "elapsed_s": time.time() - started,
    }


def _save(results: dict[str, Any], quick: bool, no_report: bool) -> None:
    (ROOT / "results").mkdir(exist_ok=True)
    name = "quick" if quick else "latest"
    (ROOT / "results" / f"{name}.json").write_text(json.dumps(results, indent=1))
    if not no_report and not quick:
        path = REPO / "BENCHMARKS.md"
        kept = report.kept_sections(path.read_text("utf-8") if path.exists() else "")
        path.write_text(report.markdown(results) + kept)
        print(f"wrote BENCHMARKS.md and bench/results/{name}.json", flush=True)


if __name__ == "__main__":
    sys.exit(main())
