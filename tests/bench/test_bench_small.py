"""The S-size benchmark case with its correctness gates (the full `make bench` is opt-in)."""

from __future__ import annotations

import pytest

from bench import report
from bench.run import cases_for, make_inputs, run_one

WANTED = ("T0 cp", "T1 slidegate passthrough", "T2 slidegate 2x -> JPEG")


@pytest.fixture(scope="module")
def s_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], dict]:
    work = tmp_path_factory.mktemp("bench")
    inputs = make_inputs(work, ["S"])
    runs = []
    for case in cases_for("S", (1,)):
        if case.name in WANTED:
            runs.append(run_one(case, inputs["S"], work))
    info = {"S": {"path": inputs["S"].name, "bytes": inputs["S"].stat().st_size,
                  "shape": (8192, 8192)}}  # fmt: skip
    return runs, info


def test_s_case_passes_its_gates(s_runs: tuple[list[dict], dict]) -> None:
    runs, _ = s_runs
    by = {r["case"]: r for r in runs}
    assert set(by) == set(WANTED)
    for r in runs:
        assert r["ok"], r
        assert r["peak_rss_mb"] > 0 and r["wall_s"] > 0
    t1 = by["T1 slidegate passthrough"]
    # 8192 / 256 = 32 x 32 base tiles + the reduced levels' tiles, byte-identical
    assert t1["gate"]["tiles_identical"] >= 32 * 32
    assert t1["gate"]["regions"] == "100 exact" and t1["gate"]["ngff"] == "ok"
    assert "PSNR" in by["T2 slidegate 2x -> JPEG"]["gate"]["regions"]
    assert t1["peak_rss_mb"] < 1024


def test_report_puts_each_target_next_to_its_figure(s_runs: tuple[list[dict], dict]) -> None:
    runs, info = s_runs
    results = {"machine": report.machine(), "versions": report.versions(), "inputs": info,
               "reps": 1, "runs": runs, "t4": None, "elapsed_s": 1.0}  # fmt: skip
    text = report.markdown(results)
    assert "| T1 pass-through wall vs cp (1 thread) | <= 2x cp |" in text
    assert "| T1 pass-through peak RSS (1 thread) | <= 1024 MB |" in text
    assert "T4 Prefect + Dask overhead" in text
