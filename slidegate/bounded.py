"""A per-slide time and memory bound that interrupts: the slide's read / convert work runs in
a child process with an address-space limit (RLIMIT_AS) and is killed at its deadline.

The child is a plain `subprocess.Popen` of this interpreter (Dask worker processes are
daemonic, so `multiprocessing` cannot fork children from them), started once and reused for
the next slide of the same worker: per call the cost is one pickle each way over a pipe. A
child that was killed, crashed or ran out of memory is replaced on the next call.

Calls are `(function, args)` pickled by reference, so the function must be importable (a
module-level function). Errors cross the boundary as plain (module, class name, message,
reason, errno) tuples and are rebuilt here as project errors: a project error as itself, an
`OSError` with an errno (disk full) as an `OSError`, anything else (a parser's own class) as a
`CorruptSlideError` that names only the class, never its message. The child never sees
`os.environ` choices: its bounds come from the `Settings` the caller passes in."""

from __future__ import annotations

import contextlib
import importlib
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any, TypeVar

from slidegate.errors import CorruptSlideError, SlidegateError, SlideLimitError
from slidegate.settings import Settings

T = TypeVar("T")
_HEAD = struct.Struct("<Q")
_BOOT = "from slidegate.bounded import child_main; child_main()"
#: modules the child imports while the parent goes on, so a slide's first call is not slower
WARM = ("slidegate.formats", "slidegate.convert.ome_zarr", "slidegate.stages.slide")


@dataclass(frozen=True)
class Bound:
    seconds: float  # wall clock per call
    memory_mb: int  # address space of the child; 0: no limit
    isolated: bool = True  # False: run in this process (no bound; for debugging only)

    @classmethod
    def of(cls, settings: Settings) -> Bound:
        return cls(
            float(settings.slide_timeout_s),
            settings.slide_memory_mb,
            settings.slide_isolation != "off",
        )


class _Timeout(Exception):
    pass


class _Died(Exception):
    pass


def _send(stream: IO[bytes], obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEAD.pack(len(data)) + data)
    stream.flush()


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise _Timeout
        chunk = os.read(fd, min(n - len(buf), 1 << 20))
        if not chunk:
            raise _Died
        buf += chunk
    return bytes(buf)


def _recv(fd: int, deadline: float | None) -> Any:
    (size,) = _HEAD.unpack(_read_exact(fd, _HEAD.size, deadline))
    return pickle.loads(_read_exact(fd, size, deadline))


class _Child:
    """One reusable child process; `call` runs one function in it within a deadline."""

    def __init__(self, memory_mb: int, warm: tuple[str, ...]) -> None:
        self.memory_mb = memory_mb
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _BOOT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in, self._out = self.proc.stdin, self.proc.stdout.fileno()
        _send(self._in, (list(sys.path), memory_mb << 20, os.getpid(), warm))

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...], deadline: float) -> Any:
        try:
            _send(self._in, (fn, args))
        except (BrokenPipeError, OSError) as exc:
            raise _Died from exc
        return _recv(self._out, deadline)

    def kill(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            return self.proc.wait(timeout=10)
        finally:
            self._in.close()
            if self.proc.stdout is not None:
                self.proc.stdout.close()


class BoundedRunner:
    """Idle children of this process, one taken per call (threads of one worker each get
    their own), returned after a clean call."""

    def __init__(self, warm: tuple[str, ...] = WARM) -> None:
        self._idle: list[_Child] = []
        self._lock = threading.Lock()
        self._warm = warm

    def _take(self, memory_mb: int) -> _Child:
        with self._lock:
            while self._idle:
                child = self._idle.pop()
                if child.memory_mb == memory_mb and child.proc.poll() is None:
                    return child
                child.kill()
        return _Child(memory_mb, self._warm)

    def _give(self, child: _Child) -> None:
        with self._lock:
            self._idle.append(child)

    def warm(self, bound: Bound) -> None:
        """Start an idle child now (it imports the readers while the caller works)."""
        if bound.isolated:
            self._give(self._take(bound.memory_mb))

    def run(self, bound: Bound, name: str, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in a child within `bound`; a project error (or OSError) on failure."""
        if not bound.isolated:
            return fn(*args)
        child = self._take(bound.memory_mb)
        try:
            reply = child.call(fn, args, time.monotonic() + bound.seconds)
        except _Timeout:
            child.kill()
            raise SlideLimitError(
                f"slide {name}: reading or converting it took longer than the bound of "
                f"{bound.seconds:g} s and was stopped; the file may be damaged (check it with a "
                "viewer), or raise SLIDEGATE_SLIDE_TIMEOUT_S for very large slides",
                reason=f"limit: time bound exceeded ({bound.seconds:g} s per slide)",
            ) from None
        except _Died:
            code = child.kill()
            raise _died(name, code, bound) from None
        except BaseException:
            child.kill()
            raise
        status, payload = reply
        if status == "ok":
            self._give(child)
            return payload
        if payload[1] == "MemoryError" or payload[4] == "memory":
            child.kill()  # its heap may be in any state
        else:
            self._give(child)
        raise rebuild(payload, name, bound)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for child in idle:
            child.kill()


def _died(name: str, code: int | None, bound: Bound) -> SlidegateError:
    if code is not None and code < 0 and -code == signal.SIGKILL and bound.memory_mb:
        return SlideLimitError(
            f"slide {name}: its reader was killed (out of memory?) while reading it; the file "
            f"may be damaged, or raise SLIDEGATE_SLIDE_MEMORY_MB (now {bound.memory_mb})",
            reason="limit: reader killed",
        )
    what = f"signal {-code}" if code is not None and code < 0 else f"exit status {code}"
    return CorruptSlideError(
        f"slide {name}: its reader crashed ({what}) while reading it; the file is damaged or "
        "triggers a decoder bug: check it with a viewer, restore it from the scanner archive",
        reason="corrupt: reader crashed",
    )


def describe(exc: BaseException) -> tuple[str, str, str, str | None, int | str | None]:
    """(module, class name, message, reason, errno | "memory") of an exception, as data. A
    foreign exception's message is dropped: parsers quote the bytes they failed on."""
    kind, module = type(exc).__name__, type(exc).__module__
    if _out_of_memory(exc):  # also a project error raised while handling a MemoryError
        return module, kind, "", None, "memory"
    if isinstance(exc, SlidegateError):
        return module, kind, str(exc), exc.reason, None
    if isinstance(exc, OSError) and exc.errno is not None:
        return module, "OSError", exc.strerror or "", None, exc.errno
    return module, kind, "", None, None


def _out_of_memory(exc: BaseException) -> bool:
    """A MemoryError, or an error raised while handling one (readers wrap decoder failures,
    `raise ... from None` keeps `__context__`): under RLIMIT_AS that is the bound."""
    seen: BaseException | None = exc
    for _ in range(16):
        if seen is None:
            return False
        if isinstance(seen, MemoryError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def rebuild(
    payload: tuple[str, str, str, str | None, int | str | None], name: str, bound: Bound
) -> BaseException:
    """The parent-side exception for a child's `describe` tuple."""
    module, kind, message, reason, extra = payload
    if isinstance(extra, int):
        return OSError(extra, message)
    if extra == "memory":
        return SlideLimitError(
            f"slide {name}: reading or converting it needs more than the bound of "
            f"{bound.memory_mb} MiB and was stopped; the file may be damaged (absurd "
            "dimensions), or raise SLIDEGATE_SLIDE_MEMORY_MB for very large slides",
            reason=f"limit: memory bound exceeded ({bound.memory_mb} MiB per slide)",
        )
    if module.startswith("slidegate.") or module == "slidegate":
        cls = getattr(importlib.import_module(module), kind, None)
        if isinstance(cls, type) and issubclass(cls, SlidegateError):
            try:
                return cls(message, reason=reason)
            except TypeError:  # a class with its own signature: the base keeps the text
                return SlidegateError(message, reason=reason)
    return CorruptSlideError(
        f"slide {name}: reading or converting it failed ({kind}); the file may be damaged: "
        "check it with a viewer",
        reason=f"corrupt: conversion failed ({kind})",
    )


_RUNNER = BoundedRunner()


def run_bounded(bound: Bound, name: str, fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` within `bound` in this process's reusable child (see `BoundedRunner.run`)."""
    return _RUNNER.run(bound, name, fn, *args)


def warm(bound: Bound) -> None:
    _RUNNER.warm(bound)


def _watch_parent(parent: int) -> None:
    """The child ends when its parent is gone (a killed worker leaves no runaway reader)."""
    while True:
        time.sleep(0.2)
        if os.getppid() != parent:
            os._exit(3)


def _few_arenas() -> None:
    """glibc reserves 64 MiB of address space per malloc arena, one per thread that allocates
    (up to 8 per core): under RLIMIT_AS that reserve, not the slide, would hit the bound."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name is None:
        return
    with contextlib.suppress(OSError, AttributeError):  # not glibc
        ctypes.CDLL(name).mallopt(-8, 2)  # M_ARENA_MAX = 2


def child_main() -> None:
    """The child: set the bound, import the readers, then run calls until stdin closes."""
    import resource

    proto_in = sys.stdin.buffer
    proto_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a library's print goes to stderr, never into the protocol
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; Ctrl-C reaches it
    paths, limit, parent, warm = _recv(proto_in.fileno(), None)
    sys.path[:0] = [p for p in paths if p not in sys.path]
    if limit:
        _few_arenas()
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    for module in warm:
        importlib.import_module(module)
    while True:
        try:
            fn, args = _recv(proto_in.fileno(), None)
        except _Died:
            return
        try:
            reply: tuple[str, Any] = ("ok", fn(*args))
        except BaseException as exc:
            reply = ("err", describe(exc))
        try:
            _send(proto_out, reply)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            _send(proto_out, ("err", describe(exc)))
