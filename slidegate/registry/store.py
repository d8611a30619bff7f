"""The steward registry: one store for what must outlive a run (DESIGN: registry).

Every write is one transaction: a process killed at any point leaves each record whole or
absent. What it holds is PHI-free: pseudonyms, key ids, keyed fingerprints, hashes; key
material only sealed under the registry key (`crypto.py`)."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import SecretStr
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from slidegate.errors import SpecError
from slidegate.registry import crypto
from slidegate.registry.engine import describe, engine_for, normalise_url, sqlite_path
from slidegate.registry.schema import approvals, keys, ledger_slides, releases, slide_state

#: release statuses that mean "published (or being published) into its target"
PUBLISHED = ("publishing", "complete", "imported")


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class Registry:
    def __init__(self, url: str, key: SecretStr | None = None) -> None:
        self.url = normalise_url(url)
        self.engine = engine_for(self.url)
        self._given = key
        self._master: bytes | None = None

    @classmethod
    def open(cls, settings: Any) -> Registry:
        """The registry of `settings` (registry_url, registry_key)."""
        return cls(settings.registry_url, settings.registry_key)

    def describe(self) -> str:
        return describe(self.url)

    def __repr__(self) -> str:
        return f"Registry({self.describe()})"

    # keys -----------------------------------------------------------------------------------
    def _master_key(self) -> bytes:
        if self._master is None:
            if self._given is not None:
                self._master = crypto.parse_key(self._given.get_secret_value(), "the settings")
            elif (path := sqlite_path(self.url)) is not None:
                self._master = crypto.key_file(path.with_name(path.name + ".key"))
            else:
                raise SpecError(
                    f"the registry at {self.describe()} needs a key to store pseudonym keys: "
                    "set SLIDEGATE_REGISTRY_KEY (64 hex digits) or a Prefect Secret block "
                    "(SLIDEGATE_REGISTRY_KEY_BLOCK)"
                )
        return self._master

    def require_key(self) -> None:
        """Fail now (not in a flow run) when the registry key is missing or malformed."""
        self._master_key()

    def get_secret(self, name: str) -> bytes | None:
        with self.engine.begin() as conn:
            row = conn.execute(
                select(keys.c.nonce, keys.c.ciphertext).where(keys.c.name == name)
            ).first()
        return None if row is None else crypto.unseal(self._master_key(), name, *row)

    def put_secret(self, name: str, value: bytes, key_id: str) -> bytes:
        """Store `value` under `name` unless a value is there already; returns the stored one
        (two processes creating the same key at once agree on one)."""
        nonce, sealed = crypto.seal(self._master_key(), name, value)
        try:
            with self.engine.begin() as conn:
                row = conn.execute(select(keys.c.name).where(keys.c.name == name)).first()
                if row is None:
                    conn.execute(
                        insert(keys).values(
                            name=name,
                            key_id=key_id,
                            nonce=nonce,
                            ciphertext=sealed,
                            created_at=now(),
                        )
                    )
                    return value
        except IntegrityError:
            pass
        stored = self.get_secret(name)
        assert stored is not None
        return stored

    def secret(self, name: str) -> bytes:
        """The secret `name`, created (32 random bytes) on first use."""
        found = self.get_secret(name)
        if found is not None:
            return found
        return self.put_secret(name, secrets.token_bytes(32), "")

    # releases -------------------------------------------------------------------------------
    def release(self, release: str) -> dict[str, Any] | None:
        with self.engine.begin() as conn:
            row = conn.execute(select(releases).where(releases.c.release == release)).first()
        return None if row is None else dict(row._mapping)

    def start_release(
        self, release: str, target: str, spec_hash: str, policy_hash: str, key_id: str
    ) -> dict[str, Any]:
        """Record a run of `release` (new, or a rerun of the same spec). A release published
        (or being published) with another spec or into another target is refused."""
        stamp = now()
        values = {
            "target": target,
            "spec_hash": spec_hash,
            "policy_hash": policy_hash,
            "key_id": key_id,
            "updated_at": stamp,
        }
        with self.engine.begin() as conn:
            row = conn.execute(select(releases).where(releases.c.release == release)).first()
            if row is None:
                conn.execute(
                    insert(releases).values(
                        release=release,
                        status="running",
                        decisions="{}",
                        created_at=stamp,
                        **values,
                    )
                )
                return {"release": release, "status": "running", **values}
            old = dict(row._mapping)
            if old["status"] in PUBLISHED and (
                old["spec_hash"] != spec_hash or old["target"] != target
            ):
                raise SpecError(
                    f"release {release!r} was already published (registry status "
                    f"{old['status']}) from another spec or into another target; a release is "
                    "immutable: choose a new release id"
                )
            if old["status"] not in PUBLISHED:
                conn.execute(
                    update(releases)
                    .where(releases.c.release == release)
                    .values(status="running", **values)
                )
                old.update(values, status="running")
            return old

    def set_status(
        self,
        release: str,
        status: str,
        *,
        decisions: Mapping[str, Any] | None = None,
        manifest_sha256: str | None = None,
    ) -> None:
        values: dict[str, Any] = {"status": status, "updated_at": now()}
        if decisions is not None:
            values["decisions"] = json.dumps(decisions, sort_keys=True)
        if manifest_sha256 is not None:
            values["manifest_sha256"] = manifest_sha256
        with self.engine.begin() as conn:
            conn.execute(update(releases).where(releases.c.release == release).values(**values))

    def known_releases(self, target: str) -> set[str]:
        """Release ids the registry knows as published into `target`."""
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(releases.c.release).where(
                    releases.c.target == target, releases.c.status.in_(PUBLISHED)
                )
            )
            return {r[0] for r in rows}

    def import_releases(self, target: str, found: Mapping[str, str]) -> list[str]:
        """Record releases found in `target` (release id -> key id) that the registry does not
        know; returns those added. Their slides' fingerprints are not known."""
        added = []
        stamp = now()
        with self.engine.begin() as conn:
            for release, key_id in sorted(found.items()):
                exists = conn.execute(
                    select(releases.c.release).where(releases.c.release == release)
                ).first()
                if exists is None:
                    conn.execute(
                        insert(releases).values(
                            release=release,
                            target=target,
                            spec_hash="",
                            policy_hash="",
                            key_id=key_id,
                            status="imported",
                            decisions="{}",
                            created_at=stamp,
                            updated_at=stamp,
                        )
                    )
                    added.append(release)
        return added

    def record_approval(self, release: str, decision: str, approver: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(approvals).values(
                    release=release, decision=decision, approver=approver, at=now()
                )
            )

    def approvals(self, release: str) -> list[dict[str, Any]]:
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(approvals).where(approvals.c.release == release).order_by(approvals.c.id)
            )
            return [dict(r._mapping) for r in rows]

    # ledger ---------------------------------------------------------------------------------
    def ledger_rows(self, exclude_release: str) -> list[tuple[str, str, str, str, str, str]]:
        c = ledger_slides.c
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(c.release, c.slide, c.key_id, c.tile_sha256, c.phash, c.patient_fp)
                .where(c.release != exclude_release)
                .order_by(c.release, c.slide)
            )
            return [tuple(r) for r in rows]

    def record_published(
        self, release: str, key_id: str, rows: Iterable[Mapping[str, str]], status: str
    ) -> int:
        """The release's ledger rows and its status in one transaction."""
        stamp = now()
        values = [{**r, "release": release, "key_id": key_id, "published_at": stamp} for r in rows]
        with self.engine.begin() as conn:
            conn.execute(delete(ledger_slides).where(ledger_slides.c.release == release))
            if values:
                conn.execute(insert(ledger_slides), values)
            conn.execute(
                update(releases)
                .where(releases.c.release == release)
                .values(status=status, updated_at=stamp)
            )
        return len(values)

    def ledger_releases(self) -> list[str]:
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(ledger_slides.c.release).distinct().order_by(ledger_slides.c.release)
            )
            return [r[0] for r in rows]

    # slide state (resume) ---------------------------------------------------------------------
    def save_slide_state(self, release: str, slide: str, **values: str) -> None:
        where = (slide_state.c.release == release) & (slide_state.c.slide == slide)
        with self.engine.begin() as conn:
            conn.execute(delete(slide_state).where(where))
            conn.execute(
                insert(slide_state).values(release=release, slide=slide, updated_at=now(), **values)
            )

    def slide_states(self, release: str) -> dict[str, dict[str, Any]]:
        with self.engine.begin() as conn:
            rows = conn.execute(select(slide_state).where(slide_state.c.release == release))
            return {r.slide: dict(r._mapping) for r in rows}
