"""Dask cluster specs in deploy/dask/<name>.yaml: load one by name, build the task runner's
arguments from it, and render what it would submit (job script, DaskCluster manifest) without
starting a cluster. The cluster libraries (dask-jobqueue, dask-kubernetes) are imported only
when a spec of their kind is used."""

from __future__ import annotations

import copy
import importlib
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field

from slidegate.errors import SpecError
from slidegate.policy import StrictModel, load_yaml_model
from slidegate.settings import Settings

DEPLOY_DIR = Path(__file__).resolve().parent.parent / "deploy" / "dask"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
#: address a rendered job script would connect to (rendering needs one, nothing listens there)
RENDER_SCHEDULER = "tcp://scheduler.example:8786"


class ClusterSpec(StrictModel):
    """One deploy/dask/<name>.yaml."""

    cluster_class: str = Field(pattern=r"^[A-Za-z_][\w.]*\.[A-Za-z_]\w*$")
    kwargs: dict[str, Any] = Field(default_factory=dict)
    #: arguments of cluster.adapt(); none means a fixed size
    adapt: dict[str, Any] | None = None
    #: Kubernetes Secret whose keys become environment variables of scheduler and workers
    secret_env: str | None = None

    @property
    def kind(self) -> str:
        if self.cluster_class.startswith("dask_kubernetes"):
            return "kubernetes"
        if self.cluster_class.startswith("dask_jobqueue"):
            return "jobqueue"
        return "local"


def available(folder: Path = DEPLOY_DIR) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.yaml"))


def load_cluster_spec(name: str, folder: Path = DEPLOY_DIR) -> ClusterSpec:
    """A spec by name (deploy/dask/<name>.yaml) or by path to a YAML file."""
    path = Path(name)
    if not (name.endswith((".yaml", ".yml")) and path.is_file()):
        if not NAME_RE.match(name) or not (folder / f"{name}.yaml").is_file():
            raise SpecError(
                f"unknown Dask cluster spec {name!r}: use one of {available(folder)} "
                f"(files in {folder}) or a path to a spec YAML",
                reason="unknown cluster spec",
            )
        path = folder / f"{name}.yaml"
    return load_yaml_model(path, ClusterSpec)


def _import(dotted: str) -> Any:
    module, _, attr = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise SpecError(
            f"cluster class {dotted} is not importable ({type(exc).__name__}); install the "
            "package that provides it (dask-jobqueue, dask-kubernetes)",
            reason="cluster class missing",
        ) from None


def kubernetes_manifest(spec: ClusterSpec) -> dict[str, Any]:
    """The DaskCluster resource dask-kubernetes would create, plus the credentials Secret."""
    from dask_kubernetes.operator import make_cluster_spec

    manifest: dict[str, Any] = make_cluster_spec(**spec.kwargs)
    if spec.secret_env:
        env_from = [{"secretRef": {"name": spec.secret_env}}]
        for part in ("scheduler", "worker"):
            pod = manifest["spec"][part]["spec"]
            for container in pod["containers"]:
                container["envFrom"] = copy.deepcopy(env_from)
    return manifest


def runner_kwargs(spec: ClusterSpec) -> dict[str, Any]:
    """Keyword arguments for prefect_dask.DaskTaskRunner."""
    kwargs: dict[str, Any] = {"cluster_class": _import(spec.cluster_class)}
    if spec.kind == "kubernetes":
        kwargs["cluster_kwargs"] = {"custom_cluster_spec": kubernetes_manifest(spec)}
    else:
        kwargs["cluster_kwargs"] = dict(spec.kwargs)
    if spec.adapt:
        kwargs["adapt_kwargs"] = dict(spec.adapt)
    return kwargs


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def render(spec: ClusterSpec) -> str:
    """What the spec would submit, without a cluster: a batch job script (SLURM, PBS...), the
    DaskCluster YAML (Kubernetes), or the LocalCluster arguments."""
    if spec.kind == "kubernetes":
        return yaml.dump(kubernetes_manifest(spec), Dumper=_NoAliases, sort_keys=False)
    if spec.kind == "jobqueue":
        cluster_cls = _import(spec.cluster_class)
        job = cluster_cls.job_cls(scheduler=RENDER_SCHEDULER, name="slidegate", **spec.kwargs)
        return str(job.job_script())
    _import(spec.cluster_class)
    return yaml.safe_dump({"cluster_class": spec.cluster_class, **spec.kwargs}, sort_keys=False)


def with_spec_cluster(settings: Settings, spec_path: Path) -> Settings:
    """The release spec's `cluster:` applies when neither --dask-address nor --cluster (or
    SLIDEGATE_CLUSTER) chose one."""
    if settings.dask_address or settings.cluster:
        return settings
    from dataclasses import replace

    from slidegate import safeyaml

    try:
        data = safeyaml.load_file(Path(spec_path))
    except (OSError, ValueError, yaml.YAMLError):
        return settings  # the flow reports a bad spec with the full check
    name = data.get("cluster") if isinstance(data, dict) else None
    if not name:
        return settings
    return replace(settings, cluster=str(name))
