"""The Dask worker preload starts the worker's per-slide child process, so its imports are done
before the first slide arrives (start-up, issue 17)."""

from __future__ import annotations

import pytest

from slidegate import bounded


def test_preload_leaves_a_started_slide_child(monkeypatch: pytest.MonkeyPatch) -> None:
    from tasks import preload

    monkeypatch.setenv("SLIDEGATE_SLIDE_MEMORY_MB", "1024")
    runner = bounded.BoundedRunner()
    monkeypatch.setattr(bounded, "_RUNNER", runner)
    monkeypatch.setattr(preload, "MODULES", ())  # the imports are the other half; not timed here
    preload._warm()
    try:
        assert len(runner._idle) == 1
        child = runner._idle[0]
        assert child.proc.poll() is None and child.memory_mb == 1024
        # the next slide of this worker takes that child (same bound), no new process
        assert runner._take(1024) is child
        runner._give(child)
    finally:
        runner.close()
