"""Format detection and the inventory of one slide (`read_facts`).

Detection order: TIFF header (else Unsupported/Corrupt by signature), then the vendors in
`VENDORS` by tifffile's flags (Aperio description -> "svs", NDPI marker -> "ndpi", QPI ->
"qptiff", Philips DP -> "philips", Ventana -> "bif", Leica -> "scn", OME-XML -> "ome-tiff"), a
TIFF flavour slidegate does not handle -> Unsupported naming it, a tiled page 0 -> "tiff",
anything else -> Unsupported. Sources are opened read-only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import tifffile

from slidegate.errors import CorruptSlideError, UnsupportedSlideError
from slidegate.formats import bif, generic_tiff, ndpi, ome_tiff, philips, qptiff, scn, svs
from slidegate.formats.evidence import confirm_levels
from slidegate.formats.recognise import recognise
from slidegate.formats.registry import content_sha256, slide_facts
from slidegate.formats.tiff import Layout, associated_image, level_facts, open_tiff, resolution_mpp
from slidegate.models import MetadataField, SlideFacts
from slidegate.sources import SourceRef


@dataclass(frozen=True)
class Vendor:
    """One TIFF-family format: how it is recognised, laid out and inventoried."""

    name: str  # SlideFacts.format and the deid policy key
    matches: Callable[[tifffile.TiffFile], bool]
    layout: Callable[[tifffile.TiffFile, SourceRef], Layout]
    fields: Callable[[tifffile.TiffFile], list[MetadataField]]
    mpp: Callable[[tifffile.TiffFile, Layout], tuple[float | None, float | None]]


def _generic_mpp(tif: tifffile.TiffFile, lay: Layout) -> tuple[float | None, float | None]:
    return resolution_mpp(lay.levels[0].page)


def _svs_mpp(tif: tifffile.TiffFile, lay: Layout) -> tuple[float | None, float | None]:
    return svs.mpp(svs.fields(tif))


#: asked in order; the first vendor whose flag matches reads the file (tifffile's flags)
VENDORS: tuple[Vendor, ...] = (
    Vendor(svs.FORMAT, svs.is_svs, svs.layout, svs.fields, _svs_mpp),
    Vendor(ndpi.FORMAT, ndpi.is_ndpi, ndpi.layout, ndpi.fields, ndpi.mpp),
    Vendor(qptiff.FORMAT, qptiff.is_qptiff, qptiff.layout, qptiff.fields, qptiff.mpp),
    Vendor(philips.FORMAT, philips.is_philips, philips.layout, philips.fields, philips.mpp),
    Vendor(bif.FORMAT, bif.is_bif, bif.layout, bif.fields, bif.mpp),
    Vendor(scn.FORMAT, scn.is_scn, scn.layout, scn.fields, scn.mpp),
    Vendor(ome_tiff.FORMAT, ome_tiff.is_ome, ome_tiff.layout, ome_tiff.fields, ome_tiff.mpp),
)
GENERIC = Vendor(
    generic_tiff.FORMAT, lambda tif: True, generic_tiff.layout, generic_tiff.fields, _generic_mpp
)

#: tifffile flavour flag -> name, for flavours recognised but not supported
UNSUPPORTED_FLAVOURS = {
    "lsm": "Zeiss LSM",
    "stk": "MetaMorph STK",
    "dng": "DNG camera raw",
}


def vendor_for(tif: tifffile.TiffFile, path: SourceRef) -> Vendor:
    for vendor in VENDORS:
        if vendor.matches(tif):
            return vendor
    for flag, name in UNSUPPORTED_FLAVOURS.items():
        if getattr(tif, f"is_{flag}", False):
            raise UnsupportedSlideError(
                f"slide {path}: {name} is not supported; convert it to a tiled pyramidal "
                "TIFF or remove it from the cohort",
                reason=f"unsupported: {name}",
            )
    found = recognise(path, b"")  # a TIFF-based format slidegate has no reader for (VSI)
    if found is not None:
        raise found.error()
    first = tif.pages.first
    if not first.is_tiled:
        raise UnsupportedSlideError(
            f"slide {path} is a stripped (not tiled) TIFF, not a whole-slide pyramid; convert it "
            "to a tiled pyramidal TIFF or remove it from the cohort",
            reason="unsupported: untiled TIFF",
        )
    if first.imagedepth > 1 or (first.planarconfig != 1 and first.samplesperpixel > 1):
        raise UnsupportedSlideError(
            f"slide {path} is a volumetric or planar-separate TIFF, not supported yet; convert "
            "it to an interleaved (chunky) tiled pyramidal TIFF",
            reason="unsupported: TIFF layout",
        )
    return GENERIC


def classify(tif: tifffile.TiffFile, path: SourceRef) -> str:
    return vendor_for(tif, path).name


#: formats whose pyramid pages carry no reliable marker: levels are confirmed by content once,
#: at inventory; readers then find each inventoried level by page and shape (`find_level`)
EVIDENCE_CHECKED = frozenset({"svs", "tiff"})


def layout_for(tif: tifffile.TiffFile, fmt: str, path: SourceRef) -> Layout:
    """The candidate layout (no content check): readers look levels up with `find_level`."""
    vendor = next((v for v in VENDORS if v.name == fmt), GENERIC)
    return vendor.layout(tif, path)


def detect_format(path: SourceRef) -> str:
    """'svs' | 'ndpi' | 'qptiff' | 'philips' | 'bif' | 'scn' | 'ome-tiff' | 'tiff'.
    UnsupportedSlideError / CorruptSlideError otherwise."""
    with open_tiff(path) as tif:
        return classify(tif, path)


def read_facts(path: SourceRef, slide_id: str) -> SlideFacts:
    """Inventory one slide (a local file or an S3 object): format, levels, associated images,
    every metadata field, hash."""
    with open_tiff(path) as tif:
        vendor = vendor_for(tif, path)
        fmt = vendor.name
        lay = vendor.layout(tif, path)
        if fmt in EVIDENCE_CHECKED:  # unmarked pages are levels only by shape and content
            lay = confirm_levels(lay)
        level0 = lay.levels[0]
        levels = tuple(level_facts(i, ref, level0) for i, ref in enumerate(lay.levels))
        associated = tuple(associated_image(kind, ref) for kind, ref in lay.associated)
        associated += tuple(lay.embedded)
        fields = vendor.fields(tif)
        mpp_y, mpp_x = vendor.mpp(tif, lay)
    try:
        digest = content_sha256(path)
    except OSError as exc:
        raise CorruptSlideError(
            f"cannot read slide {path} to hash it: {exc.strerror}; check the file",
            reason="corrupt: unreadable file",
        ) from None
    return slide_facts(
        path,
        slide_id,
        fmt,
        mpp_yx=(mpp_y, mpp_x),
        levels=levels,
        associated=associated,
        fields=fields,
        digest=digest,
    )
