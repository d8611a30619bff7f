"""Which values the leak scan looks for: every metadata value the plan drops or coarsens.

A field the plan does not mention counts as dropped (default-deny). Values the output carries
legitimately (whitelisted attributes, level shapes, pixel sizes) and values too short to search
without false alarms are not searched; they are counted per field name so the audit report can
say how many values were not scanned. The needles are PHI: keep them private, never log them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from slidegate.models import DeidPlan, SlideFacts

MIN_LENGTH = 4
MIN_NUMERIC_LENGTH = 6
#: a longer value (an XML document, a long free text) is searched by its first characters:
#: any copy of the whole value contains them, and the scan pattern stays small
MAX_NEEDLE_CHARS = 512

#: words that appear in every OME-Zarr output (codec, dtype, axis names...): never a needle
GENERIC_WORDS = frozenset(
    {
        "none",
        "true",
        "false",
        "null",
        "jpeg",
        "jpeg2000",
        "jpeg 2000",
        "jp2k",
        "deflate",
        "zstd",
        "blosc",
        "bytes",
        "uint8",
        "uint16",
        "float32",
        "little",
        "image",
        "scale",
        "space",
        "channel",
        "micrometer",
        "default",
        "regular",
        "chunk_key_encoding",
        "sharding_indexed",
    }
)

#: keys and names the Zarr/NGFF writer itself puts in every zarr.json: a dropped value that is a
#: part of one of these (e.g. a unit "Level" inside "clevel") cannot be told apart from the
#: output's own structure, so it is counted as skipped, not searched
ZARR_VOCABULARY = frozenset(
    {
        "zarr_format",
        "node_type",
        "array",
        "group",
        "attributes",
        "shape",
        "data_type",
        "chunk_grid",
        "chunk_shape",
        "configuration",
        "chunk_key_encoding",
        "separator",
        "fill_value",
        "codecs",
        "dimension_names",
        "storage_transformers",
        "sharding_indexed",
        "index_codecs",
        "index_location",
        "start",
        "end",
        "crc32c",
        "transpose",
        "order",
        "endian",
        "little",
        "big",
        "blosc",
        "cname",
        "clevel",
        "shuffle",
        "bitshuffle",
        "noshuffle",
        "typesize",
        "blocksize",
        "zstd",
        "lz4",
        "imagecodecs_jpeg",
        "imagecodecs_jpeg2k",
        "jpeg",
        "quality",
        "encoded_color_space",
        "numcodecs",
        "tables",
        "colorspace",
        "level",
        "ome",
        "omero",
        "channels",
        "label",
        "color",
        "active",
        "coefficient",
        "family",
        "linear",
        "inverted",
        "window",
        "min",
        "max",
        "rdefs",
        "defaultt",
        "defaultz",
        "model",
        "greyscale",
        "red",
        "green",
        "blue",
        "description",
        "method",
        "native",
        "mean",
        "version",
        "multiscales",
        "datasets",
        "path",
        "coordinatetransformations",
        "scale",
        "axes",
        "name",
        "type",
        "space",
        "channel",
        "unit",
        "micrometer",
        "slidegate",
        "pseudonym",
        "format",
        "metadata",
    }
)

#: date-like parts of a longer value, searched on their own as well
_DATE_RE = re.compile(
    r"\b(\d{4}[-:/.]\d{1,2}[-:/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})\b",
)
_NUMERIC_RE = re.compile(r"^(?=.*\d)[\d.,:/ eE+-]*$")


@dataclass(frozen=True)
class Needles:
    """What to search for (label -> bytes; PHI) and how many values were left out, per field."""

    needles: dict[str, bytes] = field(default_factory=dict)
    #: field name -> number of values not searched (too short, or carried legitimately)
    skipped: dict[str, int] = field(default_factory=dict)
    #: labels of the canaries among `needles`: the same for every slide of a release
    canaries: frozenset[str] = frozenset()

    def __len__(self) -> int:
        return len(self.needles)

    def split(self) -> tuple[dict[str, bytes], dict[str, bytes]]:
        """(the slide's own needles, the canaries)."""
        own = {k: v for k, v in self.needles.items() if k not in self.canaries}
        return own, {k: v for k, v in self.needles.items() if k in self.canaries}


def legit_values(plan: DeidPlan) -> set[str]:
    """Strings the output legitimately contains (lowercased)."""
    out = {v for v in plan.attributes.values()}
    out.update(plan.attributes.keys())
    out.add(plan.pseudonym)
    out.update(ZARR_VOCABULARY)
    for lv in plan.levels:
        out.update({str(lv.height), str(lv.width), str(lv.samples), str(lv.downsample)})
    for mpp in (plan.mpp_x, plan.mpp_y):
        if mpp is not None:
            out.update({str(mpp), repr(mpp)})
    return {v.strip().lower() for v in out if v and v.strip()}


def too_short(value: str) -> bool:
    if len(value) < MIN_LENGTH:
        return True
    digits_only = _NUMERIC_RE.match(value) is not None
    return digits_only and len(value) < MIN_NUMERIC_LENGTH


def phi_needles(
    facts: SlideFacts, plan: DeidPlan, canaries: Sequence[tuple[str, str]] = ()
) -> Needles:
    """Values to search for in the output of `plan`: dropped/coarsened field values, the
    date-like parts of them, and the canaries given as (label, value) pairs (a canary is
    searched even when a kept value equals it: it must never be published)."""
    actions = {(f.name, f.location): f.action for f in plan.fields}
    by_name = {f.name: f.action for f in plan.fields}
    legit = legit_values(plan)
    needles: dict[str, bytes] = {}
    skipped: dict[str, int] = {}
    canary_labels: set[str] = set()
    last: dict[str, int] = {}  # label -> its last suffix number (no rescan from #2 each time)

    def add(label: str, name: str, value: str, *, canary: bool = False) -> None:
        value = value.strip()
        low = value.lower()
        # a canary is a drill value: searched even where it equals a kept value
        if too_short(value) or (
            not canary and (low in GENERIC_WORDS or any(low in v for v in legit))
        ):
            skipped[name] = skipped.get(name, 0) + 1
            return
        data = value[:MAX_NEEDLE_CHARS].encode("utf-8")
        n = last.get(label, 1)
        unique = label if n == 1 else f"{label}#{n}"
        while unique in needles:
            n += 1
            unique = f"{label}#{n}"
        last[label] = n
        needles[unique] = data
        if canary:
            canary_labels.add(unique)

    for f in facts.fields:
        action = actions.get((f.name, f.location), by_name.get(f.name, "drop"))
        if action == "keep":
            continue
        add(f.name, f.name, f.value)
        for m in _DATE_RE.finditer(f.value):
            if m.group(0).strip() != f.value.strip():
                add(f"{f.name}[date]", f.name, m.group(0))
    for label, value in canaries:
        add(label, label, value, canary=True)
    return Needles(needles, skipped, frozenset(canary_labels))
