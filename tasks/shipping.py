"""The release context as a task argument: pickled once in the flow, unpickled once per worker
process, never walked by Prefect.

Prefect walks every task argument that is a collection, dataclass or model (looking for
futures) on the flow's side and again on the worker's; for the release context (policies,
settings) that walk was a third of the flow's time at 100 slides. Prefect's own `opaque` and
`quote` wrappers are tuples, which Dask unpacks on the way. `Shared` is neither: Prefect
passes it as it is, and Dask pickles it with its `__reduce__`: the bytes made once in the flow,
and on the worker a cache by their digest, so each worker unpickles a release's context once.
"""

from __future__ import annotations

import hashlib
import pickle
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from slidegate.spec import CohortSlide
from slidegate.stages.context import ReleaseContext

_CACHE: OrderedDict[str, ReleaseContext] = OrderedDict()
_LOCK = threading.Lock()
_KEEP = 4  # contexts kept per process (releases run one after another in a served worker)


class Shared:
    """The cohort-free part of a release context (no slides, no pseudonyms), shipped by
    reference to its pickled bytes."""

    __slots__ = ("_digest", "_payload", "_value")

    def __init__(self, ctx: ReleaseContext) -> None:
        self._value = replace(ctx, slides=(), pseudonyms={})
        self._payload = pickle.dumps(self._value, protocol=pickle.HIGHEST_PROTOCOL)
        self._digest = hashlib.sha256(self._payload).hexdigest()

    def __reduce__(self) -> tuple[Any, tuple[str, bytes]]:
        return (_revive, (self._digest, self._payload))

    @property
    def digest(self) -> str:
        return self._digest

    def context(self, slides: Sequence[CohortSlide], pseudonyms: Sequence[str]) -> ReleaseContext:
        """The context of a task: its own slides and their pseudonyms."""
        if len(slides) != len(pseudonyms):
            raise ValueError("one pseudonym per slide")
        return replace(
            self._value,
            slides=tuple(slides),
            pseudonyms={s.slide_id: p for s, p in zip(slides, pseudonyms, strict=True)},
        )

    def __repr__(self) -> str:  # never the context's contents (paths, settings)
        return f"Shared(release context {self._digest[:12]})"


def _revive(digest: str, payload: bytes) -> Shared:
    with _LOCK:
        value = _CACHE.get(digest)
        if value is not None:
            _CACHE.move_to_end(digest)
    if value is None:
        if hashlib.sha256(payload).hexdigest() != digest:
            raise ValueError("release context damaged in transit")
        value = pickle.loads(payload)
        with _LOCK:
            _CACHE[digest] = value
            while len(_CACHE) > _KEEP:
                _CACHE.popitem(last=False)
    obj = Shared.__new__(Shared)
    obj._digest, obj._payload, obj._value = digest, payload, value
    return obj


def revived() -> int:
    """How many release contexts this process holds (tests)."""
    return len(_CACHE)
