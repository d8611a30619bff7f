"""Source formats: detect, inventory (`read_facts`) and region access (`LevelReader`)."""

from slidegate.formats.detect import detect_format, read_facts
from slidegate.formats.reader import LevelReader

__all__ = ["LevelReader", "detect_format", "read_facts"]
