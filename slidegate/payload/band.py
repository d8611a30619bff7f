"""Many payloads of one buffer cleaned at once (a band of tiles read in one go), vectorised.

For JPEG, a tile whose stream starts with a header already walked (SOI up to the first scan's
entropy-coded data; at most `MAX_HEADERS` kept) has the same segments up to there, so what is
left to walk is its entropy-coded data and its end: the positions of every 0xFF byte of the
buffer that is neither stuffing nor RSTn are found once with numpy, and the tile passes when
the first of them after its header is an EOI ending the tile exactly. Every other tile
(another header, a second scan, a segment after the scan, bytes after EOI) is walked whole by
`jpeg.walk`. JPEG 2000 likewise: a tile whose main header (SOC up to the first SOT) was
walked passes when it is one tile-part (SOT, SOD right after it, Psot ending right before an
EOC that ends the tile) whose bit stream holds no marker but SOP / EPH; others are walked by
`j2k.walk`. Nothing is trusted by prefix alone: every byte of every tile is either part of a
walked header or checked here.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from slidegate.payload import j2k, jpeg

MAX_HEADERS = 8


#: bytes compared at once: the bool mask stays in the CPU cache for its nonzero pass
CHUNK = 1 << 20


def markers(seg: np.ndarray, scratch: np.ndarray, kind: str = "jpeg") -> np.ndarray:
    """Positions in `seg` of the 0xFF bytes that start a marker: in JPEG followed by neither
    0x00 (stuffing) nor RSTn, in JPEG 2000 by a byte from 0x90 but SOP / EPH. Per 1 MB: one
    comparison into `scratch` (a reused bool buffer), then its nonzero items."""
    n = seg.size
    found = [np.zeros(0, np.int64)]
    for i in range(0, n - 1, CHUNK):
        j = min(n - 1, i + CHUNK)  # the last byte has no successor here
        mask = scratch[: j - i]
        np.equal(seg[i:j], 0xFF, out=mask)
        ff = np.flatnonzero(mask) + i
        nxt = seg[ff + 1]
        if kind == "jpeg":
            found.append(ff[(nxt != 0) & ((nxt & 0xF8) != 0xD0)])
        else:
            found.append(ff[(nxt >= 0x90) & (nxt != j2k.SOP) & (nxt != j2k.EPH)])
    return np.concatenate(found)


class BandCleaner:
    """`clean(buf, starts, counts)`: the cleaned replacement of each tile that changes."""

    def __init__(self, kind: str) -> None:
        if kind not in ("jpeg", "j2k"):
            raise ValueError(f"no payload walk for {kind!r}")
        self.kind = kind
        #: (header as stored, cleaned header or None when unchanged)
        self.known: list[tuple[bytes, bytes | None]] = []
        self._local = threading.local()

    def clean(self, buf: memoryview | bytes, starts: np.ndarray, counts: np.ndarray
              ) -> dict[int, bytes]:  # fmt: skip
        """Tile i is buf[starts[i] : starts[i] + counts[i]] (count 0: no tile). Returns
        {i: cleaned bytes} for the tiles that change; raises Unparsable for one that cannot
        be walked."""
        starts = np.asarray(starts, np.int64)
        counts = np.asarray(counts, np.int64)
        todo = np.flatnonzero(counts > 0)
        out: dict[int, bytes] = {}
        arr = np.frombuffer(buf, np.uint8)
        if todo.size and self.known:
            todo = self._fast(buf, arr, starts, counts, todo, out)
        while todo.size:
            first, todo = int(todo[0]), todo[1:]
            s, e = int(starts[first]), int(starts[first] + counts[first])
            data = bytes(buf[s:e])
            cleaned, learnt = self._walk(data)
            if cleaned is not None:
                out[first] = cleaned
            new = learnt is not None and all(learnt[0] != h for h, _ in self.known)
            if new and learnt is not None and len(self.known) < MAX_HEADERS:
                self.known.append(learnt)
                todo = self._fast(buf, arr, starts, counts, todo, out)
        return out

    def _walk(self, data: bytes) -> tuple[bytes | None, tuple[bytes, bytes | None] | None]:
        """(cleaned tile or None if unchanged, (header, cleaned header or None) to learn)."""
        if self.kind == "jpeg":
            w = jpeg.walk(data)
            cleaned = b"".join(w.parts) if w.removed else None
            if not w.first_scan:
                return cleaned, None
            head = data[: w.first_scan]
            return cleaned, (head, None if head == w.clean_head else w.clean_head)
        parts, removed = j2k.walk(data)
        cleaned = b"".join(parts) if removed else None
        main = j2k.main_header(data)
        if main is None:
            return cleaned, None
        head = data[: main[0]]
        return cleaned, (head, None if head == main[1] else main[1])

    def _fast(self, buf: memoryview | bytes, arr: np.ndarray, starts: np.ndarray,
              counts: np.ndarray, todo: np.ndarray, out: dict[int, bytes]
              ) -> np.ndarray:  # fmt: skip
        """Check the tiles of `todo` that start with a known header; return the others."""
        if not todo.size:
            return todo
        lo = int(starts[todo].min())
        hi = int((starts[todo] + counts[todo]).max())
        marks = markers(arr[lo:hi], self._scratch(hi - lo), self.kind) + lo
        for head, clean_head in self.known:
            n = len(head)
            fit = todo[counts[todo] >= n + (2 if self.kind == "jpeg" else 16)]
            if not fit.size:
                continue
            heads = np.lib.stride_tricks.sliding_window_view(arr, n)[starts[fit]]
            fit = fit[(heads == np.frombuffer(head, np.uint8)).all(axis=1)]
            if not fit.size:
                continue
            ends = starts[fit] + counts[fit]
            data_at = starts[fit] + n  # JPEG: entropy-coded data; JPEG 2000: SOT
            ok = arr[ends - 1] == jpeg.EOI  # EOI and EOC are both 0xFFD9
            if self.kind == "j2k":
                psot = arr[data_at[:, None] + np.arange(6, 10)].astype(np.int64)
                psot = (psot * np.array([1 << 24, 1 << 16, 1 << 8, 1])).sum(axis=1)
                sot = arr[data_at[:, None] + np.arange(4)] == np.array([0xFF, j2k.SOT, 0, 10])
                sod = arr[data_at[:, None] + np.arange(12, 14)] == np.array([0xFF, j2k.SOD])
                ok &= sot.all(axis=1) & sod.all(axis=1) & (data_at + psot == ends - 2)
                data_at = data_at + 14  # the bit stream
            k = np.searchsorted(marks, data_at)
            first = marks[np.minimum(k, max(marks.size - 1, 0))] if marks.size else ends
            ok &= (k < marks.size) & (first == ends - 2)
            good = fit[ok]
            if clean_head is not None:
                for i in good.tolist():
                    s, e = int(starts[i]), int(starts[i] + counts[i])
                    out[i] = clean_head + bytes(buf[s + n : e])
            todo = np.setdiff1d(todo, good, assume_unique=True)
            if not todo.size:
                break
        return todo

    def _scratch(self, n: int) -> np.ndarray:
        """A reused bool buffer of min(n, CHUNK) items, one per thread (no page faults)."""
        have: np.ndarray | None = getattr(self._local, "buf", None)
        if have is None:
            have = np.empty(CHUNK, bool)
            self._local.buf = have
        return have[: min(n, CHUNK)]


def clean_payloads(cleaner: BandCleaner, payloads: Sequence[bytes | None]
                   ) -> list[bytes | None]:  # fmt: skip
    """`payloads` (None = no tile) cleaned through `cleaner`, in one buffer."""
    lengths = np.array([0 if p is None else len(p) for p in payloads], np.int64)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1])) if lengths.size else lengths
    buf = b"".join(p for p in payloads if p is not None)
    changed = cleaner.clean(buf, starts, lengths)
    return [changed.get(i, p) for i, p in enumerate(payloads)]
