"""Cross-release ledger: every published slide's fingerprints, in the steward registry.

Fingerprints: sha256 of the decoded pixels of a level-0 tile (exact: the same slide converted
again) and a perceptual hash of the lowest level (the same slide re-encoded), plus the public
key id of the pseudonym key and a keyed hash of the source patient id (the ledger's own secret
key, sealed in the registry; raw ids are never stored). Before publishing, a slide whose
fingerprint was published before under another pseudonym is flagged, and so is a patient whose
slides were published before under another key. Policy (profile `ledger:`): block or warn.

The ledger lives in the steward registry (`slidegate.registry`: SQLite in the per-user data
folder, or PostgreSQL), shared by every run whatever its work area; never under a release.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from slidegate.registry import Registry
from slidegate.registry.keys import release_key
from slidegate.risk.images import hamming
from slidegate.risk.policy import LedgerPolicy


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


class Ledger:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._key = registry.secret("ledger")

    @classmethod
    def open(cls, settings: Any) -> Ledger:
        return cls(Registry.open(settings))

    def patient_fingerprint(self, patient_id: str) -> str:
        return hmac.new(self._key, b"patient:" + patient_id.encode(), hashlib.sha256).hexdigest()

    def _others(self, release: str) -> list[tuple[str, str, str, str, str, str]]:
        return self.registry.ledger_rows(exclude_release=release)

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

    def record(
        self,
        entries: Iterable[LedgerEntry],
        release: str,
        key_id: str,
        status: str = "publishing",
    ) -> int:
        """The entries as published in `release`, with the release's status, in one
        transaction (a rerun replaces the release's rows)."""
        rows = [asdict(e) for e in entries]
        return self.registry.record_published(release, key_id, rows, status)

    def releases(self) -> list[str]:
        return self.registry.ledger_releases()


def record_release(
    settings: Any, release_work: Path, release: str, key_id: str, status: str = "publishing"
) -> int:
    """Before the manifest: record the slides about to be published (written by the risk stage
    to the release's private work area) and the release's status. Returns the number of
    slides recorded."""
    path = release_work / "private" / "ledger-entries.json"
    entries = []
    if path.is_file():
        entries = [LedgerEntry(**e) for e in json.loads(path.read_text(encoding="utf-8"))]
    return Ledger.open(settings).record(entries, release, key_id, status)


def install_study_key(settings: Any, study: str, release_key_copy: Path, release: str) -> str:
    """Make the release use the study's key (created on first use in the registry); returns
    its key id. A release that already has a different key is refused (its pseudonyms would
    change)."""
    return release_key(Registry.open(settings), release, release_key_copy, study).key_id
