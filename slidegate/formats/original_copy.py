"""The optional second output: a de-identified copy of a slide in its original format.

SVS -> `<pseudonym>.svs`, generic TIFF -> `<pseudonym>.tiff` (formats/tiff_copy.py), DICOM ->
`<pseudonym>.dcm/` (a folder of instances, formats/dicom_copy.py). Other formats have no copy
writer: `copy_suffix` is None and the slide is released without a copy.
"""

from __future__ import annotations

import hashlib
import hmac
import shutil
from pathlib import Path

from slidegate.formats.dicom_copy import write_dicom_copy
from slidegate.formats.tiff_copy import SUFFIXES, CopyNotPossible, write_tiff_copy
from slidegate.models import DeidPlan
from slidegate.sources import SourceRef

#: format -> suffix of the copy's file (or folder, for DICOM)
COPY_SUFFIXES = {**SUFFIXES, "dicom": ".dcm"}


def copy_suffix(fmt: str) -> str | None:
    return COPY_SUFFIXES.get(fmt)


def uid_key(pseudonym_key: bytes) -> bytes:
    """The DICOM UID remapping key, derived from the release's pseudonym key (one-way)."""
    return hmac.new(pseudonym_key, b"slidegate-dicom-uid", hashlib.sha256).digest()


def write_original_copy(source: SourceRef, plan: DeidPlan, out: Path, dicom_uid_key: bytes) -> int:
    """Write the copy to `out` (named with `copy_suffix(plan.format)`); return its size.
    `dicom_uid_key` remaps DICOM UIDs (`uid_key` of the release's pseudonym key). Raises
    CopyNotPossible for a format or level that cannot be copied."""
    if plan.format != "dicom":
        return write_tiff_copy(source, plan, out)
    if not isinstance(source, Path):  # S3 DICOM sources are fetched to scratch first
        raise CopyNotPossible("a DICOM copy needs a local source", reason="source not local")
    shutil.rmtree(out, ignore_errors=True)  # a rerun starts from an empty folder
    try:
        files = write_dicom_copy(source, plan, out, dicom_uid_key)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    return sum(f.stat().st_size for f in files)
