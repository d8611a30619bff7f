"""Format handlers for sources that are not read through the TIFF family path.

A handler claims a file or folder (`sniff`), inventories it (`read_facts`) and opens a region
reader over its pyramid (`reader`). TIFF-family formats (SVS, generic TIFF and the tifffile
vendors) go through `slidegate.formats.detect`; everything else registers here. Adding a format
is one module plus one entry in `handlers()`; no other code changes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol

import numpy as np

from slidegate.models import AssociatedImage, LevelFacts, MetadataField, SlideFacts
from slidegate.sources import SourceRef, stream_sha256


class RegionReader(Protocol):
    """Context manager over one source: `read(level, y, x, h, w) -> (h, w, samples)` array."""

    def __enter__(self) -> RegionReader: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def read(self, level: LevelFacts, y: int, x: int, h: int, w: int) -> np.ndarray: ...


@dataclass(frozen=True)
class FormatHandler:
    name: str  # the `SlideFacts.format` value and the deid policy key, e.g. "dicom"
    sniff: Callable[[Path], bool]  # cheap: signature or layout check, never raises
    read_facts: Callable[[Path, str], SlideFacts]
    reader: Callable[[Path], RegionReader]


def handlers() -> list[FormatHandler]:
    """Non-TIFF handlers, asked in order before the TIFF family path."""
    found: list[FormatHandler] = []
    from slidegate.formats import czi, czi_reader, mrxs

    found.append(FormatHandler(czi.FORMAT, czi.sniff, czi.read_facts, czi_reader.CziReader))
    found.append(FormatHandler(mrxs.FORMAT, mrxs.sniff, mrxs.read_facts, mrxs.MrxsReader))
    from slidegate.formats import dicom

    found.append(dicom.HANDLER)
    return found


def handler_for(path: SourceRef) -> FormatHandler | None:
    """None for the TIFF family; an S3 object is always read as TIFF (other formats on S3 are
    fetched to a local scratch copy first: `slidegate.sources.slide_source`)."""
    if not isinstance(path, Path):
        return None
    for handler in handlers():
        if handler.sniff(path):
            return handler
    return None


def slide_facts(
    path: SourceRef,
    slide_id: str,
    fmt: str,
    *,
    mpp_yx: tuple[float | None, float | None],
    levels: Iterable[LevelFacts],
    associated: Iterable[AssociatedImage],
    fields: Iterable[MetadataField],
    digest: tuple[str, int] | None = None,
) -> SlideFacts:
    """The facts of one source as every format module reports them: where it is, its content
    hash (`digest`, else `content_sha256`) and what the module read."""
    sha, size = digest if digest is not None else content_sha256(path)
    return SlideFacts(
        slide_id=slide_id,
        source_path=str(path.resolve() if isinstance(path, Path) else path),
        format=fmt,
        size=size,
        sha256=sha,
        mpp_x=mpp_yx[1],
        mpp_y=mpp_yx[0],
        levels=tuple(levels),
        associated=tuple(associated),
        fields=tuple(fields),
    )


def content_sha256(path: SourceRef) -> tuple[str, int]:
    """sha256 and size of a file, or of a folder (relative names and bytes, sorted), or of an
    S3 object (streamed)."""
    if not isinstance(path, Path):
        return stream_sha256(path)
    digest = hashlib.sha256()
    size = 0
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        if file != path:
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with open(file, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
    return digest.hexdigest(), size
