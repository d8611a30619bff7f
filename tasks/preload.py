"""Dask worker preload (`preload=["tasks.preload"]`): the slide stage's imports (prefect's
engine, zarr, tifffile, pydicom, the audit...) start in a background thread as soon as the
worker process is up, while the flow still prepares the release, instead of inside the first
slide task. The worker's start does not wait for them; a task that needs a module still being
imported waits on Python's import lock for that module only. Then the worker's per-slide child
process (slidegate.bounded: the slide's time and memory bound) is started, so it imports its
readers before the first slide arrives, not inside it."""

from __future__ import annotations

import importlib
import logging
import os
import threading
from typing import Any

MODULES = ("tasks.slide", "tasks.publish")
log = logging.getLogger("slidegate.preload")


def _warm() -> None:
    for name in MODULES:
        try:
            importlib.import_module(name)
        except Exception as exc:  # the task itself reports a broken install, with its reason
            log.warning("preload of %s failed (%s)", name, type(exc).__name__)
    try:  # the bound of this worker's environment; a run with another bound starts its own
        from slidegate.bounded import Bound, warm
        from slidegate.settings import Settings

        warm(Bound.of(Settings.from_env(os.environ)))
    except Exception as exc:
        log.warning("starting the slide child process failed (%s)", type(exc).__name__)


def dask_setup(worker: Any = None) -> None:
    threading.Thread(target=_warm, name="slidegate-preload", daemon=True).start()
