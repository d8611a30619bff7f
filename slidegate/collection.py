"""Incremental exports of a growing collection: which slides are new since its last release.

A collection spec is a release spec with `collection:` instead of `release:`. Each export is an
ordinary release with the id `<collection>-<YYYY-MM-DD>` (release ids may not hold '/'), made
of the collection's slides not yet published. The private ledger
(`<work>/collections/<collection>/ledger.json`) records what each export published. All exports
of a collection share one pseudonym key, so a patient keeps its pseudonym across exports and the
risk of each export is scored on the whole collection so far (`published_risk_rows`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from pydantic import field_validator

from slidegate.cohort import build_release_table, read_cohort
from slidegate.errors import PolicyError, SpecError
from slidegate.models import Frozen
from slidegate.policy import StrictModel, load_yaml_model
from slidegate.pseudonym import load_or_create_key
from slidegate.spec import RELEASE_ID_RE
from slidegate.validate.policy import MetadataPolicy

#: the file a release's work area holds when it is an export of a collection: the source rows
#: of the slides the collection already published (private: it is PHI)
PUBLISHED_ROWS = Path("private") / "collection-published.csv"


class CollectionSpec(StrictModel):
    """What a steward writes for a scheduled export. Relative paths: from the spec's folder."""

    collection: str
    source: str
    cohort: str
    profile: str
    target: str
    canaries: str | None = None

    @field_validator("collection")
    @classmethod
    def _collection_id(cls, value: str) -> str:
        if not RELEASE_ID_RE.match(value) or len(value) > 100:
            raise ValueError(
                "collection id must be 1-100 letters, digits, '.', '_' or '-', starting with a "
                "letter or digit"
            )
        return value


class LedgerEntry(Frozen):
    release: str
    date: str  # ISO date of the export
    slides: tuple[str, ...]  # cohort `slide` values published (private: source paths)


class Ledger(Frozen):
    collection: str
    releases: tuple[LedgerEntry, ...] = ()

    @property
    def published(self) -> frozenset[str]:
        return frozenset(s for entry in self.releases for s in entry.slides)

    @property
    def release_ids(self) -> frozenset[str]:
        return frozenset(e.release for e in self.releases)


@dataclass(frozen=True)
class Collection:
    spec: CollectionSpec
    spec_path: Path
    work_dir: Path

    @property
    def name(self) -> str:
        return self.spec.collection

    @property
    def base(self) -> Path:
        return self.spec_path.resolve().parent

    def resolve(self, value: str) -> str:
        return value if value.startswith("s3://") else str((self.base / value).resolve())

    @property
    def home(self) -> Path:
        """Private: ledger, key, export specs. Never under a target."""
        return self.work_dir.resolve() / "collections" / self.name

    @property
    def ledger_path(self) -> Path:
        return self.home / "ledger.json"

    @property
    def key_path(self) -> Path:
        return self.home / "private" / "key"

    def ledger(self) -> Ledger:
        if not self.ledger_path.is_file():
            return Ledger(collection=self.name)
        try:
            return Ledger.model_validate_json(self.ledger_path.read_text(encoding="utf-8"))
        except ValueError:
            raise PolicyError(
                f"collection ledger {self.ledger_path} is unreadable; restore it from backup "
                "(without it every slide counts as new)"
            ) from None


def load_collection(spec_path: Path, work_dir: Path) -> Collection:
    try:
        spec = load_yaml_model(spec_path, CollectionSpec)
    except PolicyError as exc:
        raise SpecError(str(exc).replace("policy file", "collection spec")) from None
    return Collection(spec=spec, spec_path=spec_path, work_dir=work_dir)


def new_slides(cohort_slides: Sequence[str], published: Iterable[str]) -> list[str]:
    """The cohort's slides not yet published, in cohort order."""
    done = set(published)
    return [s for s in cohort_slides if s not in done]


def export_release_id(collection: str, day: dt.date, taken: Iterable[str]) -> str:
    """`<collection>-<YYYY-MM-DD>`, then `.2`, `.3`... when that day already has an export."""
    base = f"{collection}-{day.isoformat()}"
    used = set(taken)
    if base not in used:
        return base
    n = 2
    while f"{base}.{n}" in used:
        n += 1
    return f"{base}.{n}"


@dataclass(frozen=True)
class ExportPlan:
    release: str
    spec_path: Path  # the release spec written for this export (private work area)
    new: tuple[str, ...]  # slides to process in this export
    published_before: int


def plan_export(
    coll: Collection, day: dt.date, release_work: Path, taken_releases: Iterable[str] = ()
) -> ExportPlan:
    """Write the export's release spec and cohort subset; install the collection key.

    `release_work` is `<work>/releases` (where the release's private area will be);
    `taken_releases` are release ids that already exist outside the ledger.
    """
    ledger = coll.ledger()
    table = read_cohort(Path(coll.resolve(coll.spec.cohort)))
    if "slide" not in table:
        raise SpecError(f"cohort table {coll.spec.cohort} has no `slide` column; add one")
    slides = [str(s) for s in table["slide"].tolist()]
    todo = new_slides(slides, ledger.published)
    release = export_release_id(coll.name, day, set(taken_releases) | ledger.release_ids)
    folder = coll.home / "exports" / release
    folder.mkdir(parents=True, exist_ok=True)
    spec_path = folder / "release.yaml"
    lines = {
        "release": release,
        "source": coll.resolve(coll.spec.source),
        "cohort": str(folder / "cohort.csv"),
        "profile": coll.spec.profile,
        "target": coll.resolve(coll.spec.target),
    }
    if coll.spec.canaries:
        lines["canaries"] = coll.resolve(coll.spec.canaries)
    if todo:
        table[table["slide"].isin(todo)].to_csv(folder / "cohort.csv", index=False)
        spec_path.write_text(
            "".join(f"{k}: {json.dumps(v)}\n" for k, v in lines.items()), encoding="utf-8"
        )
        private = release_work / release / "private"
        private.mkdir(parents=True, exist_ok=True)
        key = load_or_create_key(coll.key_path)  # one key for the whole collection
        if not (private / "key").exists():
            shutil.copyfile(coll.key_path, private / "key")
            os.chmod(private / "key", 0o600)
        elif load_or_create_key(private / "key").key_id != key.key_id:
            raise PolicyError(
                f"release {release} already has a pseudonym key that is not the collection's; "
                f"remove {release_work / release} (a failed earlier attempt) and export again"
            )
        table[table["slide"].isin(ledger.published)].to_csv(
            release_work / release / PUBLISHED_ROWS, index=False
        )
    return ExportPlan(
        release=release,
        spec_path=spec_path,
        new=tuple(todo),
        published_before=len(slides) - len(todo),
    )


def record_export(coll: Collection, release: str, day: dt.date, slides: Iterable[str]) -> Ledger:
    """Add what an export published to the ledger (atomic replace)."""
    ledger = coll.ledger()
    entry = LedgerEntry(release=release, date=day.isoformat(), slides=tuple(sorted(set(slides))))
    updated = Ledger(collection=coll.name, releases=(*ledger.releases, entry))
    coll.ledger_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = coll.ledger_path.with_suffix(".tmp")
    tmp.write_text(updated.model_dump_json(indent=1), encoding="utf-8")
    tmp.replace(coll.ledger_path)
    return updated


def published_slide_ids(slides_json: Path, pseudonyms: dict[str, str]) -> list[str]:
    """Slides an export published: approved in its `slides.json` (pseudonym -> slide id)."""
    by_pseudonym = {p: s for s, p in pseudonyms.items()}
    rows = json.loads(slides_json.read_text(encoding="utf-8"))
    return sorted(
        by_pseudonym[r["slide"]]
        for r in rows
        if r.get("status") == "approved" and r["slide"] in by_pseudonym
    )


def published_risk_rows(
    release_work: Path, policy: MetadataPolicy, pseudonymize: Callable[[str, str], str]
) -> pd.DataFrame | None:
    """The released-table rows of slides the collection already published, for risk scoring.

    None when the release is not a collection export (no published-rows file in its work area).
    `pseudonymize` is the release's Pseudonymizer (the collection key).
    """
    path = release_work / PUBLISHED_ROWS
    if not path.is_file():
        return None
    rows = read_cohort(path)
    if rows.empty:
        return None
    return build_release_table(rows, policy, pseudonymize).table


def at_risk_published(risk_json: Path, published_patients: Iterable[str]) -> list[str]:
    """Already-published patient pseudonyms that the latest risk report puts over the limit."""
    report = json.loads(risk_json.read_text(encoding="utf-8"))
    above = {p["patient"] for p in report.get("patients", []) if p.get("decision") == "withheld"}
    if isinstance(report.get("withheld_patients"), list):
        above |= set(report["withheld_patients"])
    return sorted(above & set(published_patients))
