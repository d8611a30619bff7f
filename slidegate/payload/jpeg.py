"""JPEG streams walked whole: every marker segment before, between and after the scans.

A stream is SOI, then marker segments, each scan's entropy-coded data (in which a 0xFF byte may
only be stuffing 0xFF00 or a restart marker RSTn), and EOI with nothing after it. Coding
segments (SOFn, DHT, DAC, DQT, DRI, DNL, DHP, EXP, SOS) are checked to hold exactly the
tables / fields their length announces (no slack bytes), and kept byte for byte. COM and APPn
are not coding data and are removed, except a JFIF APP0 (kept as the bare 16-byte header, its
thumbnail and extension dropped) and an Adobe APP14 (it tells the decoder the colour transform;
kept as its bare 14 bytes). Fill bytes (0xFF before a marker) and anything after EOI are
removed. The entropy-coded data itself is never changed, so the decoded pixels are the same.
An abbreviated table stream (TIFF JPEGTables: SOI, DQT/DHT, EOI) is walked the same way.
"""

from __future__ import annotations

import numpy as np

from slidegate.payload.errors import PayloadError, Unparsable

SOI, EOI, SOS = 0xD8, 0xD9, 0xDA
SOF = frozenset(set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC})
DHT, DAC, DQT, DRI, DNL, DHP, EXP = 0xC4, 0xCC, 0xDB, 0xDD, 0xDC, 0xDE, 0xDF
CODING = SOF | {DHT, DAC, DQT, DRI, DNL, DHP, EXP, SOS}
APP0, APP14, COM = 0xE0, 0xEE, 0xFE


def _rule(marker: int) -> str:
    if marker == COM:
        return "jpeg.com"
    if 0xE0 <= marker <= 0xEF:
        return f"jpeg.app{marker - 0xE0}"
    return f"jpeg.marker-{marker:02x}"


def _exact(marker: int, body: bytes) -> bool:
    """True when a coding segment's body is exactly what its fields announce."""
    n = len(body)
    if marker in SOF or marker == DHP:
        return n >= 6 and n == 6 + 3 * body[5]
    if marker == SOS:
        return n >= 1 and n == 4 + 2 * body[0]
    if marker in (DRI, DNL):
        return n == 2
    if marker == EXP:
        return n == 1
    if marker == DAC:
        return n % 2 == 0
    i = 0
    if marker == DQT:
        while i < n:
            pq, tq = body[i] >> 4, body[i] & 15
            if pq > 1 or tq > 3:
                return False
            i += 1 + 64 * (pq + 1)
        return i == n
    if marker == DHT:
        while i < n:
            if body[i] >> 4 > 1 or body[i] & 15 > 3 or i + 17 > n:
                return False
            i += 17 + sum(body[i + 1 : i + 17])
        return i == n
    return False


def _app(marker: int, seg: bytes) -> bytes | None:
    """What is kept of an APPn / COM segment: its bare form, or None (removed)."""
    body = seg[4:]
    if marker == APP0 and body[:5] == b"JFIF\x00" and len(body) >= 14:
        return b"\xff\xe0\x00\x10" + body[:12] + b"\x00\x00"  # thumbnail dropped
    if marker == APP14 and body[:5] == b"Adobe" and len(body) >= 12:
        return b"\xff\xee\x00\x0e" + body[:12]
    return None


def ecs_end(arr: np.ndarray, pos: int) -> int:
    """First position >= pos of a 0xFF byte that is neither stuffing (0xFF00) nor RSTn
    (vectorised); raises Unparsable when the stream ends inside entropy-coded data."""
    seg = arr[pos:]
    ff = np.flatnonzero(seg[:-1] == 0xFF)
    nxt = seg[ff + 1]
    marks = ff[(nxt != 0) & ((nxt & 0xF8) != 0xD0)]
    if not marks.size:
        raise Unparsable("jpeg.no-eoi", len(arr))
    return pos + int(marks[0])


class Walk:
    """The result of walking one stream: kept parts, what was removed (rule, offset) and the
    end of the first scan's header (where its entropy-coded data starts; 0 if no scan)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.removed: list[tuple[str, int]] = []
        self.first_scan = 0
        #: the stream up to the first scan's entropy-coded data, cleaned
        self.clean_head = b""


def walk(data: bytes, tables: bool = False) -> Walk:
    """Walk `data` whole; raise Unparsable where it cannot be walked. `tables`: an abbreviated
    table stream (no frame, no scan)."""
    n = len(data)
    out = Walk()
    if n < 4 or data[0] != 0xFF or data[1] != SOI:
        raise Unparsable("jpeg.no-soi", 0)
    arr = np.frombuffer(data, np.uint8)
    out.parts.append(data[:2])
    pos = 2
    while True:
        if pos + 2 > n:
            raise Unparsable("jpeg.no-eoi", pos)
        if data[pos] != 0xFF:
            raise Unparsable("jpeg.bytes-outside-segment", pos)
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte: carries nothing, dropped
            out.removed.append(("jpeg.fill", pos))
            pos += 1
            continue
        if marker == EOI:
            out.parts.append(data[pos : pos + 2])
            if pos + 2 != n:  # one 0x00: DICOM's even-length padding of a fragment
                pad = n == pos + 3 and data[-1] == 0
                out.removed.append(("jpeg.pad" if pad else "jpeg.after-eoi", pos + 2))
            break
        app = marker == COM or 0xE0 <= marker <= 0xEF
        if not app and (marker not in CODING or (tables and marker not in (DQT, DHT, DAC, DRI))):
            raise Unparsable(_rule(marker), pos)
        if pos + 4 > n:
            raise Unparsable("jpeg.truncated", pos)
        end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        if end > n or end < pos + 4:
            raise Unparsable("jpeg.segment-length", pos)
        if app:
            kept = _app(marker, data[pos:end])
            if kept != data[pos:end]:
                out.removed.append((_rule(marker), pos))
            if kept is not None:
                out.parts.append(kept)
            pos = end
            continue
        if not _exact(marker, data[pos + 4 : end]):
            raise Unparsable(f"jpeg.{_rule(marker)[5:]}-fields", pos)
        if marker != SOS:
            out.parts.append(data[pos:end])
            pos = end
            continue
        if not out.first_scan:
            out.first_scan = end
            out.clean_head = b"".join(out.parts) + data[pos:end]
        stop = ecs_end(arr, end)
        out.parts.append(data[pos:stop])  # scan header + entropy-coded data, unchanged
        pos = stop
    if not tables and not out.first_scan:
        raise Unparsable("jpeg.no-scan", pos)
    return out


def clean_jpeg(data: bytes, tables: bool = False) -> bytes:
    """`data` with every non-coding segment removed (the same object when there is none);
    raises Unparsable when it cannot be walked."""
    data = bytes(data)
    w = walk(data, tables)
    return data if not w.removed else b"".join(w.parts)


def check_jpeg(data: bytes, tables: bool = False) -> None:
    """Raise PayloadError (the first rule broken) unless `data` is coding data only (one
    0x00 after EOI, the padding of an odd-length DICOM fragment, is allowed)."""
    found = [r for r in walk(bytes(data), tables).removed if r[0] != "jpeg.pad"]
    if found:
        raise PayloadError(*found[0])


def clean_jpeg_tables(data: bytes) -> bytes:
    return clean_jpeg(data, tables=True)


def check_jpeg_tables(data: bytes) -> None:
    check_jpeg(data, tables=True)
