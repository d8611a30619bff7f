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
#: a profile is named, never a path: policies/profiles/<name>.yaml
PROFILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
#: names a release folder must not take: files of the target layout, and device names that a
#: Windows (or SMB-mounted) file system cannot hold as a folder
RESERVED_RELEASE_IDS = frozenset(
    {"manifest.json", "sha256sums", "releases", "index.json", "registry", "ledger.json"}
    | {"con", "prn", "aux", "nul", "clock$", "conin$", "conout$"}
    | {f"{dev}{n}" for dev in ("com", "lpt") for n in "0123456789¹²³"}
)
#: the canaries file is a small drill list; anything bigger is not one
MAX_CANARIES_BYTES = 1 << 20


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
        stem = value.split(".", 1)[0].lower()
        if value.lower() in RESERVED_RELEASE_IDS or stem in RESERVED_RELEASE_IDS:
            raise ValueError(
                f"release id {value!r} is a reserved name (a file of the target layout or a "
                "device name); choose another id"
            )
        if value.endswith("."):
            raise ValueError("release id must not end with '.'")
        return value

    @field_validator("profile")
    @classmethod
    def _profile_name(cls, value: str) -> str:
        if not PROFILE_RE.match(value):
            raise ValueError(
                "profile must be a profile name (letters, digits, '_', '-'), not a path: "
                "profiles are looked up in the policy library's profiles/ folder"
            )
        return value

    @field_validator("target")
    @classmethod
    def _target_scheme(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("target is empty; give a folder or s3://bucket/prefix")
        if "://" in value and not value.startswith(("s3://", "file://")):
            scheme = value.split("://", 1)[0]
            raise ValueError(
                f"unsupported target scheme '{scheme}://'; use a folder path or s3://bucket/prefix"
            )
        if value.startswith("s3://") and not value[len("s3://") :].split("/", 1)[0]:
            raise ValueError("target s3:// URL has no bucket name; use s3://bucket/prefix")
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
    target = (
        spec.target
        if spec.target.startswith("s3://")
        else str((base / spec.target.removeprefix("file://")).resolve())
    )
    if not is_s3(target):
        _check_local_target(Path(target), path)
    if isinstance(source_root, Path) and not is_s3(target) and _inside(Path(target), source_root):
        raise SpecError(
            f"release spec {path}: target {target} is inside the source folder; sources are "
            "read-only, choose a target elsewhere"
        )
    canaries = (base / spec.canaries).resolve() if spec.canaries else None
    if canaries is not None and not canaries.is_file():
        raise SpecError(f"release spec {path}: canaries file {canaries} does not exist")
    if canaries is not None:
        read_canaries(canaries)  # parsed and its shape checked now, not after the conversion
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


def _check_local_target(target: Path, spec_path: Path) -> None:
    """The target is a folder (or does not exist yet, under a folder we can create it in)."""
    if target.exists() and not target.is_dir():
        raise SpecError(
            f"release spec {spec_path}: target {target} exists and is not a folder; give a "
            "folder (it is created if missing) or s3://bucket/prefix",
            reason="target is not a folder",
        )
    parent = target
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise SpecError(
            f"release spec {spec_path}: target {target} cannot be created: {parent} is not a "
            "folder",
            reason="target is not a folder",
        )


def read_canaries(path: Path) -> tuple[tuple[str, str], ...]:
    """The canaries drill file: JSON, `{"canaries": [{"value": ..., "field": ...}, ...]}` (or
    the bare list). Returns (label, value) pairs; a file of another shape is a SpecError naming
    the problem, never a value."""
    import json

    where = f"canaries file {path}"
    try:
        if not path.is_file():
            raise SpecError(f"{where} is not a regular file; give a JSON file")
        with path.open("rb") as fh:
            raw = fh.read(MAX_CANARIES_BYTES + 1)
    except OSError as exc:
        raise SpecError(f"{where} cannot be read ({exc.strerror}); check the path") from None
    if len(raw) > MAX_CANARIES_BYTES:
        raise SpecError(f"{where} is larger than {MAX_CANARIES_BYTES} bytes; not a drill list")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise SpecError(
            f"{where} is not UTF-8 JSON; write it as "
            '{"canaries": [{"field": "...", "value": "..."}]}',
            reason="canaries file is not JSON",
        ) from None
    items = data.get("canaries") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise SpecError(
            f"{where} must hold a list under 'canaries' (or be a list); got {type(items).__name__}",
            reason="canaries file has the wrong shape",
        )
    out = []
    for n, item in enumerate(items, start=1):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("value"), (str, int, float))
            or isinstance(item.get("value"), bool)
            or not isinstance(item.get("field", "value"), str)
        ):
            raise SpecError(
                f"{where}, entry {n}: each canary must be an object with a text 'value' (and "
                "an optional text 'field')",
                reason="canaries file has the wrong shape",
            )
        if str(item["value"]).strip():
            out.append((f"canary:{item.get('field', 'value')}", str(item["value"])))
    return tuple(out)


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
