"""`release_cohort` started without a task runner (the `on-demand` deployment, a call from
Python) builds its Dask task runner from the run's settings, not from the settings of the
process that imported `flows.release` (issue 14 item 6)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flows.release import release_cohort
from flows.runner import RunSettingsRunner
from slidegate.settings import Settings


def test_importing_the_flow_builds_no_dask_runner(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = release_cohort.task_runner
    assert isinstance(runner, RunSettingsRunner)
    # the environment set after the import is the one a run uses
    monkeypatch.setenv("SLIDEGATE_DASK_ADDRESS", "tcp://127.0.0.1:1")
    with runner.duplicate() as run_runner:  # what the flow engine enters per run
        assert run_runner.inner.address == "tcp://127.0.0.1:1"  # nothing connects yet
    monkeypatch.delenv("SLIDEGATE_DASK_ADDRESS")
    monkeypatch.setenv("SLIDEGATE_N_WORKERS", "3")
    with runner.duplicate() as run_runner:
        assert run_runner.inner.cluster_kwargs["n_workers"] == 3
    with runner.duplicate() as run_runner:  # settings the flow resolved win over the env
        run_runner.configure(Settings(n_workers=1, threads_per_worker=2))
        assert run_runner.inner.cluster_kwargs["threads_per_worker"] == 2
        assert run_runner.settings is not None and run_runner.settings.n_workers == 1


def _finished_plugin() -> Any:
    """A scheduler plugin recording the keys that reached memory on its scheduler."""
    from distributed.diagnostics.plugin import SchedulerPlugin

    class Finished(SchedulerPlugin):
        name = "slidegate-test-finished"

        def __init__(self) -> None:
            self.keys: list[str] = []

        def transition(self, key: Any, start: str, finish: str, *args: Any, **kw: Any) -> None:
            if finish == "memory":
                self.keys.append(str(key))

    return Finished()


@pytest.mark.integration
def test_flow_without_a_runner_uses_the_environments_scheduler(
    prefect_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deployment's process: SLIDEGATE_* in its environment, `release_cohort(spec=...)` called
    with no settings and no `with_options`. The slides run on the scheduler the environment
    names (a default LocalCluster would have been started at import before the fix)."""
    from distributed import LocalCluster

    from slidegate.synth import generate_cohort

    cohort = generate_cohort(tmp_path / "c", slides=2, patients=2, seed=4, base_size=(256, 256))
    spec = cohort.root / "release.yaml"
    spec.write_text(
        "release: run-settings\nsource: slides\ncohort: cohort.csv\n"
        f"profile: controlled-access\ntarget: {tmp_path / 'out'}\ncanaries: canaries.json\n"
    )
    with LocalCluster(
        n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        finished = _finished_plugin()
        cluster.scheduler.add_plugin(finished)
        monkeypatch.setenv("SLIDEGATE_DASK_ADDRESS", cluster.scheduler_address)
        monkeypatch.setenv("SLIDEGATE_WORK_DIR", str(tmp_path / "work"))
        result = release_cohort(spec=str(spec), dry_run=True)
    assert result["counts"]["approved"] + result["counts"]["withheld"] == 2
    slide_tasks = [k for k in finished.keys if "process-slide" in k or "process_slide" in k]
    assert len(slide_tasks) == 2, finished.keys
