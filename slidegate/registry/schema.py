"""The registry's tables (SQLAlchemy Core). Alembic migrations in `migrations/` create them;
this module is what the code reads and writes through. PHI-free: pseudonyms, key ids, keyed
fingerprints, hashes and release ids; key material only encrypted."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

#: the cross-release ledger: one row per published slide
ledger_slides = Table(
    "ledger_slides",
    metadata,
    Column("release", String(200), primary_key=True),
    Column("slide", String(40), primary_key=True),  # slide pseudonym in that release
    Column("key_id", String(40), nullable=False),  # public id of the pseudonym key
    Column("tile_sha256", String(64), nullable=False),
    Column("phash", String(256), nullable=False),
    Column("patient_fp", String(64), nullable=False),  # HMAC under the registry's ledger key
    Column("published_at", String(40), nullable=False),
)
Index("ledger_slides_tile", ledger_slides.c.tile_sha256)
Index("ledger_slides_patient", ledger_slides.c.patient_fp)

#: secret keys, encrypted (AES-GCM under the registry key, the row name as associated data):
#: `ledger` (patient fingerprints), `study:<name>`, `release:<id>`
keys = Table(
    "keys",
    metadata,
    Column("name", String(250), primary_key=True),
    Column("key_id", String(40), nullable=False),
    Column("nonce", LargeBinary(12), nullable=False),
    Column("ciphertext", LargeBinary(64), nullable=False),
    Column("created_at", String(40), nullable=False),
)

#: one row per release id: what was released where, with which spec, policies and key
releases = Table(
    "releases",
    metadata,
    Column("release", String(200), primary_key=True),
    Column("target", Text, nullable=False),
    Column("spec_hash", String(64), nullable=False),
    Column("policy_hash", String(64), nullable=False),
    Column("key_id", String(40), nullable=False),
    #: running -> publishing (ledger recorded, manifest being written) -> complete;
    #: imported (found in a target, recorded by `slidegate registry import`); withheld; rejected
    Column("status", String(20), nullable=False),
    Column("decisions", Text, nullable=False, default="{}"),  # JSON: pseudonym -> status/reason
    Column("manifest_sha256", String(64)),
    Column("created_at", String(40), nullable=False),
    Column("updated_at", String(40), nullable=False),
)
Index("releases_target", releases.c.target)

#: a steward's decision on a release (approval gate)
approvals = Table(
    "approvals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("release", String(200), nullable=False),
    Column("decision", String(20), nullable=False),  # approved / rejected
    Column("approver", String(200), nullable=False),  # identity of the steward (or timeout)
    Column("at", String(40), nullable=False),
)

#: one row per target being released into: serialises releases into one target
target_locks = Table(
    "target_locks",
    metadata,
    Column("target", String(700), primary_key=True),
    Column("release", String(200), nullable=False),
    Column("holder", String(64), nullable=False),  # random token of the holding run
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("acquired_at", String(40), nullable=False),
    Column("heartbeat", Integer, nullable=False),  # unix seconds, refreshed while held
)

#: slide-level state for resume: a slide audited (and staged) in an earlier run of the release
slide_state = Table(
    "slide_state",
    metadata,
    Column("release", String(200), primary_key=True),
    Column("slide", String(40), primary_key=True),  # pseudonym
    Column("source_hash", String(64), nullable=False),
    Column("plan_hash", String(64), nullable=False),
    Column("policy_hash", String(64), nullable=False),
    Column("output_hash", String(64), nullable=False),  # listing digest of the staged output
    Column("report", Text, nullable=False),  # the SlideReport JSON (pseudonyms, private paths)
    Column("updated_at", String(40), nullable=False),
)
