"""The release flow's Dask task runner, built from the run's settings.

`dask_runner(settings)` is the runner of given settings (the CLI and the export flow pass it
with `with_options`). `RunSettingsRunner` is `release_cohort`'s own default: a flow started any
other way (the `on-demand` deployment, `release_cohort(spec=...)` in Python) gets the Dask
runner of *its* settings, the ones the flow resolves from its parameters and its environment
(`SLIDEGATE_DASK_ADDRESS`, `SLIDEGATE_CLUSTER`, `SLIDEGATE_N_WORKERS`..., the spec's
`cluster:`), when the run starts, never the settings of the process that imported the module.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prefect.context import FlowRunContext
from prefect.futures import PrefectFuture
from prefect.task_runners import TaskRunner
from prefect_dask import DaskTaskRunner
from prefect_dask.task_runners import PrefectDaskFuture

from slidegate.settings import Settings
from tasks.shipping import ContextPlugin, Shared

log = logging.getLogger("slidegate.flow")


def dask_runner(settings: Settings) -> Any:
    # typed Any: prefect_dask's DaskTaskRunner is not declared as TaskRunner[PrefectFuture]
    """An existing scheduler when one is given, else a LocalCluster bound to loopback."""
    if settings.dask_address:
        return DaskTaskRunner(address=settings.dask_address)
    if settings.cluster:  # a named spec in deploy/dask/ (local, kubernetes, slurm, pbs...)
        from flows.clusters import load_cluster_spec, runner_kwargs

        return DaskTaskRunner(**runner_kwargs(load_cluster_spec(settings.cluster)))
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": settings.n_workers,
            "threads_per_worker": settings.threads_per_worker,
            "processes": True,
            "host": "127.0.0.1",
            "dashboard_address": "127.0.0.1:0",
            "preload": ["tasks.preload"],  # the slide stage imported while the flow prepares
        }
    )


class RunSettingsRunner(TaskRunner[PrefectFuture[Any]]):
    """A task runner that becomes `dask_runner(settings)` of the run: the flow calls
    `use_run_settings(settings)` once it has resolved them; a task submitted before that
    (none in slidegate's flows) gets the environment's settings. Entering it starts nothing;
    the cluster starts with the first use of the Dask client, as prefect-dask's does."""

    def __init__(self) -> None:
        super().__init__()
        self._inner: Any = None
        self.settings: Settings | None = None

    @property
    def name(self) -> str:
        return "dask"

    def duplicate(self) -> RunSettingsRunner:
        return type(self)()

    def configure(self, settings: Settings) -> None:
        """Build the Dask runner of `settings` (once per run; later calls keep the first)."""
        if self._inner is not None:
            return
        if not self._started:
            raise RuntimeError("the task runner must be started before it is configured")
        self.settings = settings
        self._inner = dask_runner(settings).__enter__()

    @property
    def inner(self) -> Any:
        """The run's DaskTaskRunner (the environment's settings if none were given)."""
        if self._inner is None:
            self.configure(Settings.from_env(os.environ))
        return self._inner

    @property
    def client(self) -> Any:  # flows/artifacts.py links the dashboard of the run's cluster
        return self.inner.client

    def submit(
        self,
        task: Any,
        parameters: dict[str, Any],
        wait_for: Iterable[Any] | None = None,
        dependencies: dict[str, set[Any]] | None = None,
    ) -> PrefectFuture[Any]:
        future: PrefectDaskFuture[Any] = self.inner.submit(
            task, parameters, wait_for=wait_for, dependencies=dependencies
        )
        return future

    def __exit__(self, *args: Any) -> None:
        inner, self._inner = self._inner, None
        try:
            if inner is not None:
                inner.__exit__(*args)
        finally:
            super().__exit__(*args)


def use_run_settings(settings: Settings) -> None:
    """In a flow run whose task runner is a `RunSettingsRunner`: build it from `settings`.
    A runner given with `with_options` (the CLI's, the export flow's) is left as it is."""
    ctx = FlowRunContext.get()
    runner = getattr(ctx, "task_runner", None) if ctx else None
    if isinstance(runner, RunSettingsRunner):
        runner.configure(settings)


def start_cluster_early() -> threading.Thread | None:
    """Start the flow run's Dask cluster (or connect to its scheduler) in a background thread:
    the worker processes start and import the slide stage (tasks/preload.py) while the flow
    prepares the release. Join the thread before anything else uses the task runner's client
    (prefect-dask creates it on first use, without a lock)."""
    ctx = FlowRunContext.get()
    runner = getattr(ctx, "task_runner", None) if ctx else None
    if not isinstance(getattr(type(runner), "client", None), property):
        return None
    thread = threading.Thread(
        target=contextvars.copy_context().run,
        args=(_connect, runner),
        name="slidegate-cluster-start",
        daemon=True,
    )
    thread.start()
    return thread


def _connect(runner: Any) -> None:
    with contextlib.suppress(Exception):  # the first submit raises the cluster's own error
        _ = runner.client


@contextlib.contextmanager
def shipping() -> Iterator[Callable[[Shared], Shared]]:
    """`ship(shared)` in this block: the release context goes to the run's workers once, in a
    Dask worker plugin, and the tasks carry only its digest (tasks/shipping.py). Without a
    Dask client (no cluster) or if the plugin cannot be registered, tasks carry the bytes as
    before. The plugins are removed at the end (a long-lived cluster keeps no old context)."""
    ctx = FlowRunContext.get()
    runner = getattr(ctx, "task_runner", None) if ctx else None
    client: Any = None
    if isinstance(getattr(type(runner), "client", None), property):
        with contextlib.suppress(Exception):
            client = runner.client  # type: ignore[union-attr]
    names: list[str] = []

    def ship(shared: Shared) -> Shared:
        if client is None:
            return shared
        plugin = ContextPlugin(shared)
        if plugin.name not in names:
            try:
                client.register_plugin(plugin, name=plugin.name)
            except Exception as exc:  # e.g. a scheduler that refuses plugins: bytes per task
                log.warning("release context sent with each task (%s)", type(exc).__name__)
                return shared
            names.append(plugin.name)
        return shared.by_reference()

    try:
        yield ship
    finally:
        for name in names:
            with contextlib.suppress(Exception):
                client.unregister_worker_plugin(name)
