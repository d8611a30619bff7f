"""Damaged slides (truncated, bad offsets, absurd dimensions, an IFD loop, zero bytes) are
quarantined with a clear reason by the structural checks at inventory (no reader is ever left
spinning; the per-slide time limit is the backstop), and the rest is released."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from slidegate.publish.release import verify_release
from slidegate.publish.stores import LocalStore
from slidegate.settings import Settings
from tests.faults.corrupt import DAMAGES
from tests.faults.helpers import run_release, write_spec

pytestmark = pytest.mark.integration
RELEASE = "corrupt-1"
TIME_LIMIT = 60  # per read in the child process: a loaded CI machine must not stop good slides


@pytest.fixture(scope="module")
def damaged_cohort(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """10 slides of 4 patients; the last five are damaged copies of good slides."""
    from slidegate.synth import generate_cohort

    root = tmp_path_factory.mktemp("damaged-cohort")
    cohort = generate_cohort(root, slides=10, patients=4, seed=9, base_size=(512, 768))
    rows = pd.read_csv(cohort.cohort_csv)
    damaged: dict[str, str] = {}
    for (name, damage), slide in zip(DAMAGES.items(), rows["slide"].iloc[5:], strict=True):
        path = cohort.slides_dir / slide
        tmp = path.with_name("tmp-" + path.name)
        damage(path, tmp)
        tmp.replace(path)
        damaged[slide] = name
    return cohort, damaged


def test_damaged_slides_quarantined_rest_released(
    damaged_cohort: Any, prefect_server: Any, tmp_path: Path
) -> None:
    cohort, damaged = damaged_cohort
    target = tmp_path / "target"
    spec = write_spec(cohort, str(target), "corrupt", release=RELEASE)
    settings = replace(Settings(work_dir=tmp_path / "work"), slide_timeout_s=TIME_LIMIT)
    started = time.monotonic()
    result = run_release(spec, settings)
    elapsed = time.monotonic() - started
    assert result["published"] is True
    assert result["counts"]["quarantined"] == len(damaged)
    assert elapsed < 400  # an IFD loop or absurd dimensions used to hang a worker

    reports = json.loads((target / RELEASE / "reports" / "slides.json").read_text())
    quarantined = [r for r in reports if r["status"] == "quarantined"]
    reasons = sorted(r["reason"] for r in quarantined)
    assert len(quarantined) == len(damaged)
    assert all(r for r in reasons)
    print(reasons)
    joined = " ".join(reasons)
    assert all(r.startswith("corrupt") for r in reasons)
    assert {"corrupt: IFD loop", "corrupt: bad tile table"} <= set(reasons)
    # no damaged file name, no path in a published reason
    assert not any(name in joined for name in damaged)

    # nothing of a quarantined slide is published; the rest is, and verifies
    published = {p.name for p in (target / RELEASE / "slides").iterdir()}
    assert not any(f"{r['slide']}.ome.zarr" in published for r in quarantined)
    approved = [r for r in reports if r["status"] == "approved"]
    assert approved and {f"{r['slide']}.ome.zarr" for r in approved} == published
    assert verify_release(LocalStore(target), RELEASE) == []
