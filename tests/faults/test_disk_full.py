"""Disk full on the staging area (a small tmpfs mounted over it): the slide that does not fit
fails cleanly ("staging area full"), its partial output is removed, nothing of it is published,
and the rest of the cohort is released."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from slidegate.pseudonym import load_or_create_key
from slidegate.publish.release import verify_release
from slidegate.publish.stores import LocalStore
from slidegate.settings import Settings
from slidegate.stages.context import key_path
from tests.faults.helpers import run_release, write_spec

pytestmark = pytest.mark.integration
RELEASE = "diskfull-1"
STAGING_SIZE = "768k"  # the five small slides (~40 KB staged each) fit, the big (~1.1 MB) not


@pytest.fixture(scope="module")
def mixed_cohort(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """6 small slides of 3 patients; the first is replaced by a big slide of the same format."""
    from slidegate.synth import generate_cohort

    small = generate_cohort(
        tmp_path_factory.mktemp("small"), slides=6, patients=3, seed=31, base_size=(384, 512)
    )
    big = generate_cohort(
        tmp_path_factory.mktemp("big"), slides=1, patients=1, seed=32, base_size=(3072, 4096)
    )
    first = small.slides_dir / pd.read_csv(small.cohort_csv)["slide"].iloc[0]
    (big_file,) = big.slides_dir.iterdir()
    assert big_file.suffix == first.suffix
    shutil.copyfile(big_file, first)
    return small, first.name


@pytest.fixture
def small_staging(tmp_path: Path) -> Iterator[Path]:
    """The work area, with its staging folder on a tmpfs of STAGING_SIZE."""
    work = tmp_path / "work"
    staging = work / "releases" / RELEASE / "staging"
    staging.mkdir(parents=True)
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={STAGING_SIZE}", "tmpfs", str(staging)],
        capture_output=True,
        check=False,
    )
    if mount.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root / CAP_SYS_ADMIN)")
    try:
        yield work
    finally:
        subprocess.run(["umount", "-l", str(staging)], check=False)


def test_staging_full_fails_the_slide_cleanly(
    mixed_cohort: Any, small_staging: Path, prefect_server: Any, tmp_path: Path
) -> None:
    cohort, big_name = mixed_cohort
    target = tmp_path / "target"
    spec = write_spec(cohort, str(target), "diskfull", release=RELEASE)
    # one worker: slides are staged one after the other, so only the big one meets a full disk
    result = run_release(spec, Settings(work_dir=small_staging, n_workers=1))
    assert result["published"] is True

    reports = json.loads((target / RELEASE / "reports" / "slides.json").read_text())
    full = [r for r in reports if r["reason"] == "staging area full (no space left on device)"]
    staged = {
        p.name: sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
        for p in (small_staging / "releases" / RELEASE / "staging").iterdir()
    }
    assert len(full) == 1, staged  # the big slide only
    big = full[0]["slide"]
    pseudonym = load_or_create_key(key_path(Settings(work_dir=small_staging), RELEASE))
    assert big == pseudonym("s", big_name)
    assert full[0]["status"] == "quarantined"
    # its partial output is gone from staging and nothing of it is published
    staging = small_staging / "releases" / RELEASE / "staging"
    assert not (staging / f"{big}.ome.zarr").exists()
    published = {p.name for p in (target / RELEASE / "slides").iterdir()}
    assert f"{big}.ome.zarr" not in published
    assert published == {f"{r['slide']}.ome.zarr" for r in reports if r["status"] == "approved"}
    assert verify_release(LocalStore(target), RELEASE) == []
