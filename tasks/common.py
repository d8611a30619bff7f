"""Shared task options: no result persistence, no input caching, retry transient I/O only."""

from __future__ import annotations

from typing import Any

from prefect.cache_policies import NO_CACHE

from slidegate.errors import TransientIOError


def retry_transient_only(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect retry condition: retry only storage/network hiccups, never bad input."""
    try:
        state.result()
    except TransientIOError:
        return True
    except BaseException:
        return False
    return False


#: keyword arguments for every slidegate task; results stay in memory (they carry private paths)
TASK_OPTIONS: dict[str, Any] = {
    "persist_result": False,
    "cache_policy": NO_CACHE,
    "retries": 3,
    "retry_delay_seconds": [2, 8, 30],
    "retry_condition_fn": retry_transient_only,
}


def run_name(stage: str) -> Any:
    """Task run names carry the pseudonym, never the source file name."""

    def name() -> str:
        from prefect.runtime import task_run

        params = task_run.parameters
        for key in ("report", "slide_report"):
            if key in params and hasattr(params[key], "pseudonym"):
                return f"{stage}-{params[key].pseudonym}"
        if "pseudonym" in params:
            return f"{stage}-{params['pseudonym']}"
        return stage

    return name
