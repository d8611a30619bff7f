"""Releases into one target, one at a time: a lock row per target in the registry.

The holder refreshes its row's heartbeat; a row whose holder is gone (its process on this host
no longer exists, or no heartbeat for `STALE_S`) is taken over, so a release killed with
SIGKILL does not block the next run."""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from types import TracebackType

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from slidegate.errors import SpecError
from slidegate.procs import pid_alive
from slidegate.registry.schema import target_locks
from slidegate.registry.store import Registry, now

STALE_S = 120
HEARTBEAT_S = 10


class TargetBusy(SpecError):
    """Another release holds the target."""


def _alive(host: str, pid: int) -> bool:
    if host != socket.gethostname():
        return True  # cannot tell: the heartbeat decides
    return pid_alive(pid)


class TargetLock:
    def __init__(self, registry: Registry, target: str, release: str) -> None:
        self.registry, self.target, self.release = registry, target, release
        self.holder = secrets.token_hex(16)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def try_acquire(self) -> dict[str, object] | None:
        """Take the lock; None when taken, else the current holder's row."""
        t = target_locks.c
        me = {
            "release": self.release,
            "holder": self.holder,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "acquired_at": now(),
            "heartbeat": int(time.time()),
        }
        try:
            with self.registry.engine.begin() as conn:
                q = select(target_locks).where(t.target == self.target)
                if conn.dialect.name == "postgresql":
                    q = q.with_for_update()
                row = conn.execute(q).first()
                if row is None:
                    conn.execute(insert(target_locks).values(target=self.target, **me))
                    return None
                held = dict(row._mapping)
                stale = time.time() - int(held["heartbeat"]) > STALE_S
                if not stale and _alive(str(held["host"]), int(held["pid"])):
                    return held
                conn.execute(update(target_locks).where(t.target == self.target).values(**me))
                return None
        except IntegrityError:  # another process inserted the row first
            return {"release": "another release", "host": "?", "pid": 0, "acquired_at": "now"}

    def acquire(self, wait_s: float = 0) -> TargetLock:
        deadline = time.monotonic() + wait_s
        while True:
            held = self.try_acquire()
            if held is None:
                break
            if time.monotonic() >= deadline:
                raise TargetBusy(
                    f"target {self.target} is being released into by release "
                    f"{held['release']!r} (process {held['pid']} on {held['host']}, since "
                    f"{held['acquired_at']}); releases into one target run one at a time: run "
                    "again when it has finished, or set SLIDEGATE_REGISTRY_LOCK_WAIT_S to wait",
                    reason="target busy",
                )
            time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))
        self._thread = threading.Thread(target=self._beat, daemon=True, name="registry-lock")
        self._thread.start()
        return self

    def _beat(self) -> None:
        t = target_locks.c
        while not self._stop.wait(HEARTBEAT_S):
            try:
                with self.registry.engine.begin() as conn:
                    conn.execute(
                        update(target_locks)
                        .where(t.target == self.target, t.holder == self.holder)
                        .values(heartbeat=int(time.time()))
                    )
            except Exception:  # a database hiccup: the next beat tries again
                continue

    def release_lock(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        t = target_locks.c
        with self.registry.engine.begin() as conn:
            conn.execute(
                delete(target_locks).where(t.target == self.target, t.holder == self.holder)
            )

    def __enter__(self) -> TargetLock:
        return self

    def __exit__(
        self,
        _t: type[BaseException] | None,
        _e: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.release_lock()
