"""The per-slide bound: a real child process, a real address-space limit, a real kill."""

from __future__ import annotations

import errno
import time

import pytest

from slidegate.bounded import Bound, BoundedRunner
from slidegate.errors import CorruptSlideError, SlideLimitError
from tests.fuzz import child_work


@pytest.fixture
def runner() -> BoundedRunner:
    r = BoundedRunner(warm=())  # the readers are imported on first use
    yield r  # type: ignore[misc]
    r.close()


BOUND = Bound(seconds=20, memory_mb=1024)


def test_child_is_reused_and_cheap(runner: BoundedRunner) -> None:
    first = runner.run(BOUND, "s", child_work.pid)
    assert runner.run(BOUND, "s", child_work.add, 2, 3) == 5
    started = time.perf_counter()
    for _ in range(50):
        runner.run(BOUND, "s", child_work.add, 1, 1)
    per_call = (time.perf_counter() - started) / 50
    assert runner.run(BOUND, "s", child_work.pid) == first  # the same child
    print(f"per-call overhead {per_call * 1000:.2f} ms")
    assert per_call < 0.05


def test_a_loop_is_killed_at_the_deadline_and_the_next_call_works(runner: BoundedRunner) -> None:
    first = runner.run(BOUND, "s", child_work.pid)
    started = time.monotonic()
    with pytest.raises(SlideLimitError) as caught:
        runner.run(Bound(seconds=1.5, memory_mb=1024), "slide-7", child_work.spin)
    took = time.monotonic() - started
    assert 1.4 < took < 5
    assert caught.value.reason == "limit: time bound exceeded (1.5 s per slide)"
    assert "slide-7" in str(caught.value)
    assert runner.run(BOUND, "s", child_work.pid) != first  # a new child replaced it


def test_memory_past_the_bound_is_stopped(runner: BoundedRunner) -> None:
    with pytest.raises(SlideLimitError) as caught:
        runner.run(Bound(seconds=20, memory_mb=400), "slide-8", child_work.allocate, 450)
    assert caught.value.reason == "limit: memory bound exceeded (400 MiB per slide)"
    # the same allocation without the bound succeeds: the limit is what stopped it
    assert runner.run(Bound(seconds=20, memory_mb=0), "s", child_work.allocate, 450) == 1


def test_foreign_errors_cross_as_project_errors_without_their_text(
    runner: BoundedRunner,
) -> None:
    with pytest.raises(CorruptSlideError) as caught:
        runner.run(BOUND, "slide-9", child_work.leak_value)
    assert "Test^Patient" not in str(caught.value) and "1234567" not in str(caught.value)
    assert "ValueError" in str(caught.value) and "slide-9" in str(caught.value)
    assert caught.value.reason == "corrupt: conversion failed (ValueError)"
    with pytest.raises(OSError) as full:
        runner.run(BOUND, "s", child_work.disk_full)
    assert full.value.errno == errno.ENOSPC
    assert runner.run(BOUND, "s", child_work.add, 1, 2) == 3


def test_a_crashing_reader_is_a_corrupt_slide(runner: BoundedRunner) -> None:
    with pytest.raises(CorruptSlideError) as caught:
        runner.run(BOUND, "slide-10", child_work.crash)
    assert caught.value.reason == "corrupt: reader crashed"
    assert runner.run(BOUND, "s", child_work.add, 1, 2) == 3


def test_project_errors_keep_their_class_and_reason(
    runner: BoundedRunner, real_slides: object, tmp_path: object
) -> None:
    from pathlib import Path

    from slidegate.formats import read_facts

    path = Path(str(tmp_path)) / "cut.svs"
    path.write_bytes(b"II*\x00")
    with pytest.raises(CorruptSlideError) as caught:
        runner.run(BOUND, "cut", read_facts, path, "cut")
    assert caught.value.reason.startswith("corrupt:")
