"""deploy/prefect.yaml on a real Prefect server with a process work pool and a real worker:
the scheduled incremental export, triggered through the API, publishes only new slides."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

pytestmark = pytest.mark.integration
POOL = "slidegate-test"
COLLECTION = "crc-collection"


@pytest.fixture(scope="module")
def served(prefect_server, tmp_path_factory):  # type: ignore[no-untyped-def]
    """Work pool + deployments + a worker subprocess, as `slidegate serve` makes them."""
    from flows.serve import deploy, deploy_env, ensure_pool, start_worker
    from flows.server import stop_pid
    from slidegate.synth import generate_cohort

    tmp = tmp_path_factory.mktemp("served")
    cohort = generate_cohort(tmp / "cohort", slides=6, patients=3, seed=21, base_size=(512, 768))
    full = pd.read_csv(cohort.cohort_csv, dtype=str)
    full.iloc[:3].to_csv(cohort.root / "collection.csv", index=False)  # the first arrivals
    spec = cohort.root / "collection.yaml"
    spec.write_text(
        f"collection: {COLLECTION}\nsource: slides\ncohort: collection.csv\n"
        f"profile: restricted\ntarget: {tmp / 'target'}\ncanaries: canaries.json\n"
    )
    env = dict(os.environ)
    env["PREFECT_WORKER_QUERY_SECONDS"] = "2"
    deploy_env(env, work_dir=tmp / "work", collection=spec, pool=POOL)
    ensure_pool(POOL, env)
    deploy(env)
    pid, started = start_worker(POOL, env, tmp)
    assert started
    yield {"tmp": tmp, "cohort": cohort, "full": full, "spec": spec, "work": tmp / "work"}
    stop_pid(pid)


def trigger(name: str, **parameters: Any) -> Any:
    from prefect.deployments import run_deployment

    return run_deployment(name, parameters=parameters or None, timeout=400, poll_interval=2)


def artifact_keys(flow_run_id: Any) -> set[str]:
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key for a in arts if a.key}


def child_runs(parent_id: Any) -> list[Any]:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent_id])
            )
        )


def manifest_slides(target: Path, release: str) -> set[str]:
    manifest = json.loads((target / release / "manifest.json").read_text())
    return {s["slide"] for s in manifest["info"]["slides"]}


def test_deployments_are_registered_with_a_cron_schedule(served) -> None:  # type: ignore[no-untyped-def]
    from prefect import get_client

    with get_client(sync_client=True) as client:
        export = client.read_deployment_by_name("export-collection/incremental-export")
        on_demand = client.read_deployment_by_name("release-cohort/on-demand")
        schedules = client.read_deployment_schedules(export.id)
    assert export.work_pool_name == POOL and on_demand.work_pool_name == POOL
    assert [s.schedule.cron for s in schedules] == ["0 2 * * *"]  # type: ignore[union-attr]
    assert export.parameters["collection"] == str(served["spec"].resolve())


def test_triggered_exports_publish_only_new_slides(served) -> None:  # type: ignore[no-untyped-def]
    from slidegate.pseudonym import load_or_create_key

    target = served["tmp"] / "target"
    first = trigger("export-collection/incremental-export")
    assert first.state.is_completed(), first.state
    assert first.name == f"export-{COLLECTION}"
    assert f"{COLLECTION}-export" in artifact_keys(first.id)
    [release_run] = child_runs(first.id)
    assert release_run.name.startswith(f"release-{COLLECTION}-")
    assert {f"collection:{COLLECTION}", "profile:restricted"} <= set(release_run.tags)
    assert {f"collection:{COLLECTION}", "profile:restricted"} <= set(first.tags)
    keys = artifact_keys(release_run.id)
    release1 = release_run.name.removeprefix("release-")
    slug = release1.replace(".", "-")
    stages = ("summary", "slides", "progress", "inventory", "deid", "validation", "dask")
    assert {f"{slug}-{what}" for what in stages} <= keys
    assert "profile:restricted" in {t for t in release_run.tags}
    key = load_or_create_key(served["work"] / "releases" / release1 / "private" / "key")
    full = served["full"]
    first_ids = {key("s", s) for s in full["slide"].iloc[:3]}
    out1 = manifest_slides(target, release1)
    assert out1 and out1 <= first_ids

    again = trigger("export-collection/incremental-export")  # nothing new yet
    assert again.state.is_completed() and child_runs(again.id) == []

    full.to_csv(served["cohort"].root / "collection.csv", index=False)  # three more arrive
    second = trigger("export-collection/incremental-export")
    assert second.state.is_completed(), second.state
    [run2] = child_runs(second.id)
    release2 = run2.name.removeprefix("release-")
    assert release2 != release1
    new_ids = {key("s", s) for s in full["slide"].iloc[3:]}
    out2 = manifest_slides(target, release2)
    assert out2 and out2 <= new_ids | (first_ids - out1)  # never one published before
    assert not out2 & out1
    ledger = json.loads((served["work"] / "collections" / COLLECTION / "ledger.json").read_text())
    assert [e["release"] for e in ledger["releases"]] == [release1, release2]


def test_on_demand_release_deployment_takes_a_spec(served) -> None:  # type: ignore[no-untyped-def]
    spec = served["cohort"].root / "on-demand.yaml"
    spec.write_text(
        "release: on-demand-1\nsource: slides\ncohort: cohort.csv\nprofile: restricted\n"
        f"target: {served['tmp'] / 'target'}\n"
    )
    run = trigger("release-cohort/on-demand", spec=str(spec), dry_run=True)
    assert run.state.is_completed(), run.state
    assert run.name == "release-on-demand-1"
    assert "on-demand-1-slides" in artifact_keys(run.id)
