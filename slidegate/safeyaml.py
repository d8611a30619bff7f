"""A YAML loader for files a user (or an attacker) hands us: specs and policies.

It refuses anchors and aliases (the billion-laughs expansion needs them), keys given twice
(silently resolved by PyYAML otherwise), non-UTF-8 text and documents over a size cap, so a
hostile file is refused in milliseconds with bounded memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node

#: specs and policies are a few kB; 1 MiB leaves room for large deid policies
MAX_YAML_BYTES = 1 << 20
#: nesting depth at which a document is refused (PyYAML recurses per level)
MAX_DEPTH = 64


class UnsafeYamlError(ValueError):
    """The document uses a feature we refuse (alias, anchor, duplicate key, depth, size)."""


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader without anchors/aliases and with duplicate keys refused."""

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()
        line = event.start_mark.line + 1 if event.start_mark is not None else 0
        if isinstance(event, yaml.AliasEvent):
            raise UnsafeYamlError(
                f"line {line}: YAML aliases (*name) are not allowed; write the value out"
            )
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            raise UnsafeYamlError(
                f"line {line}: YAML anchors (&name) are not allowed; write the value out"
            )
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_DEPTH:
                raise UnsafeYamlError(f"line {line}: nesting too deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise UnsafeYamlError(
                    f"line {key_node.start_mark.line + 1}: YAML merge keys (<<) are not allowed"
                )
            key = self.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:
                raise ConstructorError(
                    None, None, "a mapping key must be a plain value", key_node.start_mark
                ) from None
            if key in seen:
                raise UnsafeYamlError(
                    f"line {key_node.start_mark.line + 1}: key '{key}' is given twice; keep one"
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def loads(text: str) -> Any:
    """Parse one YAML document strictly; raises UnsafeYamlError or yaml.YAMLError."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_YAML_BYTES:
        raise UnsafeYamlError(f"document is larger than {MAX_YAML_BYTES} bytes")
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except (UnsafeYamlError, yaml.YAMLError):
        raise
    except ValueError:  # e.g. an integer of more than 4300 digits
        raise UnsafeYamlError("a value cannot be read (a number too long?); shorten it") from None
    except RecursionError:
        raise UnsafeYamlError("nesting too deep") from None


def describe(exc: yaml.YAMLError) -> str:
    """One line for a YAML syntax error: where and what (PyYAML's text spans several lines)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or type(exc).__name__
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return " ".join(f"{where}{problem}".split())


def read_text(path: Path, limit: int = MAX_YAML_BYTES) -> str:
    """Read at most `limit` bytes of UTF-8 text; OSError, UnicodeDecodeError or
    UnsafeYamlError (too large) on a bad file. A FIFO or device is refused, not read."""
    if path.exists() and not path.is_file():
        raise UnsafeYamlError("not a regular file")
    with path.open("rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise UnsafeYamlError(f"file is larger than {limit} bytes")
    if b"\x00" in data:
        raise UnsafeYamlError("file holds NUL bytes; it is binary, not YAML text")
    return data.decode("utf-8")


def load_file(path: Path) -> Any:
    """read_text + loads."""
    return loads(read_text(path))
