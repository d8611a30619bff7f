"""Where the pass-through payload check used to live; kept for its importers.

Payloads are no longer judged by their header: `slidegate.payload` walks every byte of a tile
(every marker segment, the entropy-coded data, the end) and removes the non-coding segments.
`MetadataInTile` is now what a payload that cannot be walked raises (`payload.Unparsable`).
"""

from __future__ import annotations

from slidegate.payload import Unparsable as MetadataInTile
from slidegate.payload import check_j2k, check_jpeg

__all__ = ["MetadataInTile", "check_j2k", "check_jpeg"]
