"""The release spec (YAML) and the cohort's slide list, checked before any work starts."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import field_validator

from slidegate import sources
from slidegate.errors import PolicyError, SpecError, TransientIOError
from slidegate.policy import StrictModel, load_yaml_model
from slidegate.settings import Settings
from slidegate.sources import S3Ref, SourceRef, is_s3, parse_s3

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
    path: SourceRef  # a local path, or the object (or folder-like prefix) on S3


@dataclass(frozen=True)
class ResolvedSpec:
    spec: ReleaseSpec
    source_root: SourceRef  # a folder, or s3://bucket/prefix
    cohort_path: Path
    target: str  # absolute folder path or s3://bucket/prefix
    canaries_path: Path | None
    slides: tuple[CohortSlide, ...]

    @property
    def target_is_s3(self) -> bool:
        return self.target.startswith("s3://")


def load_spec(path: Path, settings: Settings | None = None) -> ResolvedSpec:
    """Load and check a release spec and its cohort table; every problem is a SpecError.
    `settings` give the S3 endpoint for a source on S3 (listed here, before any work)."""
    from slidegate.cohort import read_cohort  # cohort parsing lives with the table rules

    try:
        spec = load_yaml_model(path, ReleaseSpec)
    except PolicyError as exc:  # same strict loader; re-label its errors as spec errors
        raise SpecError(str(exc).replace("policy file", "release spec")) from None
    base = path.resolve().parent
    source_root: SourceRef
    if is_s3(spec.source):
        source_root = parse_s3(spec.source, settings or Settings())
    else:
        source_root = (base / spec.source).resolve()
        if not source_root.is_dir():
            raise SpecError(f"release spec {path}: source folder {source_root} does not exist")
    cohort_path = (base / spec.cohort).resolve()
    if not cohort_path.is_file():
        raise SpecError(f"release spec {path}: cohort table {cohort_path} does not exist")
    target = spec.target if spec.target.startswith("s3://") else str((base / spec.target).resolve())
    if isinstance(source_root, Path) and not is_s3(target) and _inside(Path(target), source_root):
        raise SpecError(
            f"release spec {path}: target {target} is inside the source folder; sources are "
            "read-only, choose a target elsewhere"
        )
    canaries = (base / spec.canaries).resolve() if spec.canaries else None
    if canaries is not None and not canaries.is_file():
        raise SpecError(f"release spec {path}: canaries file {canaries} does not exist")
    table = read_cohort(cohort_path)
    ids = table["slide"].tolist() if "slide" in table else None
    return ResolvedSpec(
        spec=spec,
        source_root=source_root,
        cohort_path=cohort_path,
        target=target,
        canaries_path=canaries,
        slides=check_slides(ids, source_root, cohort_path)
        if isinstance(source_root, Path)
        else check_s3_slides(ids, source_root, cohort_path),
    )


def _check_column(slide_ids: list[str] | None, cohort_path: Path) -> list[str]:
    if slide_ids is None:
        raise SpecError(f"cohort table {cohort_path} has no `slide` column; add one")
    if not slide_ids:
        raise SpecError(f"cohort table {cohort_path} has no rows; nothing to release")
    return slide_ids


def check_slides(
    slide_ids: list[str] | None, source_root: Path, cohort_path: Path
) -> tuple[CohortSlide, ...]:
    """Every row names an existing file inside the source folder, once."""
    slide_ids = _check_column(slide_ids, cohort_path)
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


def check_s3_slides(
    slide_ids: list[str] | None, source_root: S3Ref, cohort_path: Path
) -> tuple[CohortSlide, ...]:
    """The same checks for a source on S3, from one listing of the prefix: every row names an
    object (or a folder-like prefix: DICOM series, MRXS folder) under it, once."""
    slide_ids = _check_column(slide_ids, cohort_path)
    try:
        keys = sources.list_keys(source_root)
    except TransientIOError as exc:
        raise SpecError(f"source {source_root}: {exc}") from None
    objects = set(keys)
    folders = {parent for k in keys for parent in _parents(k)}
    seen: dict[str, int] = {}
    slides = []
    for row, slide_id in enumerate(slide_ids, start=1):
        where = f"cohort table {cohort_path}, row {row}"
        rel = posixpath.normpath(slide_id.strip()) if slide_id.strip() else ""
        if not rel:
            raise SpecError(f"{where}: empty `slide` value; give the slide's path")
        if rel.startswith(("/", "../")) or rel == "..":
            raise SpecError(
                f"{where}: slide path points outside the source {source_root}; use a path "
                "relative to the source prefix"
            )
        if rel not in objects and rel not in folders:
            raise SpecError(
                f"{where}: slide {source_root.child(rel)} does not exist; upload it or fix the path"
            )
        if rel in seen:
            raise SpecError(
                f"{where}: duplicate slide, the same object as row {seen[rel]}; list each slide "
                "once"
            )
        seen[rel] = row
        slides.append(CohortSlide(row=row, slide_id=slide_id, path=source_root.child(rel)))
    return tuple(slides)


def _parents(key: str) -> Iterator[str]:
    while (key := posixpath.dirname(key)) != "":
        yield key


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True
