"""The frozen context of one release run, and its private work area layout."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from slidegate.errors import SpecError
from slidegate.formats.original_copy import uid_key
from slidegate.profile import Policies, load_policies
from slidegate.pseudonym import Pseudonymizer, load_or_create_key
from slidegate.registry.hashes import policy_hash, spec_hash
from slidegate.settings import Settings
from slidegate.sources import SourceRef
from slidegate.spec import CohortSlide, ResolvedSpec, load_spec, read_canaries


@dataclass(frozen=True)
class ReleaseContext:
    release: str
    profile: str
    source_root: SourceRef  # a folder, or s3://bucket/prefix
    cohort_path: Path
    target: str
    canaries_path: Path | None
    settings: Settings
    policies: Policies
    slides: tuple[CohortSlide, ...]
    #: slide_id -> slide pseudonym (computed once; the key itself stays in the work area)
    pseudonyms: dict[str, str]
    key_id: str
    #: DICOM copies' UID key, derived one-way from the pseudonym key at preparation, so workers
    #: need neither the key file nor a shared work area (never shown in a repr)
    dicom_uid_key: bytes = field(default=b"", repr=False)
    #: what the registry compares between runs of the release (spec, policies)
    spec_hash: str = ""
    policy_hash: str = ""

    # private work area: <work_dir>/releases/<release>/ ; never under the target
    @property
    def work(self) -> Path:
        return self.settings.work_dir.resolve() / "releases" / self.release

    def facts_path(self, pseudonym: str) -> Path:
        return self.work / "private" / "facts" / f"{pseudonym}.json"

    def plan_path(self, pseudonym: str) -> Path:
        return self.work / "plans" / f"{pseudonym}.json"

    def staging_path(self, pseudonym: str) -> Path:
        return self.work / "staging" / f"{pseudonym}.ome.zarr"

    @property
    def reports_dir(self) -> Path:
        return self.work / "reports"

    @property
    def key_path(self) -> Path:
        return key_path(self.settings, self.release)

    def pseudonymizer(self) -> Pseudonymizer:
        """The release key: the work area's copy of the registry's key (prepare_release)."""
        return load_or_create_key(self.key_path)

    def canaries(self) -> tuple[tuple[str, str], ...]:
        """(label, value) pairs from the spec's canaries file; labels carry no value."""
        if self.canaries_path is None:
            return ()
        try:  # read once per process and file version, not once per slide
            st = self.canaries_path.stat()
        except OSError:
            return read_canaries(self.canaries_path)  # its own error for a missing file
        return _canaries(self.canaries_path, st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=4)
def _canaries(path: Path, mtime_ns: int, size: int) -> tuple[tuple[str, str], ...]:
    return read_canaries(path)


def key_path(settings: Settings, release: str) -> Path:
    return settings.work_dir.resolve() / "releases" / release / "private" / "key"


def check_inputs(spec_path: Path, settings: Settings) -> tuple[ResolvedSpec, Policies]:
    """Every check of the spec, its cohort table, canaries and policies that needs no key, no
    server and no cluster: the CLI runs it before a flow run exists, the flow again."""
    from slidegate.cohort import check_columns, read_cohort

    resolved = load_spec(spec_path, settings)
    policies = load_policies(settings.policies_dir, resolved.spec.profile)
    columns = [str(c) for c in read_cohort(resolved.cohort_path).columns]
    check_columns(columns, policies.metadata, resolved.cohort_path)
    return resolved, policies


def prepare_release(spec_path: Path, settings: Settings) -> ReleaseContext:
    """Load and check spec, cohort and policies; create the key. Fails before any work."""
    from slidegate.registry import Registry  # SQLAlchemy + cryptography: the flow's, not a worker's
    from slidegate.registry.keys import release_key

    resolved, policies = check_inputs(spec_path, settings)
    work = settings.work_dir.resolve()
    if not resolved.target_is_s3:
        target = Path(resolved.target)
        if _overlaps(work, target):
            raise SpecError(
                f"target {target} and the private work area {work} overlap; private files "
                "must never be under a release: choose another target or SLIDEGATE_WORK_DIR"
            )
    if isinstance(resolved.source_root, Path) and _overlaps(work, resolved.source_root):
        raise SpecError(
            f"the work area {work} overlaps the read-only source folder {resolved.source_root}; "
            "set SLIDEGATE_WORK_DIR elsewhere"
        )
    key_mode = policies.profile.pseudonym_key
    study = key_mode.study if key_mode.mode == "study" else None  # stable pseudonyms
    release = resolved.spec.release
    # the registry's key of the release: the same whatever the work area
    pseudo = release_key(Registry.open(settings), release, key_path(settings, release), study)
    return ReleaseContext(
        release=resolved.spec.release,
        profile=resolved.spec.profile,
        source_root=resolved.source_root,
        cohort_path=resolved.cohort_path,
        target=resolved.target,
        canaries_path=resolved.canaries_path,
        settings=settings,
        policies=policies,
        slides=resolved.slides,
        pseudonyms={s.slide_id: pseudo("s", s.slide_id) for s in resolved.slides},
        key_id=pseudo.key_id,
        dicom_uid_key=uid_key(pseudo.key),
        spec_hash=spec_hash(resolved),
        policy_hash=policy_hash(policies),
    )


def _overlaps(a: Path, b: Path) -> bool:
    a, b = a.resolve(), b.resolve()
    return a == b or a.is_relative_to(b) or b.is_relative_to(a)
