"""Compressed payloads cleaned whole before they are copied (tiles, frames, JPEG tables).

`clean_jpeg` / `clean_j2k` return the payload with every non-coding part removed (COM, APPn
but a bare JFIF / Adobe header, JP2 boxes, fill bytes, anything after EOI / EOC), walking every
marker segment of the stream; the entropy-coded data is kept byte for byte, so the pixels are
the same. They raise `Unparsable` for a payload that cannot be walked (re-encode it or
quarantine). `check_jpeg` / `check_j2k` raise `PayloadError` unless the payload is coding data
only. `BandCleaner` does the same for many tiles in one buffer, vectorised (band.py).
`coding_digest` is the sha256 of the cleaned payload: equal for a tile and its cleaned copy.
"""

from __future__ import annotations

import hashlib

from slidegate.payload.band import BandCleaner, clean_payloads
from slidegate.payload.errors import PayloadError, Unparsable
from slidegate.payload.j2k import JP2_SIGNATURE, check_j2k, clean_j2k
from slidegate.payload.jpeg import check_jpeg, check_jpeg_tables, clean_jpeg, clean_jpeg_tables

__all__ = [
    "BandCleaner",
    "PayloadError",
    "Unparsable",
    "check_j2k",
    "check_jpeg",
    "check_jpeg_tables",
    "clean_j2k",
    "clean_jpeg",
    "clean_jpeg_tables",
    "clean_payloads",
    "coding_digest",
]


def coding_digest(data: bytes) -> bytes:
    """sha256 of the coding content of a JPEG / JPEG 2000 payload (of the raw bytes when it
    is neither, or cannot be walked)."""
    data = bytes(data)
    try:
        if data[:2] == b"\xff\xd8":
            data = clean_jpeg(data)
        elif data[:2] == b"\xff\x4f" or data.startswith(JP2_SIGNATURE):
            data = clean_j2k(data)
    except Unparsable:
        pass
    return hashlib.sha256(data).digest()
