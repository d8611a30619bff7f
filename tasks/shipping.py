"""The release context as a task argument: pickled once in the flow, unpickled once per worker
process, never walked by Prefect.

Prefect walks every task argument that is a collection, dataclass or model (looking for
futures) on the flow's side and again on the worker's; for the release context (policies,
settings) that walk was a third of the flow's time at 100 slides. Prefect's own `opaque` and
`quote` wrappers are tuples, which Dask unpacks on the way. `Shared` is neither: Prefect
passes it as it is, and Dask pickles it with its `__reduce__`: the bytes made once in the flow,
and on the worker a cache by their digest, so each worker unpickles a release's context once.

By reference (`Shared.by_reference`, with `ContextPlugin` registered on the cluster): the bytes
travel once per worker, in a Dask worker plugin (also to workers that join later), and each
task carries only the digest. Otherwise they travel in every task: the flow process (which
hosts the LocalCluster scheduler) pickled ~48 KB more per submitted task.
"""

from __future__ import annotations

import hashlib
import pickle
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from slidegate.spec import CohortSlide
from slidegate.stages.context import ReleaseContext

_CACHE: OrderedDict[str, ReleaseContext] = OrderedDict()
_PINNED: dict[str, ReleaseContext] = {}  # installed by a ContextPlugin until its teardown
_LOCK = threading.Lock()
_KEEP = 4  # contexts kept per process (releases run one after another in a served worker)


class Shared:
    """The cohort-free part of a release context (no slides, no pseudonyms), shipped by
    reference to its pickled bytes."""

    __slots__ = ("_by_ref", "_digest", "_payload", "_value")
    _value: ReleaseContext | None  # None until a task asks (the scheduler unpickles it too)

    def __init__(self, ctx: ReleaseContext) -> None:
        self._value = replace(ctx, slides=(), pseudonyms={})
        self._payload = pickle.dumps(self._value, protocol=pickle.HIGHEST_PROTOCOL)
        self._digest = hashlib.sha256(self._payload).hexdigest()
        self._by_ref = False

    def __reduce__(self) -> tuple[Any, tuple[str, bytes]]:
        return (_revive, (self._digest, b"" if self._by_ref else self._payload))

    def by_reference(self) -> Shared:
        """The same context pickled as its digest only: every worker that runs its tasks must
        hold it (`ContextPlugin` registered on the cluster)."""
        other = _copy(self)
        other._by_ref = True
        return other

    def _resolved(self) -> ReleaseContext:
        if self._value is None:
            self._value = _load(self._digest, self._payload)
        return self._value

    def __dask_tokenize__(self) -> str:  # Dask's task key: the digest, not 3 pickles of it
        return self._digest

    @property
    def digest(self) -> str:
        return self._digest

    def context(self, slides: Sequence[CohortSlide], pseudonyms: Sequence[str]) -> ReleaseContext:
        """The context of a task: its own slides and their pseudonyms."""
        if len(slides) != len(pseudonyms):
            raise ValueError("one pseudonym per slide")
        return replace(
            self._resolved(),
            slides=tuple(slides),
            pseudonyms={s.slide_id: p for s, p in zip(slides, pseudonyms, strict=True)},
        )

    def __repr__(self) -> str:  # never the context's contents (paths, settings)
        return f"Shared(release context {self._digest[:12]})"


def _copy(shared: Shared) -> Shared:
    obj = Shared.__new__(Shared)
    obj._digest, obj._payload, obj._value = shared._digest, shared._payload, shared._value
    obj._by_ref = shared._by_ref
    return obj


def _load(digest: str, payload: bytes) -> ReleaseContext:
    with _LOCK:
        value = _PINNED.get(digest) or _CACHE.get(digest)
        if value is not None and digest in _CACHE:
            _CACHE.move_to_end(digest)
    if value is None:
        if not payload:
            raise RuntimeError(
                "the release context was shipped by reference but this worker has none: its "
                "ContextPlugin is not registered on the cluster"
            )
        if hashlib.sha256(payload).hexdigest() != digest:
            raise ValueError("release context damaged in transit")
        value = pickle.loads(payload)
        with _LOCK:
            _CACHE[digest] = value
            while len(_CACHE) > _KEEP:
                _CACHE.popitem(last=False)
    return value


def _revive(digest: str, payload: bytes) -> Shared:
    obj = Shared.__new__(Shared)
    # by value: loaded now (once per process, by digest); by reference: when a task asks, on
    # the worker (the scheduler unpickles task arguments too, and has no plugin)
    obj._digest, obj._payload = digest, payload
    obj._value = _load(digest, payload) if payload else None
    obj._by_ref = not payload
    return obj


class ContextPlugin(WorkerPlugin):
    """Puts a release context on every worker of the cluster, once (and on workers that join
    later); removed with the plugin (`Client.unregister_worker_plugin(plugin.name)`)."""

    def __init__(self, shared: Shared) -> None:
        self.name = f"slidegate-release-context-{shared.digest[:16]}"
        self.digest, self.payload = shared.digest, shared._payload

    def setup(self, worker: Any) -> None:
        value = _load(self.digest, self.payload)
        with _LOCK:
            _PINNED[self.digest] = value

    def teardown(self, worker: Any) -> None:
        with _LOCK:
            _PINNED.pop(self.digest, None)


def revived() -> int:
    """How many release contexts this process holds (tests)."""
    return len(_CACHE.keys() | _PINNED.keys())


def pinned() -> int:
    """How many release contexts plugins put in this process (tests)."""
    return len(_PINNED)
