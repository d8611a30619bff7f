"""What a kept value may look like (`value:` of a keep rule in policies/deid/*.yaml).

A keep rule names one kind, or lists the values it allows:

- `number`: one decimal number (`20`, `-0.000424`, `1E-06`);
- `numbers`: several, separated by spaces, commas, semicolons or DICOM's backslash, each
  optionally in double quotes, the whole optionally in brackets (`0.000499\\0.000499`);
- `token`: one short technical word (letters, digits, `_ . + - /`, at most 24 characters, no
  space), e.g. an ICC profile name `AT2`; it cannot tell a short word from a surname, so prefer a
  list where the vocabulary is known;
- `channel`: a channel label: a fluorophore or stain (`DAPI 2 (387)`, `Cy3`, `Opal 520`,
  `Hematoxylin`), a marker with digits (`CD8`, `Ki67`, `PD-L1`), or `channel N`;
- a list of strings: the value, split on DICOM's backslash, must consist of these values only.

A value that does not fit is dropped, reported by the rule id with `.value` appended.
"""

from __future__ import annotations

import re
from typing import Literal

ValueKind = Literal["number", "numbers", "token", "channel"]

_NUM = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_ITEM = rf'"?{_NUM}"?'
_FLUOR = (
    r"DAPI|Hoechst|FITC|TRITC|E?GFP|RFP|YFP|CFP|mCherry|Texas ?Red|Cy ?[2357](?:\.5)?"
    r"|Opal ?\d{3}|Alexa(?: ?Fluor)? ?\d{3}|AF ?\d{3}|Atto ?\d{3}|DyLight ?\d{3}"
    r"|Autofluorescence|Sample AF|Brightfield|Hematoxylin|Eosin|DAB|panCK|PanCK"
)
_MARKER = r"[A-Za-z]{1,6}(?:-[A-Za-z]{1,3})?-?\d{1,4}[A-Za-z]?"
PATTERNS: dict[str, re.Pattern[str]] = {
    "number": re.compile(_NUM),
    "numbers": re.compile(rf"\[?\s*{_ITEM}(?:\s*[\s,;\\]\s*{_ITEM})*\s*\]?"),
    "token": re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+\-/]{0,23}"),
    "channel": re.compile(
        rf"(?:{_FLUOR}|{_MARKER}|channel \d{{1,3}})(?: \d{{1,2}})?(?: ?\(\d{{3}}(?:\.\d)?\))?"
    ),
}
#: longest value any kind admits (a bound for the regular expressions' input)
MAX_LENGTH = 200


def value_fits(value: str, allowed: ValueKind | list[str]) -> bool:
    """True if `value` looks like what the keep rule allows."""
    text = value.strip()
    if not text or len(text) > MAX_LENGTH:
        return False
    if isinstance(allowed, list):
        return all(part in allowed for part in text.split("\\"))
    return PATTERNS[allowed].fullmatch(text) is not None
