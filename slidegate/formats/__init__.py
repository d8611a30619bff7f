"""Source formats: detect, inventory (`read_facts`) and region access (`LevelReader`).

A slide is a local path or an S3 object (`slidegate.sources.SourceRef`); S3 objects are read as
TIFF family with ranged GETs, other formats on S3 are fetched to scratch first."""

from pathlib import Path

from slidegate.formats import detect
from slidegate.formats.boundary import GuardedReader, format_boundary
from slidegate.formats.reader import LevelReader
from slidegate.formats.registry import RegionReader, handler_for
from slidegate.models import SlideFacts
from slidegate.sources import SourceRef


def _ref(path: SourceRef | str) -> SourceRef:
    return Path(path) if isinstance(path, str) else path


def detect_format(path: SourceRef | str) -> str:
    """The format name of a slide file or folder; Unsupported/CorruptSlideError otherwise."""
    ref = _ref(path)
    with format_boundary(ref):
        handler = handler_for(ref)
        return handler.name if handler else detect.detect_format(ref)


def read_facts(path: SourceRef | str, slide_id: str) -> SlideFacts:
    """Inventory one slide (file or folder): format, levels, images, every field, hash."""
    ref = _ref(path)
    with format_boundary(slide_id):
        handler = handler_for(ref)
        if handler is not None and isinstance(ref, Path):
            return handler.read_facts(ref, slide_id)
        return detect.read_facts(ref, slide_id)


def open_reader(path: SourceRef | str) -> RegionReader:
    """A region reader over the slide's pyramid, for whichever format it is; its open and reads
    raise only project errors on a damaged file (`slidegate.formats.boundary`)."""
    ref = _ref(path)
    with format_boundary(ref):
        handler = handler_for(ref)
        if handler is not None and isinstance(ref, Path):
            return GuardedReader(handler.reader(ref), ref)
    return GuardedReader(LevelReader(ref), ref)


__all__ = ["LevelReader", "RegionReader", "detect_format", "open_reader", "read_facts"]
