"""Synthetic slides of every TIFF-family vendor format, in the real file layout, with canaries in
every field phi-locations.md names and canary text rendered into label and macro pixels.

Each writer is `(path, seed) -> VendorSlide` (what was planted where); `WRITERS` maps the
slidegate format name to its writer and a file suffix.
"""

from collections.abc import Callable
from pathlib import Path

from slidegate.synth.vendors.bif import write_bif
from slidegate.synth.vendors.common import VendorSlide
from slidegate.synth.vendors.ndpi import write_ndpi
from slidegate.synth.vendors.ome_tiff import write_ome_tiff
from slidegate.synth.vendors.philips import write_philips
from slidegate.synth.vendors.qptiff import write_qptiff
from slidegate.synth.vendors.scn import write_scn
from slidegate.synth.vendors.svs_j2k import write_svs_j2k

Writer = Callable[[Path, int], VendorSlide]
#: format -> (writer, file suffix)
WRITERS: dict[str, tuple[Writer, str]] = {
    "ndpi": (write_ndpi, ".ndpi"),
    "qptiff": (write_qptiff, ".qptiff"),
    "ome-tiff": (write_ome_tiff, ".ome.tif"),
    "philips": (write_philips, ".tiff"),
    "bif": (write_bif, ".bif"),
    "scn": (write_scn, ".scn"),
    "svs": (write_svs_j2k, ".svs"),
}

__all__ = [
    "WRITERS",
    "VendorSlide",
    "write_bif",
    "write_ndpi",
    "write_ome_tiff",
    "write_philips",
    "write_qptiff",
    "write_scn",
    "write_svs_j2k",
]
