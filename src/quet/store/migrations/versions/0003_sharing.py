"""sharing: child servers' keys, received reports, and per-organisation roll-ups

Revision ID: 0003_sharing
Revises: 0002_server
Create Date: 2026-11-25 08:24:07.376029
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003_sharing"
down_revision: str | None = "0002_server"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _org_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["org_id"],
        ["organisations.id"],
        name=op.f(f"fk_{table}_org_id_organisations"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "org_rollups",
        sa.Column("org_id", _ID, nullable=False),
        sa.Column("devices", sa.Integer(), nullable=False),
        sa.Column("scanned_7d", sa.Integer(), nullable=False),
        sa.Column("infected", sa.Integer(), nullable=False),
        sa.Column("open_findings", sa.BigInteger(), nullable=False),
        sa.Column("remediated_findings", sa.BigInteger(), nullable=False),
        sa.Column("current_signatures", sa.Integer(), nullable=False),
        sa.Column("refreshed_at", _TS, nullable=False),
        _org_fk("org_rollups"),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_org_rollups")),
    )
    op.create_table(
        "sharing_peers",
        sa.Column("id", _ID, nullable=False),
        sa.Column("org_id", _ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("public_key", sa.String(length=200), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("last_received", _TS, nullable=True),
        _org_fk("sharing_peers"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sharing_peers")),
        sa.UniqueConstraint("key_id", name=op.f("uq_sharing_peers_key_id")),
        sa.UniqueConstraint("org_id", name=op.f("uq_sharing_peers_org_id")),
    )
    op.create_table(
        "sharing_receipts",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("org_id", _ID, nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("sent_at", _TS, nullable=False),
        sa.Column("received_at", _TS, nullable=False),
        sa.Column("period", sa.String(length=64), nullable=False),
        sa.Column("summary", _JSON, nullable=False),
        sa.Column("indicators", sa.Integer(), nullable=False),
        sa.Column("sightings", sa.Integer(), nullable=False),
        _org_fk("sharing_receipts"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sharing_receipts")),
    )
    with op.batch_alter_table("sharing_receipts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sharing_receipts_org_received", ["org_id", "received_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("sharing_receipts", schema=None) as batch_op:
        batch_op.drop_index("ix_sharing_receipts_org_received")
    op.drop_table("sharing_receipts")
    op.drop_table("sharing_peers")
    op.drop_table("org_rollups")
