"""Format detection and the inventory of one slide (`read_facts`).

Detection order: TIFF header (else Unsupported/Corrupt by signature), Aperio description on
page 0 -> "svs", a TIFF flavour slidegate does not handle yet -> Unsupported naming it, a tiled
page 0 -> "tiff", anything else -> Unsupported. Sources are opened read-only.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import tifffile

from slidegate.errors import CorruptSlideError, UnsupportedSlideError
from slidegate.formats import generic_tiff, svs
from slidegate.formats.tiff import Layout, associated_image, level_facts, open_tiff, resolution_mpp
from slidegate.models import SlideFacts

#: tifffile flavour flag -> name, for flavours recognised but not supported yet
UNSUPPORTED_FLAVOURS = {
    "ndpi": "Hamamatsu NDPI",
    "ome": "OME-TIFF",
    "philips": "Philips TIFF",
    "scn": "Leica SCN",
    "bif": "Ventana BIF",
    "qpi": "PerkinElmer/Akoya QPTIFF",
    "lsm": "Zeiss LSM",
    "stk": "MetaMorph STK",
    "dng": "DNG camera raw",
}


def classify(tif: tifffile.TiffFile, path: Path) -> str:
    if svs.is_svs(tif):
        return svs.FORMAT
    for flag, name in UNSUPPORTED_FLAVOURS.items():
        if getattr(tif, f"is_{flag}", False):
            raise UnsupportedSlideError(
                f"slide {path}: {name} is not supported yet; convert it to a tiled pyramidal "
                "TIFF or remove it from the cohort",
                reason=f"unsupported: {name}",
            )
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
    return generic_tiff.FORMAT


def layout_for(tif: tifffile.TiffFile, fmt: str, path: Path) -> Layout:
    if fmt == svs.FORMAT:
        return svs.layout(tif, path)
    return generic_tiff.layout(tif, path)


def detect_format(path: Path) -> str:
    """'svs' | 'tiff'. UnsupportedSlideError / CorruptSlideError otherwise."""
    with open_tiff(path) as tif:
        return classify(tif, path)


def _sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def read_facts(path: Path, slide_id: str) -> SlideFacts:
    """Inventory one slide: format, levels, associated images, every metadata field, hash."""
    path = Path(path)
    with open_tiff(path) as tif:
        fmt = classify(tif, path)
        lay = layout_for(tif, fmt, path)
        level0 = lay.levels[0]
        levels = tuple(level_facts(i, ref, level0) for i, ref in enumerate(lay.levels))
        associated = tuple(associated_image(kind, ref) for kind, ref in lay.associated)
        if fmt == svs.FORMAT:
            fields = svs.fields(tif)
            mpp_y, mpp_x = svs.mpp(fields)
        else:
            fields = generic_tiff.fields(tif)
            mpp_y, mpp_x = resolution_mpp(level0.page)
    try:
        sha, size = _sha256(path)
    except OSError as exc:
        raise CorruptSlideError(
            f"cannot read slide {path} to hash it: {exc.strerror}; check the file",
            reason="corrupt: unreadable file",
        ) from None
    return SlideFacts(
        slide_id=slide_id,
        source_path=str(path.resolve()),
        format=fmt,
        size=size,
        sha256=sha,
        mpp_x=mpp_x,
        mpp_y=mpp_y,
        levels=levels,
        associated=associated,
        fields=tuple(fields),
    )
