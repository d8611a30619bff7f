"""The release stage converts each slide with the worker's share of the cores as codec threads
(settings passed explicitly), unless the settings name a number."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import slidegate.stages.slide as stage
from slidegate.settings import Settings, slide_threads


def test_threads_are_the_workers_share_of_the_cores() -> None:
    assert slide_threads(Settings(n_workers=2, threads_per_worker=1), 8) == 4
    assert slide_threads(Settings(n_workers=2, threads_per_worker=2), 8) == 2
    assert slide_threads(Settings(n_workers=4, threads_per_worker=1), 2) == 1  # at least one
    assert slide_threads(Settings(n_workers=4, slide_threads=3), 2) == 3  # explicit wins
    assert Settings.from_env({"SLIDEGATE_SLIDE_THREADS": "5"}).slide_threads == 5


def test_deidentify_passes_the_threads_to_the_writer(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: list[int] = []

    def fake_bounded(bound: Any, name: str, fn: Any, src: Any, plan: Any, out: Path, opts: Any,
                     *rest: Any) -> Any:  # fmt: skip
        seen.append(opts.threads)  # what the slide's child process would convert with
        raise stage.PolicyError("stop here", reason="test: stop")

    monkeypatch.setattr(stage, "run_bounded", fake_bounded)
    monkeypatch.setattr(stage, "usable_cores", lambda: 6)
    monkeypatch.setattr(stage, "plan_deid", lambda *a: None)
    monkeypatch.setattr(stage, "_save_plan", lambda *a: None)
    monkeypatch.setattr(stage.SlideFacts, "load", lambda p: type("F", (), {
        "format": "svs", "source_path": str(tmp_path / "s.svs")})())  # fmt: skip

    class Ctx:
        settings = Settings(n_workers=3, threads_per_worker=1, work_dir=tmp_path)
        work = tmp_path
        dicom_uid_key = b""
        policies = type("P", (), {"profile": type("Pr", (), {"conversion": type("C", (), {
            "mode": "passthrough", "quality": 90, "pyramid": "native",
            "original_copy": False})()})(), "deid_for": lambda self, f: None})()  # fmt: skip

        def staging_path(self, pseudonym: str) -> Path:
            return tmp_path / f"{pseudonym}.ome.zarr"

    report = stage.SlideReport(
        slide_id="a", pseudonym="s-1", stage="inventory", status="ok", facts_path="f.json"
    )
    out = stage.deidentify(Ctx(), report)  # type: ignore[arg-type]
    assert seen == [2] and out.status == "quarantined"
