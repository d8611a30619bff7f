"""The release spec (YAML) and the cohort's slide list, checked before any work starts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import field_validator

from slidegate.errors import PolicyError, SpecError
from slidegate.policy import StrictModel, load_yaml_model

RELEASE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class ReleaseSpec(StrictModel):
    """What a steward writes. Relative paths are relative to the spec file's folder."""

    release: str
    source: str
    cohort: str
    profile: str
    target: str
    #: optional drill file of planted values (synthetic cohorts); each must be absent from output
    canaries: str | None = None
    #: optional Dask cluster spec by name (deploy/dask/<name>.yaml); the CLI's flags win
    cluster: str | None = None

    @field_validator("release")
    @classmethod
    def _release_id(cls, value: str) -> str:
        if not RELEASE_ID_RE.match(value):
            raise ValueError(
                "release id must be 1-128 letters, digits, '.', '_' or '-', starting with a "
                "letter or digit"
            )
        return value


@dataclass(frozen=True)
class CohortSlide:
    """One slide of the cohort: its id (the cohort's `slide` column) and absolute path."""

    row: int  # 1-based data row number in cohort.csv (header excluded)
    slide_id: str
    path: Path


@dataclass(frozen=True)
class ResolvedSpec:
    spec: ReleaseSpec
    source_root: Path
    cohort_path: Path
    target: str  # absolute folder path or s3://bucket/prefix
    canaries_path: Path | None
    slides: tuple[CohortSlide, ...]

    @property
    def target_is_s3(self) -> bool:
        return self.target.startswith("s3://")


def load_spec(path: Path) -> ResolvedSpec:
    """Load and check a release spec and its cohort table; every problem is a SpecError."""
    from slidegate.cohort import read_cohort  # cohort parsing lives with the table rules

    try:
        spec = load_yaml_model(path, ReleaseSpec)
    except PolicyError as exc:  # same strict loader; re-label its errors as spec errors
        raise SpecError(str(exc).replace("policy file", "release spec")) from None
    base = path.resolve().parent
    if spec.source.startswith("s3://"):
        raise SpecError(
            f"release spec {path}: sources on S3 are not supported yet; copy the slides to a "
            "local folder and point `source` at it"
        )
    source_root = (base / spec.source).resolve()
    if not source_root.is_dir():
        raise SpecError(f"release spec {path}: source folder {source_root} does not exist")
    cohort_path = (base / spec.cohort).resolve()
    if not cohort_path.is_file():
        raise SpecError(f"release spec {path}: cohort table {cohort_path} does not exist")
    target = spec.target if spec.target.startswith("s3://") else str((base / spec.target).resolve())
    if not target.startswith("s3://") and _inside(Path(target), source_root):
        raise SpecError(
            f"release spec {path}: target {target} is inside the source folder; sources are "
            "read-only, choose a target elsewhere"
        )
    canaries = (base / spec.canaries).resolve() if spec.canaries else None
    if canaries is not None and not canaries.is_file():
        raise SpecError(f"release spec {path}: canaries file {canaries} does not exist")
    table = read_cohort(cohort_path)
    return ResolvedSpec(
        spec=spec,
        source_root=source_root,
        cohort_path=cohort_path,
        target=target,
        canaries_path=canaries,
        slides=check_slides(
            table["slide"].tolist() if "slide" in table else None, source_root, cohort_path
        ),
    )


def check_slides(
    slide_ids: list[str] | None, source_root: Path, cohort_path: Path
) -> tuple[CohortSlide, ...]:
    """Every row names an existing file inside the source folder, once."""
    if slide_ids is None:
        raise SpecError(f"cohort table {cohort_path} has no `slide` column; add one")
    if not slide_ids:
        raise SpecError(f"cohort table {cohort_path} has no rows; nothing to release")
    seen: dict[Path, int] = {}
    slides = []
    for row, slide_id in enumerate(slide_ids, start=1):
        where = f"cohort table {cohort_path}, row {row}"
        if not slide_id.strip():
            raise SpecError(f"{where}: empty `slide` value; give the slide's path")
        candidate = (source_root / slide_id).resolve()
        if not _inside(candidate, source_root):
            raise SpecError(
                f"{where}: slide path points outside the source folder {source_root}; "
                "use a path relative to the source folder"
            )
        if not candidate.exists():  # a file, or a folder for multi-file slides (DICOM series)
            raise SpecError(f"{where}: slide {candidate} does not exist; fix the path")
        if candidate in seen:
            raise SpecError(
                f"{where}: duplicate slide, the same file as row {seen[candidate]}; "
                "list each slide once"
            )
        seen[candidate] = row
        slides.append(CohortSlide(row=row, slide_id=slide_id, path=candidate))
    return tuple(slides)


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True
