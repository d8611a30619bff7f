"""What a file is when it is not a slide slidegate reads, and what the steward should do.

Asked where detection would otherwise say only "unknown file type" or "untiled TIFF": a DICOM
dataset without its Part 10 preamble, a DICOM object that is not a whole-slide image, a
Hamamatsu NDPI set file (.ndpis), an Olympus cellSens VSI or its ETS pixel file, and the common
non-slide files. The message says what was recognised and the fix; it names no path and no
value of the file (the caller says which slide, by its pseudonym or cohort id), and the reason
is publishable: the format's name and, for DICOM, the standard's name of the SOP class only.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from slidegate.errors import CorruptSlideError, UnsupportedSlideError
from slidegate.sources import SourceRef, open_binary

TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
#: file suffixes that claim a TIFF-based slide: no TIFF header then means "corrupt"
TIFF_SUFFIXES = frozenset({".svs", ".tif", ".tiff", ".ndpi", ".scn", ".bif", ".qptiff", ".btf"})
#: bytes read from the start of a file to recognise it
HEAD = 512
WSI_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.77.1.6"
VSI_EXPORT = (
    "export it from cellSens or OlyVIA as OME-TIFF (or convert the VSI with its _<name>_ "
    "folder with Bio-Formats: bfconvert -pyramid-resolutions 4 -noflat slide.vsi slide.ome.tif)"
)


@dataclass(frozen=True)
class Recognised:
    what: str  # e.g. "an Olympus cellSens VSI file"
    fix: str  # what to do
    reason: str  # publishable short reason

    def error(self) -> UnsupportedSlideError:
        return UnsupportedSlideError(f"this file is {self.what}; {self.fix}", reason=self.reason)


#: non-slide signatures (offset, magic) -> what they are
OTHER_FILES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (0, b"\xff\xd8\xff", "a JPEG image"),
    (0, b"\x00\x00\x00\x0cjP  ", "a JPEG 2000 image"),
    (0, b"PK\x03\x04", "a ZIP archive"),
    (0, b"%PDF", "a PDF document"),
)
NOT_A_SLIDE = (
    "not a whole-slide image: remove it from the cohort (a 3DHISTECH MRXS slide is the .mrxs "
    "file next to its data folder; slidegate reads SVS, NDPI, QPTIFF, Philips, Ventana BIF, "
    "Leica SCN, OME-TIFF, tiled pyramidal TIFF, DICOM WSI, Zeiss CZI and MRXS)"
)


def _looks_like_dataset(head: bytes) -> bool:
    """A DICOM data set without the 128-byte preamble: it starts with a group 0002 (file meta)
    or 0008 (identification) element, little endian, with an explicit VR or a sane length."""
    if len(head) < 8:
        return False
    group, _elem = struct.unpack_from("<HH", head)
    if group not in (0x0002, 0x0008):
        return False
    vr = head[4:6]
    if vr.isalpha() and vr.isupper():
        return True
    (length,) = struct.unpack_from("<L", head, 4)
    return length < 1 << 16


def _dicom_without_preamble(path: Path) -> Recognised | None:
    import pydicom

    try:
        ds = pydicom.dcmread(str(path), force=True, stop_before_pixels=True)
        sop = str(ds.get("SOPClassUID", "") or "")
    except Exception:
        return None
    fix = (
        "write it again as a DICOM Part 10 file (preamble, 'DICM' and file meta with its "
        "transfer syntax), e.g. with DCMTK `dcmconv` or pydicom `dcmwrite(path, ds, "
        "enforce_file_format=True)`, then add it again"
    )
    if sop == WSI_SOP_CLASS or "TotalPixelMatrixColumns" in ds:
        return Recognised(
            "a DICOM whole-slide image instance without the Part 10 preamble and file meta "
            "(its transfer syntax is not stated)",
            fix,
            "unsupported: DICOM without preamble (re-write as Part 10)",
        )
    name = sop_class_name(sop)
    return Recognised(
        f"a DICOM data set without the Part 10 preamble ({name}, not a whole-slide image)",
        NOT_A_SLIDE,
        f"unsupported: DICOM without preamble, not a whole-slide image ({name})",
    )


def sop_class_name(uid: str) -> str:
    """The standard's name of a SOP class; a UID the standard does not name is source text."""
    import pydicom.uid

    name = pydicom.uid.UID(uid).name if uid else ""
    return name if name and name != uid else "unknown SOP class"


def _ndpis(path: Path, head: bytes) -> Recognised | None:
    if path.suffix.lower() != ".ndpis" and b"NanoZoomer Digital Pathology Image Set" not in head:
        return None
    return Recognised(
        "a Hamamatsu NDPI set file (.ndpis: a list of one NDPI file per fluorescence channel, "
        "no pixels)",
        "put the .ndpi files it lists in the cohort instead (each is a slide of its own)",
        "unsupported: NDPI set file (use its .ndpi files)",
    )


def _olympus(path: Path, head: bytes) -> Recognised | None:
    if head[:3] == b"SIS" or path.suffix.lower() == ".ets":
        return Recognised(
            "an Olympus cellSens ETS pixel file (part of a VSI slide)",
            VSI_EXPORT,
            "unsupported: Olympus VSI/ETS (export as OME-TIFF)",
        )
    if path.suffix.lower() == ".vsi":
        return Recognised(
            "an Olympus cellSens VSI file (its pyramid is in the ETS files of the _<name>_ "
            "folder beside it; slidegate has no reader for them)",
            VSI_EXPORT,
            "unsupported: Olympus VSI/ETS (export as OME-TIFF)",
        )
    return None


def recognise(path: object, head: bytes) -> Recognised | None:
    """What a file that no slide reader claimed is, from its first bytes (`head`, at least
    HEAD long when the file is) and its name; None when nothing is recognised."""
    if not isinstance(path, Path):
        path = Path(str(path))
    for found in (_ndpis(path, head), _olympus(path, head)):
        if found is not None:
            return found
    if _looks_like_dataset(head) and path.is_file():
        found = _dicom_without_preamble(path)
        if found is not None:
            return found
    for offset, magic, what in OTHER_FILES:
        if head[offset : offset + len(magic)] == magic:
            return Recognised(what, NOT_A_SLIDE, f"unsupported: {what}, not a whole-slide image")
    return None


def check_header(path: SourceRef) -> None:
    """Raise Unsupported/Corrupt unless `path` starts with a TIFF header."""
    try:
        with open_binary(path) as fh:
            head = fh.read(HEAD)
    except OSError as exc:
        raise CorruptSlideError(
            f"cannot read slide {path}: {exc.strerror}; check that the file exists and is readable",
            reason="corrupt: unreadable file",
        ) from None
    if head[:4] in TIFF_MAGICS:
        return
    found = recognise(path, head)  # DICOM without preamble, NDPI set, Olympus, non-slides
    if found is not None:
        raise found.error()
    if path.suffix.lower() in TIFF_SUFFIXES:
        raise CorruptSlideError(
            f"slide {path} has a TIFF-type extension but no TIFF header (empty, truncated or "
            "damaged); restore the file from the scanner archive",
            reason="corrupt: no TIFF header",
        )
    raise UnsupportedSlideError(
        "this file is not a whole-slide format slidegate knows (no TIFF, DICOM, CZI or MRXS "
        "signature); slidegate reads SVS, NDPI, QPTIFF, Philips, Ventana BIF, Leica SCN, "
        "OME-TIFF, tiled pyramidal TIFF, DICOM WSI, Zeiss CZI and MRXS: export the slide in "
        "one of them or remove it from the cohort",
        reason="unsupported: unknown file type",
    )
