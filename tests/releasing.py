"""Run one release of a folder of slides the way the real-file and format tests need it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

COHORT_HEADER = "slide,patient,block,specimen,age,sex,diagnosis,site,collection_date\n"


def release_folder(
    tmp_path: Path,
    source: Path,
    release: str,
    rows: Sequence[str],
    *,
    canaries: Sequence[dict[str, str]] | None = None,
    profile: str = "restricted",
) -> tuple[dict[str, Any], Path]:
    """Release the slides of `source` listed by `rows` (cohort.csv lines, no header) with the
    restricted profile (or `profile`) into `tmp_path/out`, through an existing one-worker Dask
    scheduler (as `--dask-address` uses it: the flow must not start its own). Returns the
    flow's result and the release folder. Needs the `prefect_server` fixture."""
    from distributed import LocalCluster

    from flows.release import dask_runner, release_cohort
    from slidegate.settings import Settings

    (tmp_path / "cohort.csv").write_text(COHORT_HEADER + "".join(f"{r}\n" for r in rows))
    spec_text = (
        f"release: {release}\nsource: {source}\ncohort: cohort.csv\nprofile: {profile}\n"
        "target: out\n"
    )
    if canaries is not None:
        (tmp_path / "canaries.json").write_text(json.dumps({"canaries": list(canaries)}))
        spec_text += "canaries: canaries.json\n"
    spec = tmp_path / "spec.yaml"
    spec.write_text(spec_text)
    with LocalCluster(
        n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        settings = Settings(work_dir=tmp_path / "work", dask_address=cluster.scheduler_address)
        result: dict[str, Any] = release_cohort.with_options(task_runner=dask_runner(settings))(
            spec=str(spec), settings=settings
        )
    return result, tmp_path / "out" / release
