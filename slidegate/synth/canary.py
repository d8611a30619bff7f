"""Canary values: unique, searchable stand-ins for every identifying value a slide can carry.

Text canaries have one fixed shape, `CANARY<seed hex, 8+><scope><nnnn><CODE>` with scope
S (slide), P (patient), B (block) or X (specimen) and a 4-letter field code, e.g.
`CANARY0000002AS0003FILE`. Within one cohort all of them have the same length, so no canary is
a prefix or substring of another and a raw byte search for one cannot match a different one.
Numbers, GUIDs, dates and times are derived from a hash of (seed, scope, n, code): plausible in
form, unique within a cohort (the generator checks), reproducible for a seed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass


def token(seed: int, scope: str, n: int, code: str) -> str:
    """Text canary, e.g. token(42, "S", 3, "FILE") == "CANARY0000002AS0003FILE"."""
    if len(scope) != 1 or len(code) != 4 or not code.isalpha():
        msg = "canary scope is one letter and code four letters"
        raise ValueError(msg)
    return f"CANARY{seed:08X}{scope}{n:04d}{code.upper()}"


def _digest(seed: int, *parts: object) -> bytes:
    text = "|".join(str(p) for p in (seed, *parts))
    return hashlib.sha256(text.encode()).digest()


def number(seed: int, *parts: object, digits: int = 9) -> str:
    """A `digits`-long decimal canary without a leading zero."""
    value = int.from_bytes(_digest(seed, "num", *parts)[:8], "big")
    low = 10 ** (digits - 1)
    return str(low + value % (9 * low))


def guid(seed: int, *parts: object) -> str:
    """A GUID-shaped lowercase hex canary (8-4-4-4-12), like the Aperio `User` field."""
    h = _digest(seed, "guid", *parts)[:16].hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def offset(seed: int, *parts: object, span: int) -> int:
    """A reproducible integer in [0, span)."""
    return int.from_bytes(_digest(seed, "off", *parts)[:8], "big") % span


@dataclass(frozen=True)
class ScanTime:
    """When a slide was scanned, in every format the metadata uses."""

    when: dt.datetime

    @property
    def aperio_date(self) -> str:  # MM/DD/YY
        return self.when.strftime("%m/%d/%y")

    @property
    def aperio_time(self) -> str:  # HH:MM:SS
        return self.when.strftime("%H:%M:%S")

    @property
    def tiff_datetime(self) -> str:  # YYYY:MM:DD HH:MM:SS (TIFF tag 306)
        return self.when.strftime("%Y:%m:%d %H:%M:%S")


class UniqueScanTimes:
    """Hands out scan times whose date *and* time-of-day strings are unique in a cohort."""

    def __init__(self) -> None:
        self._dates: set[str] = set()
        self._times: set[str] = set()

    def after(self, day: dt.date, seed: int, n: int) -> ScanTime:
        candidate = day + dt.timedelta(days=3 + offset(seed, "scanday", n, span=18))
        while candidate.strftime("%m/%d/%y") in self._dates:
            candidate += dt.timedelta(days=1)
        second = 7 * 3600 + offset(seed, "scansec", n, span=11 * 3600)
        while _hms(second) in self._times:
            second += 1
        self._dates.add(candidate.strftime("%m/%d/%y"))
        self._times.add(_hms(second))
        when = dt.datetime.combine(candidate, dt.time()) + dt.timedelta(seconds=second)
        return ScanTime(when)


def _hms(second: int) -> str:
    return f"{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}"
