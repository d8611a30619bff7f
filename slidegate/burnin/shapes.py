"""What an OCR line looks like, and whether it is one of the slide's own PHI values.

An OCR line is reduced to a *shape* (a category name) and a score in [0, 1]; its text is then
dropped. A line that contains one of the slide's own needles (its dropped metadata values,
cohort identifiers, source file and folder names, canaries), or is a long enough part of one,
is certain: score 1. Otherwise the score is the OCR confidence times the weight of the shape:
identifier-like runs (letters and digits with dashes, "HS12-15115", "S19-1234") and dates
weigh most, a plain word less, one or two characters (tissue texture read as "I" or "5")
almost nothing.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

#: a needle or an OCR line shorter than this (letters and digits only) is not matched
MIN_MATCH_CHARS = 4

_DATE = re.compile(
    r"(\d{4}[-/.]\d{1,2}[-/.]\d{1,2})|(\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})"
    r"|(\d{1,2}[ -]?(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*[ -]?\d{2,4})",
    re.IGNORECASE,
)
#: a digit run joined by dashes/slashes/dots/underscores, optionally led by letters:
#: case and accession numbers, block ids, "HS12-15115", "ELB0246-0402", "05CG017"
_ID_RUN = re.compile(r"[A-Za-z]{0,6}\d+([-_/.: ]?[A-Za-z0-9]+)*")
_DIGITS = re.compile(r"\d")
_LETTERS = re.compile(r"[^\W\d_]")
#: letter groups joined by a dash or an underscore, mostly capitals: a code or an initialled
#: case id as handwriting is read ("CMU-I" for a handwritten "CMU-1")
_CODE = re.compile(r"^[A-Za-z0-9]{1,8}([-_][A-Za-z0-9]{1,8})+$")
#: what OCR reads a digit as, and the other way round: folded to the digit before matching
_CONFUSABLE = str.maketrans({"I": "1", "L": "1", "|": "1", "O": "0", "Q": "0"})
#: a person's name as written on a label: "Doe, J", "J. Doe", "JOHN DOE" (two words or more)
_NAME = re.compile(r"^[^\W\d_]{2,}[,.]?\s+[^\W\d_][^\W\d_.]*\.?(\s+[^\W\d_]+)*$")

WEIGHTS = {
    "needle": 1.0,
    "date": 1.0,
    "id-run": 1.0,
    "digits": 0.8,
    "code": 0.9,
    "name": 0.7,
    "word": 0.5,
    "short": 0.1,
}


def normalise(text: str) -> str:
    """Upper-case letters and digits only (NFKC first: full-width digits count)."""
    folded = unicodedata.normalize("NFKC", text).upper()
    return "".join(c for c in folded if c.isalnum())


def folded(text: str) -> str:
    """`normalise`, with the letters OCR confuses with digits (I, L, O, Q) read as digits."""
    return normalise(text).translate(_CONFUSABLE)


@dataclass(frozen=True)
class NeedleIndex:
    """The slide's needles, normalised. PHI: private to the check, never logged."""

    values: frozenset[str]

    @classmethod
    def of(cls, needles: Iterable[str]) -> NeedleIndex:
        norm = {folded(v) for v in needles}
        return cls(frozenset(v for v in norm if len(v) >= MIN_MATCH_CHARS))

    def hit(self, text: str) -> bool:
        """The line contains a needle, or is a part of one (>= MIN_MATCH_CHARS letters and
        digits, with a digit or a dash: not a plain word): a handwritten "CMU-1" on a slide
        whose file is CMU-1-Small-Region.svs. Compared with OCR's digit confusions folded."""
        line = folded(text)
        if len(line) < MIN_MATCH_CHARS:
            return False
        if any(v in line for v in self.values):
            return True
        idlike = bool(_DIGITS.search(text)) or bool(re.search(r"\w[-_]\w", text))
        return idlike and any(line in v for v in self.values)


def shape(text: str) -> str:
    """The shape of an OCR line: date, id-run, digits, code, name, word or short."""
    t = unicodedata.normalize("NFKC", text).strip()
    core = normalise(t)
    if len(core) <= 2:
        return "short"
    if _DATE.search(t):
        return "date"
    has_digit, has_letter = bool(_DIGITS.search(core)), bool(_LETTERS.search(core))
    if has_digit and not has_letter:
        return "digits" if len(core) < 5 else "id-run"
    if has_digit and any(len(m.group(0)) >= 4 for m in _ID_RUN.finditer(t)):
        return "id-run"
    if has_digit:
        return "digits"
    if _CODE.match(t) and sum(c.isupper() for c in core) >= len(core) - 1:
        return "code"
    if _NAME.match(t):
        return "name"
    return "word"


@dataclass(frozen=True)
class Scored:
    shape: str
    score: float
    needle: bool
    chars: int


def score_text(text: str, confidence: float, needles: NeedleIndex) -> Scored:
    """Shape, score and needle hit of one OCR line: all that is kept of it."""
    chars = len(normalise(text))
    if needles.hit(text):
        return Scored("needle", 1.0, True, chars)
    kind = shape(text)
    conf = min(max(confidence, 0.0), 1.0)
    return Scored(kind, round(conf * WEIGHTS[kind], 3), False, chars)
