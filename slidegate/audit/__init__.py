"""Leak audit of a staged output: raw byte search for known PHI, then an independent re-open.

`audit_output` is what the audit stage calls; any finding or problem quarantines the slide.
The result names fields, files and levels, never values: it is safe to report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import tifffile

from slidegate.audit.needles import Needles, phi_needles
from slidegate.audit.reopen import Conversion, verify_output
from slidegate.audit.scan import scan_tree
from slidegate.audit.vendor_pixels import czi_sniff, mrxs_sniff
from slidegate.formats.dicom_layout import sniff as dicom_sniff
from slidegate.models import DeidPlan, Finding, SlideFacts
from slidegate.sources import SourceRef, open_binary

__all__ = ["AuditResult", "Needles", "audit_output", "phi_needles", "scan_tree", "verify_output"]


@dataclass(frozen=True)
class AuditResult:
    ok: bool
    findings: tuple[Finding, ...]
    problems: tuple[str, ...]
    needles: int  # number of values searched for
    skipped: dict[str, int] = field(default_factory=dict)  # field -> values not searched
    pixels_checked: bool = True  # False when no independent reader opens the source

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())


def _readable(source: SourceRef) -> bool:
    """An independent reader of the audit opens this source (a local path for DICOM, CZI and
    MRXS: S3 objects of those formats are fetched to scratch first; TIFF family anywhere)."""
    if isinstance(source, Path) and (
        dicom_sniff(source) or czi_sniff(source) or mrxs_sniff(source)
    ):
        return True
    try:
        with open_binary(source) as fh, tifffile.TiffFile(fh):
            return True
    except Exception:
        return False


def audit_output(
    out: Path,
    facts: SlideFacts,
    plan: DeidPlan,
    canaries: Sequence[tuple[str, str]] = (),
    *,
    tolerance: int = 0,
    conversion: Conversion | None = None,
    source: SourceRef | None = None,
) -> AuditResult:
    """Scan every byte under `out` for the PHI values of `facts` that `plan` removes (and the
    canaries), then re-open `out` and compare it with the plan and the source pixels, as
    written with `conversion` (the profile's mode, quality, pyramid; default pass-through).
    The source is read from `source` when given (a local copy or an S3 object), else from
    `facts.source_path`."""
    needles = phi_needles(facts, plan, canaries)
    # the canaries are the same for every slide of the release: compiled once per process
    # (by their final labels: repeated ones are numbered `canary:x#2`, `#3`...)
    own, shared = needles.split()
    findings = scan_tree(out, own, shared=shared)
    source = Path(facts.source_path) if source is None else source
    readable = _readable(source)
    problems = verify_output(
        out, plan, source, tolerance=tolerance, compare_pixels=readable, conversion=conversion
    )
    return AuditResult(
        ok=not findings and not problems,
        findings=findings,
        problems=tuple(problems),
        needles=len(needles),
        skipped=dict(needles.skipped),
        pixels_checked=readable,
    )
