"""The format boundary: whatever a parser (tifffile, pydicom, czifile, imagecodecs, zlib,
struct, numpy) raises on a damaged file leaves `slidegate.formats` as a project error.

The message names the slide by the name the caller used and the parser's exception class,
never the parser's message (pydicom and tifffile quote the bytes they failed on, which can be
an identifying value). A real I/O error (an `OSError` with an errno: a missing file, a
permission problem, a network share gone) is not a damaged slide and passes unchanged."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

import numpy as np

from slidegate.errors import CorruptSlideError, SlidegateError
from slidegate.formats.registry import RegionReader
from slidegate.models import LevelFacts

# tifffile logs tag values it cannot decode (an NDPI scanner serial number, a description);
# its records stay with the handlers slidegate attaches and never reach the root logger
logging.getLogger("tifffile").propagate = False


def corrupt(name: object, exc: BaseException) -> CorruptSlideError:
    """The project error for a parser failure `exc` while reading slide `name`."""
    kind = type(exc).__name__
    if isinstance(exc, MemoryError):
        return CorruptSlideError(
            f"slide {name}: reading it needs more memory than the file can justify (it claims "
            "absurd dimensions or counts); the file is damaged, restore it from the scanner "
            "archive",
            reason="corrupt: allocation too large",
        )
    if isinstance(exc, RecursionError):
        return CorruptSlideError(
            f"slide {name}: its structure nests without end; the file is damaged, restore it "
            "from the scanner archive",
            reason="corrupt: endless nesting",
        )
    return CorruptSlideError(
        f"slide {name} cannot be read: the file is damaged or truncated (the parser stopped "
        f"with {kind}); restore it from the scanner archive or remove it from the cohort",
        reason=f"corrupt: unreadable ({kind})",
    )


@contextmanager
def format_boundary(name: object) -> Iterator[None]:
    """Re-raise any non-project error from the block as a CorruptSlideError naming `name`."""
    try:
        yield
    except SlidegateError:
        raise
    except OSError as exc:
        if exc.errno is not None:  # the file system or network, not the file's content
            raise
        raise corrupt(name, exc) from None
    except (Exception, MemoryError, RecursionError) as exc:
        raise corrupt(name, exc) from None


class GuardedReader:
    """A region reader whose open and reads go through the format boundary."""

    def __init__(self, inner: RegionReader, name: object) -> None:
        self._inner = inner
        self._name = name

    def __enter__(self) -> GuardedReader:
        with format_boundary(self._name):
            self._inner.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with format_boundary(self._name):
            self._inner.__exit__(exc_type, exc, tb)

    def read(self, level: LevelFacts, y: int, x: int, h: int, w: int) -> np.ndarray:
        if h <= 0 or w <= 0 or y < 0 or x < 0 or y + h > level.height or x + w > level.width:
            return self._inner.read(level, y, x, h, w)  # a caller's mistake, not the file's
        with format_boundary(self._name):
            return self._inner.read(level, y, x, h, w)
