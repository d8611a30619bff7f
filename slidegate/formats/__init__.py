"""Source formats: detect, inventory (`read_facts`) and region access (`LevelReader`)."""

from pathlib import Path

from slidegate.formats import detect
from slidegate.formats.reader import LevelReader
from slidegate.formats.registry import RegionReader, handler_for
from slidegate.models import SlideFacts


def detect_format(path: Path) -> str:
    """The format name of a slide file or folder; Unsupported/CorruptSlideError otherwise."""
    handler = handler_for(Path(path))
    return handler.name if handler else detect.detect_format(Path(path))


def read_facts(path: Path, slide_id: str) -> SlideFacts:
    """Inventory one slide (file or folder): format, levels, images, every field, hash."""
    handler = handler_for(Path(path))
    return (
        handler.read_facts(Path(path), slide_id) if handler else detect.read_facts(path, slide_id)
    )


def open_reader(path: Path) -> RegionReader:
    """A region reader over the slide's pyramid, for whichever format it is."""
    handler = handler_for(Path(path))
    return handler.reader(Path(path)) if handler else LevelReader(Path(path))


__all__ = ["LevelReader", "RegionReader", "detect_format", "open_reader", "read_facts"]
