"""Machine facts, versions, and the BENCHMARKS.md table from a results dict."""

from __future__ import annotations

import os
import platform
import re
import statistics
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("slidegate", "zarr", "numcodecs", "tifffile", "imagecodecs", "numpy", "dask",
            "prefect", "pyvips", "pyvips-binary")  # fmt: skip


def machine() -> dict[str, Any]:
    cpu, mem, load = "unknown", 0, ["?"]
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")),
                       cpu)  # fmt: skip
        with open("/proc/meminfo", encoding="utf-8") as fh:
            mem = int(fh.readline().split()[1]) // 1024
        with open("/proc/loadavg", encoding="utf-8") as fh:
            load = fh.read().split()[:3]
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "mem_mb": mem, "kernel": platform.release(),
            "python": platform.python_version(), "loadavg_at_end": load}  # fmt: skip


def versions() -> dict[str, str]:
    out: dict[str, str] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    try:
        import pyvips

        out["libvips"] = f"{pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}"
    except Exception:
        out["libvips"] = "not available"
    return out


def summarize(runs: list[dict[str, Any]]) -> dict[tuple[str, str, int], dict[str, Any]]:
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["size"], r["case"], r["threads"]), []).append(r)
    out: dict[tuple[str, str, int], dict[str, Any]] = {}
    for key, rs in groups.items():
        ok = [r for r in rs if r["ok"]]
        if not ok:
            out[key] = {"n": 0, "failed": len(rs), "why": rs[0].get("gate_failed")
                        or rs[0].get("error", "")[-200:]}  # fmt: skip
            continue
        work = [r.get("work_s", r["wall_s"]) for r in ok]
        out[key] = {
            "n": len(ok), "failed": len(rs) - len(ok),
            "work_s": statistics.median(work), "work_min": min(work), "work_max": max(work),
            "wall_s": statistics.median(r["wall_s"] for r in ok),
            "cpu_s": statistics.median(r["cpu_s"] for r in ok),
            "rss_mb": max(r["peak_rss_mb"] for r in ok),
            "bytes": ok[0].get("bytes"),
            "gate": ok[0].get("gate"),
        }  # fmt: skip
    return out


def _fmt(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def markdown(results: dict[str, Any]) -> str:
    s = summarize(results["runs"])
    inputs = results["inputs"]
    lines = ["# Benchmarks", "",
             "Produced by `make bench` (bench/run.py) implementing "
             "`../shared/reference/benchmark.md`.",
             "Raw runs: `bench/results/*.json`.", ""]  # fmt: skip
    m, v = results["machine"], results["versions"]
    lines += [
        "## Machine and versions", "",
        f"- CPU: {m['cpu']}, {m['cores']} cores, {m['mem_mb']} MB RAM, kernel {m['kernel']}, "
        f"Python {m['python']}; load average (1, 5, 15 min) at the start "
        f"{' '.join(results.get('loadavg_at_start', ['?']))}, at the end "
        f"{' '.join(m['loadavg_at_end'])}.",
        "- " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
        f"- {results['reps']} interleaved repetitions per case; page cache warm (inputs read "
        "once before); outputs deleted between runs. Times: median (min-max). `work` is the "
        "job's own time inside its process (interpreter start, imports and, for slidegate, the "
        "inventory excluded); `wall` is the whole process. Peak RSS from wait4 (max over reps).",
        f"- Whole run: {results['elapsed_s'] / 60:.1f} min.", "",
    ]  # fmt: skip
    lines += ["## Inputs (generated at run time, bench/inputs.py)", ""]
    for size, info in inputs.items():
        h, w = info["shape"]
        lines.append(f"- {size}: {w} x {h} px ({h * w / 1e6:.0f} Mpx), "
                     f"{info['bytes'] / 1e6:.1f} MB, {info['path']}")  # fmt: skip
    lines += ["", "## All cases", "",
              "| size | case | threads | work s | wall s | CPU s | peak RSS MB | runs ok | gate |",
              "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for (size, case, n), g in sorted(s.items()):
        if g["n"] == 0:
            lines.append(f"| {size} | {case} | {n} | FAILED | | | | 0/{g['failed']} | "
                         f"{str(g['why'])[:80]} |")  # fmt: skip
            continue
        gate = "; ".join(f"{k}: {val}" for k, val in (g["gate"] or {}).items())
        lines.append(
            f"| {size} | {case} | {n} | {g['work_s']:.2f} ({g['work_min']:.2f}-"
            f"{g['work_max']:.2f}) | {g['wall_s']:.2f} | {g['cpu_s']:.2f} | {g['rss_mb']:.0f} | "
            f"{g['n']}/{g['n'] + g['failed']} | {gate} |"
        )
    lines += ["", *targets(results, s), "", *_notes()]
    return "\n".join(lines) + "\n"


NOTES = Path(__file__).with_name("notes.md")  # the analysis of the last full run, by hand


def _notes() -> list[str]:
    return NOTES.read_text("utf-8").splitlines() if NOTES.is_file() else []


def _met(ok: bool, missed_by: str) -> str:
    return "met" if ok else f"missed by {missed_by}"


def _get(s: dict[tuple[str, str, int], dict[str, Any]], size: str, case: str, n: int,
         key: str = "work_s") -> float | None:  # fmt: skip
    g = s.get((size, case, n))
    return None if g is None or g["n"] == 0 else float(g[key])


def targets(results: dict[str, Any], s: dict[tuple[str, str, int], dict[str, Any]]) -> list[str]:
    size = next((x for x in ("L", "M") if any(k[0] == x for k in s)), "S")
    info = results["inputs"][size]
    mb = info["bytes"] / 1e6
    mpx = info["shape"][0] * info["shape"][1] / 1e6
    out = [f"## Targets (on {size})", "", "| target | goal | figure | met |", "|---|---|---|---|"]
    cp = _get(s, size, "T0 cp", 1, "wall_s")
    for n in (1, 2):
        pt = _get(s, size, "T1 slidegate passthrough", n)
        rss = _get(s, size, "T1 slidegate passthrough", n, "rss_mb")
        if pt is not None and cp:
            out.append(f"| T1 pass-through wall vs cp ({n} thread) | <= 2x cp | {pt:.2f} s vs cp "
                       f"{cp:.2f} s = {pt / cp:.1f}x ({mb / pt:.0f} MB/s of source) | "
                       f"{_met(pt <= 2 * cp, f'{pt / cp / 2:.1f}x')} |")  # fmt: skip
        if rss is not None:
            out.append(f"| T1 pass-through peak RSS ({n} thread) | <= 1024 MB | {rss:.0f} MB | "
                       f"{_met(rss <= 1024, f'{rss - 1024:.0f} MB')} |")  # fmt: skip
    for n in (1, 2):
        sg = _get(s, size, "T2 slidegate 2x -> JPEG", n)
        vi = _get(s, size, "T2 libvips tiffsave pyramid JPEG", n)
        if sg and vi:
            a, b = mpx / sg / n, mpx / vi / n
            out.append(f"| T2 2x pyramid JPEG vs libvips tiffsave ({n} thread) | >= 0.8x | "
                       f"slidegate {a:.0f} vs libvips {b:.0f} Mpx/s per core = {a / b:.2f}x | "
                       f"{_met(a / b >= 0.8, f'{0.8 - a / b:.2f}')} |")  # fmt: skip
        sc = _get(s, size, "T2 slidegate 2x -> JPEG", n, "cpu_s")
        vc = _get(s, size, "T2 libvips tiffsave pyramid JPEG", n, "cpu_s")
        if sc and vc:
            a, b = mpx / sc, mpx / vc
            out.append(f"| same, per CPU-second (whole process; robust on a shared machine) "
                       f"({n} thread) | >= 0.8x | slidegate {a:.0f} vs libvips {b:.0f} Mpx per "
                       f"CPU-s = {a / b:.2f}x | "
                       f"{_met(a / b >= 0.8, f'{0.8 - a / b:.2f}')} |")  # fmt: skip
    out += equal_work_rows(s, size, mpx)
    if size != "S":
        for case in ("T1 slidegate passthrough", "T2 slidegate 2x -> JPEG"):
            small, big = _get(s, "S", case, 1, "rss_mb"), _get(s, size, case, 1, "rss_mb")
            if small and big:
                out.append(f"| peak RSS flat S -> {size}: {case} | within 20% | {small:.0f} -> "
                           f"{big:.0f} MB ({(big / small - 1) * 100:+.0f}%) | "
                           f"{_met(big <= 1.2 * small, f'{(big / small - 1.2) * 100:.1f} pp')}"
                           " |")  # fmt: skip
    t4 = results.get("t4")
    if t4:
        out += t4_rows(t4)
    else:
        out.append("| T4 Prefect + Dask overhead | <= 0.5 s/slide, <= 5% | not run (`--t4`) | - |")
    if results.get("t5"):
        from bench.scale import t5_rows

        out += t5_rows(results["t5"])
    t3 = _get(s, size, "T3 slidegate original-format copy", 1)
    if t3 is not None and cp:
        out.append(f"| T3 de-identified copy in the original format vs cp | - (no goal) | "
                   f"{t3:.2f} s vs cp {cp:.2f} s = {t3 / cp:.1f}x ({mb / t3:.0f} MB/s of source)"
                   " | - |")  # fmt: skip
    return out


def _psnr(g: dict[str, Any] | None) -> str:
    """The gate's minimum PSNR of a case ("regions: 100, min PSNR 48.1 dB" -> "48.1 dB")."""
    text = str((g or {}).get("gate", {}).get("regions", ""))
    m = re.search(r"min PSNR ([0-9.]+) dB", text)
    return f"{m.group(1)} dB" if m else "?"


def equal_work_rows(s: dict[tuple[str, str, int], dict[str, Any]], size: str, mpx: float
                    ) -> list[str]:  # fmt: skip
    """Issue 19: slidegate's 2x JPEG Q90 pyramid (YCbCr 4:2:0) against libvips asked for the
    same colour handling (`subsample_mode=on`; its Q90 default is 4:4:4), per CPU-s, with the
    output size and the minimum PSNR of each beside it."""
    out = []
    for n in (1, 2):
        sg, vi = (
            s.get((size, "T2 slidegate 2x -> JPEG", n)),
            s.get((size, "T2 libvips tiffsave pyramid JPEG 4:2:0", n)),
        )
        if not sg or not vi or not sg.get("n") or not vi.get("n"):
            continue
        a, b = mpx / sg["cpu_s"], mpx / vi["cpu_s"]
        sizes = (
            ""
            if not (sg.get("bytes") and vi.get("bytes"))
            else (f"; output {sg['bytes'] / 1e6:.0f} vs {vi['bytes'] / 1e6:.0f} MB")
        )
        out.append(f"| T2 2x pyramid JPEG Q90 vs libvips at equal colour handling (both YCbCr "
                   f"4:2:0), per CPU-s ({n} thread) | >= 1.2x (issue 19) | slidegate {a:.0f} vs "
                   f"libvips {b:.0f} Mpx per CPU-s = {a / b:.2f}x{sizes}; min PSNR "
                   f"{_psnr(sg)} vs {_psnr(vi)} | "
                   f"{_met(a / b >= 1.2, f'{1.2 - a / b:.2f}x')} |")  # fmt: skip
    return out


def t4_rows(t4: dict[str, Any]) -> list[str]:
    if "error" in t4:
        loop = (
            f"core loop {t4['loop_s']:.1f} s for {t4['slides']} slides; " if "loop_s" in t4 else ""
        )
        return [f"| T4 Prefect + Dask overhead | <= 0.5 s/slide, <= 5%; 2 workers >= 1.6x | "
                f"{loop}not measured: {t4['error'][:160]} | - |"]  # fmt: skip
    per = t4["overhead_per_slide_s"]
    share = t4["overhead_share"]
    speed = t4["speedup_2_vs_1"]
    rows = [
        f"| T4 Prefect + Dask overhead per slide ({t4['slides']} slides of "
        f"{t4['slide_shape'][0]} x {t4['slide_shape'][1]} px) | <= 0.5 s | "
        f"{per:.2f} s (flow {t4['flow_s']:.1f} s vs loop {t4['loop_s']:.1f} s) | "
        f"{_met(per <= 0.5, f'{per - 0.5:.2f} s')} |",
    ]
    if "marginal_overhead_per_slide_s" in t4:
        marginal, fixed = t4["marginal_overhead_per_slide_s"], t4["fixed_overhead_s"]
        rows.append(
            f"| of which marginal per slide (20- vs 8-slide flow) and fixed per run | <= 0.5 s "
            f"| {marginal:.2f} s per slide + {fixed:.1f} s per run (cluster start, worker "
            f"imports, teardown) | {_met(marginal <= 0.5, f'{marginal - 0.5:.2f} s')} |"
        )
    if "warm_flow_s" in t4:
        warm, wshare = t4["warm_overhead_per_slide_s"], t4["warm_overhead_share"]
        rows += [
            f"| T4 overhead per slide, warm cluster (`--dask-address`, workers up) | <= 0.5 s | "
            f"{warm:.2f} s (flow {t4['warm_flow_s']:.1f} s vs loop {t4['loop_s']:.1f} s) | "
            f"{_met(warm <= 0.5, f'{warm - 0.5:.2f} s')} |",
            f"| T4 overhead share of wall, warm cluster | <= 5% | {wshare * 100:.1f}% | "
            f"{_met(wshare <= 0.05, f'{(wshare - 0.05) * 100:.0f} pp')} |",
        ]
    return [
        *rows,
        f"| T4 overhead share of wall (fresh cluster) | <= 5% | {share * 100:.1f}% | "
        f"{_met(share <= 0.05, f'{(share - 0.05) * 100:.0f} pp')} |",
        f"| T4 2 workers vs 1 ({t4['speed_slides']} slides) | >= 1.6x | {speed:.2f}x | "
        f"{_met(speed >= 1.6, f'{1.6 - speed:.2f}x')} |",
    ]


_SECTION = re.compile(r"<!-- ([a-z0-9-]+):start -->.*?<!-- \1:end -->\n?", re.S)


def kept_sections(text: str) -> str:
    """The sections other benchmarks own (between `<!-- name:start -->` and `<!-- name:end -->`
    markers, e.g. the slide stage's): a T0-T4 run rewrites the rest, these stay."""
    found = [m.group(0).rstrip("\n") + "\n" for m in _SECTION.finditer(text)]
    return "".join("\n" + f for f in found)


def write_section(section: str, start: str, end: str) -> None:
    """Put `section` (from its `start` marker to its `end` marker) into BENCHMARKS.md: in place
    of the section with the same markers, or appended."""
    path = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"
    text = path.read_text("utf-8") if path.exists() else ""
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end) + "\n?", re.S)
    if start in text:
        text = pattern.sub(lambda _: section, text)
    else:
        text = text.rstrip() + "\n\n" + section
    path.write_text(text, "utf-8")
