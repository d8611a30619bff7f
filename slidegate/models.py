"""Small frozen models passed between stages (Dask pickles them, Prefect stores them).

`SlideFacts` holds metadata *values* and therefore PHI: it lives only in the private work area
(written as JSON by the inventory stage) and is never logged, returned to Prefect or published.
Everything else here is PHI-free by construction.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

AssociatedKind = Literal["label", "macro", "thumbnail", "other"]
FieldAction = Literal["keep", "drop", "coarsen"]
SlideStatus = Literal["ok", "quarantined", "withheld", "approved"]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LevelFacts(Frozen):
    """One pyramid level as stored in the source."""

    index: int  # 0 = full resolution
    page: int  # TIFF page index (or instance/frame group for other formats)
    height: int
    width: int
    samples: int  # channels per pixel (3 for RGB)
    dtype: str  # numpy dtype name, e.g. "uint8"
    tile_height: int | None  # None for stripped pages
    tile_width: int | None
    compression: str  # e.g. "JPEG", "LZW", "NONE"
    downsample: float  # relative to level 0


class AssociatedImage(Frozen):
    """A non-pyramid image in the source: never published."""

    kind: AssociatedKind
    page: int
    height: int
    width: int
    compression: str


class MetadataField(Frozen):
    """One metadata value and where it sits. `value` may be PHI."""

    name: str  # namespaced key, e.g. "aperio.Filename", "tiff.DateTime"
    location: str  # where it sits, e.g. "page 0 tag 270 ImageDescription"
    value: str


class SlideFacts(Frozen):
    """Everything the inventory learned about one source slide. Contains PHI: keep private."""

    slide_id: str  # the cohort's `slide` column: path relative to the source root
    source_path: str  # absolute path of the source file (opened read-only)
    format: str  # "svs", "tiff", ...
    size: int
    sha256: str
    mpp_x: float | None  # micrometres per pixel at level 0
    mpp_y: float | None
    levels: tuple[LevelFacts, ...]
    associated: tuple[AssociatedImage, ...]
    fields: tuple[MetadataField, ...]

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self.model_dump_json(indent=1), encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> SlideFacts:
        return cls.model_validate_json(path.read_text(encoding="utf-8"))


class PlannedField(Frozen):
    """What the de-identification plan does with one metadata field. No source value here,
    except `output_value`, the value that will be written (kept or coarsened)."""

    name: str
    location: str
    field_class: (
        str  # e.g. "date", "device_id", "operator", "name", "free_text", "technical", "unknown"
    )
    action: FieldAction
    rule: str  # the policy rule that decided, or "default-deny"
    output_key: str | None = None
    output_value: str | None = None


class DeidPlan(Frozen):
    """Pure result of facts + policy: what to write and what to drop."""

    slide_id: str
    pseudonym: str
    format: str
    levels: tuple[LevelFacts, ...]  # the pyramid levels to write, in order
    dropped_images: tuple[AssociatedImage, ...]
    fields: tuple[PlannedField, ...]
    mpp_x: float | None
    mpp_y: float | None

    @property
    def attributes(self) -> dict[str, str]:
        """Whitelisted metadata to write into the output, key -> value."""
        return {
            f.output_key: f.output_value
            for f in self.fields
            if f.action != "drop" and f.output_key is not None and f.output_value is not None
        }


class Finding(Frozen):
    """An audit hit. Names the field (or canary id) and the output file, never the value."""

    field: str
    file: str  # path relative to the output root


class SlideSignature(Frozen):
    """What the risk model and the ledger need of a slide's published pixels, computed on the
    worker that wrote them (kilobytes, PHI-free): the linkage feature vector of the lowest
    level, its perceptual hash, and the sha256 of the central level-0 tile's decoded pixels."""

    features: tuple[float, ...]
    phash: str
    tile_sha256: str


class BurnInFinding(Frozen):
    """Text or a barcode seen in the published pixels (slidegate.burnin). Where it is and what
    it looks like, never what it says: `box` is (x0, y0, x1, y1) in the checked level's pixels,
    `shape` a category ("id-run", "date", "needle", "barcode:QR_CODE", ...)."""

    kind: Literal["text", "barcode"]
    box: tuple[int, int, int, int]
    shape: str
    score: float
    needle: bool = False  # the text is (part of) one of the slide's own PHI values: certain
    chars: int = 0


class BurnInReport(Frozen):
    """The burn-in check of one slide: the level looked at, its findings, the policy's verdict."""

    level: int  # index of the checked level in the output's pyramid (0 = full resolution)
    shape: tuple[int, int]  # (height, width) of that level
    findings: tuple[BurnInFinding, ...] = ()
    flagged: int = 0  # findings at or above the flag score
    ignored: int = 0  # OCR lines too short or too unsure to count
    seconds: float = 0.0
    action: Literal["quarantine", "review", "report"] = "report"


class SlideReport(Frozen):
    """Outcome of one slide through one stage. PHI-free: safe for Prefect and reports."""

    slide_id: str  # cohort path (operators see it in logs; not published)
    pseudonym: str
    stage: str
    status: SlideStatus
    reason: str | None = None  # publishable: category + rule, no path, no value
    format: str | None = None
    facts_path: str | None = None  # private
    output_path: str | None = None  # private staging
    copy_path: str | None = None  # private staging: the original-format copy, if written
    #: the slide's de-identification plan and audit record (PHI-free), carried back to the flow
    #: so it needs no file system shared with the workers
    plan: DeidPlan | None = None
    audit: dict[str, Any] | None = None
    #: sha256 of every output object the egress gate admitted after the audit (PHI-free);
    #: only these may be published (slidegate/egress/gate.py)
    admitted: tuple[str, ...] = ()
    levels: int = 0
    size: int = 0
    detail: dict[str, int] = {}  # counts, e.g. {"fields_dropped": 12, "images_dropped": 3}
    signature: SlideSignature | None = None  # set by the audit stage once the output passed
    #: text and barcodes seen in the published pixels (slidegate.burnin); None: not checked
    burn_in: BurnInReport | None = None
