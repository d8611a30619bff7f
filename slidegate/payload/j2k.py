"""JPEG 2000 payloads reduced to the bare codestream and walked whole.

A JP2 file wrapper (signature, `jp2h`, `xml `, `uuid`, ... boxes) is removed: only the
contents of its `jp2c` box are kept, and only when the header asks the decoder for nothing
(colour specification sRGB or greyscale by enumeration; no palette, component mapping or
channel definition), so the bare codestream decodes to the same pixels; otherwise it is
Unparsable. The codestream is SOC, SIZ, the main header's marker segments up to the first SOT,
then tile-parts, each found through its Psot length: SOT, its header's segments up to SOD, the
bit stream (in which 0xFF may only be followed by a byte below 0x90, or be SOP / EPH), and
EOC with nothing after it. COM segments (main and tile-part headers) are removed, the Psot of
a shortened tile-part is corrected and a TLM (tile-part lengths) is dropped if one changed.
"""

from __future__ import annotations

import numpy as np

from slidegate.payload.errors import PayloadError, Unparsable

SOC, SIZ, SOT, SOD, EOC, COM, TLM = 0x4F, 0x51, 0x90, 0x93, 0xD9, 0x64, 0x55
SOP, EPH = 0x91, 0x92
#: CAP, COD, COC, TLM, PLM, CPF, QCD, QCC, RGN, POC, PPM, CRG
MAIN = frozenset({0x50, 0x52, 0x53, 0x55, 0x57, 0x59, 0x5C, 0x5D, 0x5E, 0x5F, 0x60, 0x63})
#: COD, COC, PLT, QCD, QCC, RGN, POC, PPT
TILE = frozenset({0x52, 0x53, 0x58, 0x5C, 0x5D, 0x5E, 0x5F, 0x61})
JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"


def _boxes(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """(type, content start, content end) of the boxes in data[start:end]."""
    out = []
    pos = start
    while pos < end:
        if pos + 8 > end:
            raise Unparsable("j2k.jp2-box-length", pos)
        size = int.from_bytes(data[pos : pos + 4], "big")
        kind, head = data[pos + 4 : pos + 8], 8
        if size == 1:
            if pos + 16 > end:
                raise Unparsable("j2k.jp2-box-length", pos)
            size, head = int.from_bytes(data[pos + 8 : pos + 16], "big"), 16
        elif size == 0:
            size = end - pos
        if size < head or pos + size > end:
            raise Unparsable("j2k.jp2-box-length", pos)
        out.append((kind, pos + head, pos + size))
        pos += size
    return out


def _unwrap(data: bytes) -> tuple[int, int, bool]:
    """(start, end) of the codestream in `data`, and whether a JP2 wrapper was removed."""
    if not data.startswith(JP2_SIGNATURE):
        return 0, len(data), False
    boxes = _boxes(data, 0, len(data))
    streams = [(s, e) for kind, s, e in boxes if kind == b"jp2c"]
    headers = [(s, e) for kind, s, e in boxes if kind == b"jp2h"]
    if len(streams) != 1 or len(headers) != 1:
        raise Unparsable("j2k.jp2-structure", 0)
    for kind, s, _ in _boxes(data, *headers[0]):
        if kind == b"colr":
            if data[s] != 1 or int.from_bytes(data[s + 3 : s + 7], "big") not in (16, 17):
                raise Unparsable("j2k.jp2-colour", s)
        elif kind not in (b"ihdr", b"res ", b"bpcc"):
            raise Unparsable("j2k.jp2-header-box", s)
    return streams[0][0], streams[0][1], True


def _bitstream_ok(arr: np.ndarray, start: int, end: int) -> bool:
    """No marker in the bit stream arr[start:end] but SOP / EPH (vectorised)."""
    seg = arr[start:end]
    ff = np.flatnonzero(seg[:-1] == 0xFF)
    nxt = seg[ff + 1]
    return not bool(((nxt >= 0x90) & (nxt != SOP) & (nxt != EPH)).any()) and (
        seg.size == 0 or seg[-1] != 0xFF
    )


def _segment(data: bytes, pos: int, end: int) -> tuple[int, int]:
    if pos + 4 > end or data[pos] != 0xFF:
        raise Unparsable("j2k.bytes-outside-segment", pos)
    seg_end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
    if seg_end > end or seg_end < pos + 4:
        raise Unparsable("j2k.segment-length", pos)
    return data[pos + 1], seg_end


def main_header(data: bytes) -> tuple[int, bytes] | None:
    """(length, cleaned form) of the main header (SOC up to the first SOT) of a bare
    codestream that `walk` accepted; None for a JP2 file. Used to learn headers (band.py)."""
    if not data.startswith(b"\xff\x4f\xff\x51"):
        return None
    kept, pos = [data[:2]], 2
    while True:
        marker, end = _segment(data, pos, len(data))
        if marker == SOT:
            return pos, b"".join(kept)
        if marker != COM:
            kept.append(data[pos:end])
        pos = end


def walk(data: bytes) -> tuple[list[bytes], list[tuple[str, int]]]:
    """(kept parts, removed (rule, offset)) of `data`; raises Unparsable."""
    removed: list[tuple[str, int]] = []
    start, n, wrapped = _unwrap(data)
    if wrapped:
        removed.append(("j2k.jp2-box", 0))
    if data[start : start + 4] != b"\xff\x4f\xff\x51":
        raise Unparsable("j2k.no-soc", start)
    arr = np.frombuffer(data, np.uint8)
    main: list[bytes] = [data[start : start + 2]]
    tlm_at: list[int] = []
    pos = start + 2
    while True:
        marker, end = _segment(data, pos, n)
        if marker == SOT:
            break
        if marker == COM:
            removed.append(("j2k.com", pos - start))
        elif marker in MAIN or (marker == SIZ and pos == start + 2):
            if marker == TLM:
                tlm_at.append(len(main))
            main.append(data[pos:end])
        else:
            raise Unparsable(f"j2k.marker-{marker:02x}", pos - start)
        pos = end
    parts: list[bytes] = []
    resized = False
    while data[pos : pos + 2] == b"\xff\x90":
        if int.from_bytes(data[pos + 2 : pos + 4], "big") != 10 or pos + 12 > n:
            raise Unparsable("j2k.sot-length", pos - start)
        psot = int.from_bytes(data[pos + 6 : pos + 10], "big")
        tp_end = n - 2 if psot == 0 else pos + psot
        if tp_end > n or tp_end < pos + 14:
            raise Unparsable("j2k.psot", pos - start)
        head = [data[pos : pos + 12]]
        dropped = 0
        at = pos + 12
        while data[at : at + 2] != b"\xff\x93":
            marker, end = _segment(data, at, tp_end)
            if marker == COM:
                removed.append(("j2k.tile-part-com", at - start))
                dropped += end - at
            elif marker in TILE:
                head.append(data[at:end])
            else:
                raise Unparsable(f"j2k.tile-part-marker-{marker:02x}", at - start)
            at = end
        if not _bitstream_ok(arr, at + 2, tp_end):
            raise Unparsable("j2k.marker-in-bitstream", at - start)
        if dropped and psot:
            sot = bytearray(head[0])
            sot[6:10] = (psot - dropped).to_bytes(4, "big")
            head[0] = bytes(sot)
            resized = True
        parts += [*head, data[at:tp_end]]
        pos = tp_end
    if data[pos : pos + 2] != b"\xff\xd9":
        raise Unparsable("j2k.no-eoc", pos - start)
    if pos + 2 != n:  # one 0x00: DICOM's even-length padding of a fragment
        pad = n == pos + 3 and data[n - 1] == 0
        removed.append(("j2k.pad" if pad else "j2k.after-eoc", pos + 2 - start))
    if resized:
        main = [p for i, p in enumerate(main) if i not in tlm_at]  # lengths changed
    return [*main, *parts, b"\xff\xd9"], removed


def clean_j2k(data: bytes) -> bytes:
    """The bare codestream of `data` with COM segments and everything around it removed (the
    same object when there is nothing to remove); raises Unparsable."""
    data = bytes(data)
    parts, removed = walk(data)
    return data if not removed else b"".join(parts)


def check_j2k(data: bytes) -> None:
    """Raise PayloadError (the first rule broken) unless `data` is a bare, COM-free
    codestream with nothing after EOC (but one 0x00, a DICOM fragment's padding)."""
    found = [r for r in walk(bytes(data))[1] if r[0] != "j2k.pad"]
    if found:
        raise PayloadError(*found[0])
