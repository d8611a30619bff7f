"""Cross-release ledger: a private SQLite file of every published slide's fingerprints.

Fingerprints: sha256 of the decoded pixels of a level-0 tile (exact: the same slide converted
again) and a perceptual hash of the lowest level (the same slide re-encoded), plus the public
key id of the pseudonym key and a keyed hash of the source patient id (the ledger's own secret
key, kept beside the database; raw ids are never stored). Before publishing, a slide whose
fingerprint was published before under another pseudonym is flagged, and so is a patient whose
slides were published before under another key. Policy (profile `ledger:`): block or warn.

The ledger lives in the private work area (`<work_dir>/ledger/ledger.sqlite`), never under a
release.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from slidegate.pseudonym import load_or_create_key
from slidegate.risk.images import hamming
from slidegate.risk.policy import LedgerPolicy

SCHEMA = """
CREATE TABLE IF NOT EXISTS slides (
    release TEXT NOT NULL,
    slide TEXT NOT NULL,          -- slide pseudonym in that release
    key_id TEXT NOT NULL,         -- public id of the pseudonym key
    tile_sha256 TEXT NOT NULL,
    phash TEXT NOT NULL,
    patient_fp TEXT NOT NULL,     -- HMAC of the source patient id under the ledger key
    published_at TEXT NOT NULL,
    PRIMARY KEY (release, slide)
);
CREATE INDEX IF NOT EXISTS slides_tile ON slides (tile_sha256);
CREATE INDEX IF NOT EXISTS slides_patient ON slides (patient_fp);
"""


@dataclass(frozen=True)
class LedgerEntry:
    slide: str  # pseudonym in this release
    tile_sha256: str
    phash: str
    patient_fp: str


@dataclass(frozen=True)
class LedgerFlag:
    slide: str
    kind: Literal["rerelease", "patient_other_key"]
    severity: Literal["block", "warn"]
    reason: str  # publishable: release ids, pseudonyms and key ids only


def ledger_dir(work_dir: Path) -> Path:
    return work_dir.resolve() / "ledger"


class Ledger:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "ledger.sqlite"
        self._key = load_or_create_key(directory / "ledger.key").key
        with self._connect() as db:
            db.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def patient_fingerprint(self, patient_id: str) -> str:
        return hmac.new(self._key, b"patient:" + patient_id.encode(), hashlib.sha256).hexdigest()

    def _others(self, release: str) -> list[tuple[str, str, str, str, str, str]]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT release, slide, key_id, tile_sha256, phash, patient_fp FROM slides "
                "WHERE release != ?",
                (release,),
            ).fetchall()
        return [tuple(r) for r in rows]

    def check(
        self, entries: Sequence[LedgerEntry], release: str, key_id: str, policy: LedgerPolicy
    ) -> list[LedgerFlag]:
        """Flags for this release's slides against every other release in the ledger."""
        flags: list[LedgerFlag] = []
        others = self._others(release)
        for e in entries:
            for rel, slide, kid, tile, phash, _ in others:
                same = tile == e.tile_sha256 or (
                    len(phash) == len(e.phash)
                    and hamming(phash, e.phash) <= policy.phash_max_distance
                )
                if same and slide != e.slide:
                    flags.append(
                        LedgerFlag(
                            e.slide,
                            "rerelease",
                            policy.on_rerelease,
                            f"ledger: slide published before in release {rel} as {slide} "
                            f"(key {kid}); publishing it again under another pseudonym links "
                            "the releases",
                        )
                    )
                    break
            else:
                for rel, _, kid, _, _, pfp in others:
                    if pfp == e.patient_fp and kid != key_id:
                        flags.append(
                            LedgerFlag(
                                e.slide,
                                "patient_other_key",
                                policy.on_patient_other_key,
                                f"ledger: the patient has slides in release {rel} published "
                                f"under another key ({kid})",
                            )
                        )
                        break
        return flags

    def record(self, entries: Iterable[LedgerEntry], release: str, key_id: str) -> int:
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        rows = [
            (release, e.slide, key_id, e.tile_sha256, e.phash, e.patient_fp, now) for e in entries
        ]
        with self._connect() as db:
            db.executemany("INSERT OR REPLACE INTO slides VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        return len(rows)

    def releases(self) -> list[str]:
        with self._connect() as db:
            return [r[0] for r in db.execute("SELECT DISTINCT release FROM slides ORDER BY 1")]


def record_release(work_dir: Path, release_work: Path, release: str, key_id: str) -> int:
    """After publishing: record the published slides' fingerprints (written by the risk stage
    to the release's private work area). Returns the number of slides recorded."""
    import json

    path = release_work / "private" / "ledger-entries.json"
    if not path.is_file():
        return 0
    entries = [LedgerEntry(**e) for e in json.loads(path.read_text(encoding="utf-8"))]
    return Ledger(ledger_dir(work_dir)).record(entries, release, key_id)


def study_key_path(work_dir: Path, study: str) -> Path:
    """The private key store: one key file per named study, beside the ledger."""
    return ledger_dir(work_dir) / "keys" / f"{study}.key"


def install_study_key(work_dir: Path, study: str, release_key: Path) -> str:
    """Make the release use the study's key (created on first use); returns its key id.

    A release that already has a different key is refused (its pseudonyms would change)."""
    import os
    import shutil

    from slidegate.errors import PolicyError

    key = load_or_create_key(study_key_path(work_dir, study))
    if release_key.exists():
        if load_or_create_key(release_key).key_id != key.key_id:
            raise PolicyError(
                f"release key {release_key} is not the key of study {study!r}; the release was "
                "started with another key: use a new release id"
            )
        return key.key_id
    release_key.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(study_key_path(work_dir, study), release_key)
    os.chmod(release_key, 0o600)
    return key.key_id
