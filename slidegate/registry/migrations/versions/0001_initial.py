"""The first registry schema: ledger, keys, releases, approvals, target locks, slide state.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_slides",
        sa.Column("release", sa.String(200), primary_key=True),
        sa.Column("slide", sa.String(40), primary_key=True),
        sa.Column("key_id", sa.String(40), nullable=False),
        sa.Column("tile_sha256", sa.String(64), nullable=False),
        sa.Column("phash", sa.String(256), nullable=False),
        sa.Column("patient_fp", sa.String(64), nullable=False),
        sa.Column("published_at", sa.String(40), nullable=False),
    )
    op.create_index("ledger_slides_tile", "ledger_slides", ["tile_sha256"])
    op.create_index("ledger_slides_patient", "ledger_slides", ["patient_fp"])
    op.create_table(
        "keys",
        sa.Column("name", sa.String(250), primary_key=True),
        sa.Column("key_id", sa.String(40), nullable=False),
        sa.Column("nonce", sa.LargeBinary(12), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(64), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
    )
    op.create_table(
        "releases",
        sa.Column("release", sa.String(200), primary_key=True),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("spec_hash", sa.String(64), nullable=False),
        sa.Column("policy_hash", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(40), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("decisions", sa.Text, nullable=False),
        sa.Column("manifest_sha256", sa.String(64)),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("updated_at", sa.String(40), nullable=False),
    )
    op.create_index("releases_target", "releases", ["target"])
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("release", sa.String(200), nullable=False),
        sa.Column("decision", sa.String(20), nullable=False),
        sa.Column("approver", sa.String(200), nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
    )
    op.create_table(
        "target_locks",
        sa.Column("target", sa.String(700), primary_key=True),
        sa.Column("release", sa.String(200), nullable=False),
        sa.Column("holder", sa.String(64), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("acquired_at", sa.String(40), nullable=False),
        sa.Column("heartbeat", sa.Integer, nullable=False),
    )
    op.create_table(
        "slide_state",
        sa.Column("release", sa.String(200), primary_key=True),
        sa.Column("slide", sa.String(40), primary_key=True),
        sa.Column("source_hash", sa.String(64), nullable=False),
        sa.Column("plan_hash", sa.String(64), nullable=False),
        sa.Column("policy_hash", sa.String(64), nullable=False),
        sa.Column("output_hash", sa.String(64), nullable=False),
        sa.Column("report", sa.Text, nullable=False),
        sa.Column("updated_at", sa.String(40), nullable=False),
    )


def downgrade() -> None:
    for table in ("slide_state", "target_locks", "approvals", "releases", "keys"):
        op.drop_table(table)
    op.drop_index("ledger_slides_patient", "ledger_slides")
    op.drop_index("ledger_slides_tile", "ledger_slides")
    op.drop_table("ledger_slides")
