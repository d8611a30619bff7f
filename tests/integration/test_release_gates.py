"""Flow-level gates: a blocking expectation withholds the release; a dry run publishes nothing."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from slidegate.errors import PolicyViolation
from slidegate.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def small_cohort(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from slidegate.synth import generate_cohort

    return generate_cohort(
        tmp_path_factory.mktemp("gates"), slides=2, patients=1, seed=5, base_size=(512, 768)
    )


def run(spec: Path, work: Path, address: str, dry_run: bool = False) -> dict[str, object]:
    from flows.release import dask_runner, release_cohort

    settings = Settings(work_dir=work, dask_address=address)
    return release_cohort.with_options(task_runner=dask_runner(settings))(
        spec=str(spec), dry_run=dry_run, settings=settings
    )


def write_spec(root: Path, name: str, cohort: str) -> Path:
    spec = root / f"{name}.yaml"
    spec.write_text(
        f"release: {name}\nsource: slides\ncohort: {cohort}\nprofile: restricted\n"
        f"target: out-{name}\ncanaries: canaries.json\n"
    )
    return spec


def test_blocking_expectation_withholds_the_release(
    small_cohort, cluster, prefect_server, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    table = pd.read_csv(small_cohort.cohort_csv, dtype=str)
    table.loc[0, "sex"] = "X"  # not in the policy's value set (severity: block)
    table.to_csv(small_cohort.root / "bad-cohort.csv", index=False)
    spec = write_spec(small_cohort.root, "blocked", "bad-cohort.csv")
    with pytest.raises(PolicyViolation) as err:
        run(spec, tmp_path / "work", cluster.scheduler_address)
    message = str(err.value)
    assert "withheld, nothing published" in message and "sex" in message
    assert "'X'" not in message and '"X"' not in message
    published = [p for p in (small_cohort.root / "out-blocked").rglob("*") if p.is_file()]
    assert published == []  # the writability probe may leave an empty folder, never a file
    report = tmp_path / "work" / "releases" / "blocked" / "reports" / "validation.json"
    assert report.is_file()


def test_dry_run_writes_plan_and_reports_but_publishes_nothing(
    small_cohort, cluster, prefect_server, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    spec = write_spec(small_cohort.root, "dry", "cohort.csv")
    result = run(spec, tmp_path / "work", cluster.scheduler_address, dry_run=True)
    assert result["published"] is False
    assert not (small_cohort.root / "out-dry").exists()
    work = tmp_path / "work" / "releases" / "dry"
    assert len(list((work / "plans").glob("s-*.json"))) == 2
    assert {p.name for p in (work / "reports").iterdir()} >= {
        "risk.json",
        "validation.json",
        "slides.json",
    }
