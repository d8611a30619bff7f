"""Ctrl-C (SIGINT) or SIGTERM during a release run: the flow run is cancelled, the workers are
stopped, and the command exits within `DEADLINE_S` seconds, saying how to resume.

The first signal raises KeyboardInterrupt in the flow (the Prefect engine unwinds, the Dask
task runner closes its cluster) and starts a watchdog: whatever is still running after
`GRACE_S` seconds (a worker busy in a codec, a cluster close waiting on it) is killed, and the
process exits; a process that unwound in time but is still shutting down at the deadline is
ended too. A second signal does that at once. The flow run is then set to Cancelled (the
engine itself would leave it Crashed, or Running when killed). Slides audited before the
interruption are recorded in the registry: the same command resumes from them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any
from uuid import UUID

#: the bound the issue sets, and the part of it the flow gets to unwind on its own
DEADLINE_S = 10.0
GRACE_S = 4.5
INTERRUPTED = 130


def resume_hint(argv: list[str]) -> str:
    cmd = " ".join(["slidegate", *argv]) if argv else "the same command"
    return (
        f"slidegate: interrupted; the flow run is cancelled and the workers stopped. Run "
        f"`{cmd}` again to resume (slides audited before are not converted again)"
    )


def _current_flow_run() -> UUID | None:
    try:
        from prefect.context import FlowRunContext

        ctx = FlowRunContext.get()
    except Exception:  # no Prefect context (not in a flow yet): nothing to cancel
        return None
    return ctx.flow_run.id if ctx is not None and ctx.flow_run is not None else None


def _running_flow_run(name: str) -> UUID | None:
    """The newest unfinished flow run called `name` (when the signal came outside the flow's
    own frames, e.g. while the engine was starting it)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterName,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    unfinished = [StateType.RUNNING, StateType.PENDING, StateType.PAUSED, StateType.CRASHED]
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                name=FlowRunFilterName(any_=[name]),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=unfinished)),
            ),
            sort=FlowRunSort.START_TIME_DESC,
            limit=1,
        )
    return runs[0].id if runs else None


def cancel_flow_run(run_id: UUID) -> bool:
    """Set the run to Cancelled (forced: the engine may have set Crashed meanwhile)."""
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelled

    with get_client(sync_client=True) as client:
        client.set_flow_run_state(
            run_id, Cancelled(message="interrupted by the steward (Ctrl-C)"), force=True
        )
    return True


def stop_children(keep: set[int]) -> int:
    """Kill this process' descendants (Dask nannies, workers, multiprocessing helpers) except
    the processes in `keep` (the local Prefect server) and theirs. Returns how many."""
    import psutil

    me = psutil.Process()
    spared = set(keep)
    for pid in keep:
        with contextlib.suppress(psutil.Error):
            spared |= {c.pid for c in psutil.Process(pid).children(recursive=True)}
    victims = [c for c in me.children(recursive=True) if c.pid not in spared]
    for proc in victims:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(victims, timeout=1)
    return len(victims)


class Interruptible:
    """Context manager around a release run in the main thread (see the module docstring)."""

    def __init__(self, release: str, argv: list[str], keep: set[int] | None = None) -> None:
        self.release = release
        self.hint = resume_hint(argv)
        self.keep = keep or set()
        self.fired = False
        self.run_id: UUID | None = None
        self._done = threading.Event()  # finish() started
        self._complete = threading.Event()  # finish() done
        self._finished = threading.Lock()
        self._previous: dict[int, Any] = {}
        self._started = 0.0

    def __enter__(self) -> Interruptible:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        if self.fired:
            self.finish()
            if exc is not None:
                exc.slidegate_reported = True  # type: ignore[attr-defined]  # main: no 2nd line

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.fired:  # a second Ctrl-C: stop now
            self._exit_now()
        self.fired = True
        self._started = time.monotonic()
        self.run_id = _current_flow_run()
        print(
            "slidegate: interrupt: cancelling the flow run and stopping the workers "
            f"(at most {DEADLINE_S:g} s; Ctrl-C again to stop at once)",
            file=sys.stderr,
            flush=True,
        )
        threading.Thread(target=self._watchdog, name="slidegate-interrupt", daemon=True).start()
        raise KeyboardInterrupt

    def _watchdog(self) -> None:
        if not self._done.wait(GRACE_S):
            self._exit_now()
        # unwound in time: the main thread (cancel, summary, the interpreter's own shutdown)
        # gets what is left of the deadline, then the process ends whatever it waits on
        time.sleep(max(0.0, self._started + DEADLINE_S - 0.7 - time.monotonic()))
        self._exit_now()

    def _exit_now(self) -> None:
        self.finish()  # or, when another thread is at it, wait for it within the deadline
        self._complete.wait(max(0.1, self._started + DEADLINE_S - 0.7 - time.monotonic()))
        sys.stderr.flush()
        os._exit(INTERRUPTED)

    def finish(self) -> None:
        """Cancel the run, stop what is left, say how to resume (once, whoever comes first),
        all within what is left of DEADLINE_S."""
        if not self._finished.acquire(blocking=False):
            return
        self._done.set()
        end = (self._started or time.monotonic()) + DEADLINE_S - 1.5

        def left() -> float:
            return max(0.2, min(2.5, end - time.monotonic()))

        _quietly(lambda: stop_children(self.keep), left())
        run_id = self.run_id or _quietly(
            lambda: _running_flow_run(f"release-{self.release}"), left()
        )
        if run_id is not None:
            _quietly(lambda: cancel_flow_run(run_id), left())
        print(self.hint, file=sys.stderr, flush=True)
        self._complete.set()


def _quietly(fn: Callable[[], Any], timeout: float) -> Any:
    """Best effort within the deadline: an unreachable API must not keep the process up."""
    result: list[Any] = []

    def run() -> None:
        with contextlib.suppress(Exception):
            result.append(fn())

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=timeout)
    return result[0] if result else None
