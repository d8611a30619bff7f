"""Every attribute of a DICOM instance as `MetadataField`s (values may be PHI: keep private).

Names: `dicom.<Keyword>` for a top-level attribute; attributes inside sequences are named by the
keyword path without item numbers (`dicom.SharedFunctionalGroupsSequence.PixelMeasuresSequence.
PixelSpacing`), so a policy can tell PixelSpacing in the shared functional groups from any other.
Private and unknown tags are named `gggg,eeee` (upper-case hex), e.g. `dicom.3021,1001`.
Locations: `instance N (Path[0].To[1].Keyword (gggg,eeee))`; file meta elements say
`instance N (file meta ...)`.

Values: multi-values joined with a backslash (as DICOM stores them); a person name also yields
each of its components as its own field (so each is searched for on its own); binary values
(OB/OW/UN...) become text when they are printable, else a placeholder plus one field per
printable run of 6+ characters. Pixel data is never read. In PerFrameFunctionalGroupsSequence
only the first item is listed whole; later items add only their text values not seen before
(a sparse pyramid can have 100,000 frames of numeric positions). Content item ValueType and
RelationshipType (enumerated terms) are not listed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.valuerep import PersonName

from slidegate.models import MetadataField

_PER_FRAME = 0x52009230
_PIXEL_TAGS = {0x7FE00010, 0x7FE00008, 0x7FE00009}
#: enumerated structure of content items (PS3.3 C.17.3): ValueType (TEXT, CODE, NUM...) and
#: RelationshipType; fixed terms, never about a person, and "CODE" would match the word
#: "codecs" of every zarr.json in the leak scan
_STRUCTURE_TAGS = {0x0040A040, 0x0040A010}
_NUMERIC_VRS = {"FL", "FD", "DS", "IS", "US", "UL", "SS", "SL", "SV", "UV", "AT"}
_PRINTABLE = re.compile(rb"[\x20-\x7e]{6,}")
MAX_BINARY = 1 << 20
MAX_RUNS = 64


def _tag(el: DataElement) -> str:
    return f"{el.tag.group:04X},{el.tag.element:04X}"


def _key(el: DataElement) -> str:
    return _tag(el) if el.tag.is_private or not el.keyword else el.keyword


def _text(value: object) -> str:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("latin-1")
    return str(value)


def _binary(data: bytes, vr: str) -> list[tuple[str, str]]:
    """(suffix, value) pairs for a binary value: itself if printable, else runs of text."""
    stripped = data.rstrip(b"\x00 ")
    if not stripped:
        return []
    head = stripped[:MAX_BINARY]
    if all(0x20 <= b < 0x7F or b in (9, 10, 13) for b in head):
        return [("", head.decode("ascii"))]
    out = [("", f"<{vr} {len(data)} bytes>")]
    runs = _PRINTABLE.findall(data[:MAX_BINARY])[:MAX_RUNS]
    out += [(f" text {n}", run.decode("ascii")) for n, run in enumerate(runs, start=1)]
    return out


def _values(el: DataElement) -> list[tuple[str, str]]:
    """(location suffix, value) pairs of one non-sequence element; [] when empty."""
    value = el.value
    if value is None or value == "" or value == b"":
        return []
    if isinstance(value, bytes | bytearray):
        return _binary(bytes(value), el.VR)
    if isinstance(value, list | tuple) or el.VM > 1:
        items = list(value)
        text = "\\".join(_text(v) for v in items)
    else:
        items = [value]
        text = _text(value)
    if not text.strip("\\ \x00"):
        return []
    out = [("", text)]
    for item in items:
        if isinstance(item, PersonName):
            parts = [p for p in re.split(r"[\^=]", str(item)) if p.strip()]
            if len(parts) > 1:
                out += [(f" component {n}", p) for n, p in enumerate(parts, start=1)]
    return out


def _walk(
    ds: Dataset, instance: int, prefix: str, path: str, seen: set[tuple[str, str]] | None
) -> Iterator[MetadataField]:
    for el in ds:
        if el.tag in _PIXEL_TAGS or el.tag in _STRUCTURE_TAGS:
            continue
        key = _key(el)
        name = f"{prefix}.{key}"
        here = f"{path}.{key}" if path else key
        if el.VR == "SQ":
            frames_seen: set[tuple[str, str]] = set()
            for i, item in enumerate(el.value or []):
                item_seen = seen
                if el.tag == _PER_FRAME and i > 0 and seen is None:
                    item_seen = frames_seen  # later frames: new text values only
                yield from _walk(item, instance, name, f"{here}[{i}]", item_seen)
            continue
        if seen is not None and el.VR in _NUMERIC_VRS:
            continue
        for suffix, value in _values(el):
            if seen is not None:
                if (name, value) in seen:
                    continue
                seen.add((name, value))
            yield MetadataField(
                name=name,
                location=f"instance {instance} ({here} ({_tag(el)}){suffix})",
                value=value,
            )


def instance_fields(ds: Dataset, instance: int) -> list[MetadataField]:
    """Every attribute of one instance header (file meta included), flattened."""
    out: list[MetadataField] = []
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        for f in _walk(meta, instance, "dicom", "", None):
            out.append(
                f.model_copy(update={"location": f.location.replace(" (", " (file meta ", 1)})
            )
    out.extend(_walk(ds, instance, "dicom", "", None))
    return out
