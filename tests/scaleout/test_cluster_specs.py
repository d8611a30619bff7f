"""deploy/dask/ specs: each loads by name and renders what it would submit, without a cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from flows.clusters import available, load_cluster_spec, render, runner_kwargs
from slidegate.errors import PolicyError, SpecError


def test_every_spec_is_there() -> None:
    assert {"local", "kubernetes", "slurm", "pbs"} <= set(available())


def test_slurm_job_script() -> None:
    script = render(load_cluster_spec("slurm"))
    assert script.startswith("#!/usr/bin/env bash")
    assert "#SBATCH -p batch" in script and "#SBATCH -t 10:00:00" in script
    assert "--nthreads 1" in script and "--nworkers 4" in script
    assert "/opt/slidegate/.venv/bin/python -m distributed.cli.dask_worker" in script
    assert "AWS_SECRET_ACCESS_KEY" not in script


def test_pbs_job_script() -> None:
    script = render(load_cluster_spec("pbs"))
    assert "#PBS -q workq" in script and "#PBS -l select=1:ncpus=4:mem=16GB" in script
    assert "--nworkers 4" in script


def test_kubernetes_daskcluster_manifest() -> None:
    manifest = yaml.safe_load(render(load_cluster_spec("kubernetes")))
    assert manifest["apiVersion"] == "kubernetes.dask.org/v1"
    assert manifest["kind"] == "DaskCluster"
    worker = manifest["spec"]["worker"]
    assert worker["replicas"] == 4
    container = worker["spec"]["containers"][0]
    assert container["envFrom"] == [{"secretRef": {"name": "slidegate-s3"}}]
    assert {"name": "SLIDEGATE_S3_ENDPOINT_URL", "value": "https://s3.example.org"} in container[
        "env"
    ]
    sched = manifest["spec"]["scheduler"]["spec"]["containers"][0]
    assert sched["envFrom"] == [{"secretRef": {"name": "slidegate-s3"}}]


def test_local_spec_and_runner_arguments() -> None:
    from distributed import LocalCluster

    spec = load_cluster_spec("local")
    assert yaml.safe_load(render(spec))["host"] == "127.0.0.1"
    kwargs = runner_kwargs(spec)
    assert kwargs["cluster_class"] is LocalCluster
    assert kwargs["cluster_kwargs"]["threads_per_worker"] == 1
    k8s = runner_kwargs(load_cluster_spec("kubernetes"))
    assert k8s["cluster_kwargs"]["custom_cluster_spec"]["kind"] == "DaskCluster"
    assert k8s["adapt_kwargs"] == {"minimum": 2, "maximum": 40}


def test_dask_runner_picks_the_named_spec() -> None:
    from flows.release import dask_runner
    from slidegate.settings import Settings

    runner = dask_runner(Settings(cluster="slurm"))
    assert runner.cluster_kwargs["queue"] == "batch"
    assert runner.adapt_kwargs == {"minimum_jobs": 0, "maximum_jobs": 25}


def test_unknown_or_bad_spec_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="unknown Dask cluster spec 'nope'"):
        load_cluster_spec("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("cluster_class: distributed.LocalCluster\nworkers: 3\n")
    with pytest.raises(PolicyError, match="workers"):
        load_cluster_spec(str(bad))


def test_cli_accepts_cluster_name() -> None:
    from flows.cli import _settings, build_parser

    args = build_parser().parse_args(["release", "spec.yaml", "--cluster", "pbs"])
    assert _settings(args).cluster == "pbs"


def test_release_spec_names_the_cluster(tmp_path: Path) -> None:
    from flows.clusters import with_spec_cluster
    from slidegate.settings import Settings
    from slidegate.spec import ReleaseSpec

    spec = tmp_path / "release.yaml"
    spec.write_text(
        "release: r1\nsource: s\ncohort: c.csv\nprofile: open-access\ntarget: t\ncluster: pbs\n"
    )
    assert ReleaseSpec.model_validate({**yaml.safe_load(spec.read_text())}).cluster == "pbs"
    assert with_spec_cluster(Settings(), spec).cluster == "pbs"
    assert with_spec_cluster(Settings(cluster="slurm"), spec).cluster == "slurm"  # flag wins
    assert with_spec_cluster(Settings(dask_address="tcp://x:1"), spec).cluster is None
