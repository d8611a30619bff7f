"""T5's rows in BENCHMARKS.md: each figure next to its goal, met or missed from the figures."""

from __future__ import annotations

from bench.scale import t5_rows


def _size(median: float, over: float, pub: float, flow_mb: float, first: float) -> dict:
    return {"slide_task_median_s": median, "overhead_per_slide_s": over, "flow_s": 60.0,
            "loop_s": 30.0, "publish_phase_per_slide_s": pub, "publish_tasks": 3,
            "peak_rss_flow_mb": flow_mb, "peak_rss_worker_mb": 300.0,
            "start_to_first_slide_s": first, "start_to_flow_s": 3.0, "server_db_mb": 6.0,
            "peak_rss_server_mb": 270.0}  # fmt: skip


def test_rows_say_met_or_missed_from_the_figures() -> None:
    t5 = {"by_size": {"10": _size(0.30, 0.5, 0.02, 380.0, 9.0),
                      "100": _size(0.33, 0.1, 0.08, 384.0, 4.0)}}  # fmt: skip
    rows = {r.split(" | ")[0].lstrip("| "): r for r in t5_rows(t5)}
    assert "1.10x" in rows["T5 slide-task median, 100 vs 10 slides"]
    assert rows["T5 slide-task median, 100 vs 10 slides"].endswith("| met |")
    assert rows["T5 overhead per slide at 100 (flow - plain loop)"].endswith("| met |")
    assert rows["T5 publish phase per slide at 100"].endswith("| missed |")
    assert "46 KB/slide" in rows["T5 flow peak RSS growth per slide"]
    assert rows["T5 CLI start to first slide task (server up)"].endswith("| met |")
    slow = {"by_size": {"10": _size(0.3, 0.5, 0.02, 380.0, 9.0),
                        "100": _size(0.9, 0.5, 0.02, 480.0, 9.0)}}  # fmt: skip
    rows = {r.split(" | ")[0].lstrip("| "): r for r in t5_rows(slow)}
    assert rows["T5 slide-task median, 100 vs 10 slides"].endswith("| missed |")
    assert rows["T5 flow peak RSS growth per slide"].endswith("| missed |")
    assert "not measured" in t5_rows({"error": "flow failed"})[0]
