"""net alerts: network-watch alerts posted by `quet net watch --post`, mapped to the inventory

Revision ID: 0004_net_alerts
Revises: 0003_sharing
Create Date: 2026-11-25 09:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004_net_alerts"
down_revision: str | None = "0003_sharing"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "net_alerts",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("org_id", _ID, nullable=True),
        sa.Column("device_id", _ID, nullable=True),
        sa.Column("note", sa.String(length=32), nullable=False),
        sa.Column("indicator_type", sa.String(length=16), nullable=False),
        sa.Column("indicator", sa.Text(), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("family", sa.String(length=200), nullable=False),
        sa.Column("source_feed", sa.String(length=300), nullable=False),
        sa.Column("first_seen", _TS, nullable=True),
        sa.Column("last_seen", _TS, nullable=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("fields", _JSON, nullable=False),
        sa.Column("examples", _JSON, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("received_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("reporter", sa.String(length=100), nullable=False),
        sa.CheckConstraint(
            "status IN ('open', 'resolved', 'false_positive')", name=op.f("ck_net_alerts_status")
        ),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_net_alerts_device_id_devices"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organisations.id"],
            name=op.f("fk_net_alerts_org_id_organisations"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_net_alerts")),
    )
    with op.batch_alter_table("net_alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_net_alerts_client"), ["client"], unique=False)
        batch_op.create_index(batch_op.f("ix_net_alerts_device_id"), ["device_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_net_alerts_family"), ["family"], unique=False)
        batch_op.create_index("ix_net_alerts_last_seen", ["last_seen"], unique=False)
        batch_op.create_index("ix_net_alerts_org_status", ["org_id", "status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("net_alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_net_alerts_org_status")
        batch_op.drop_index("ix_net_alerts_last_seen")
        batch_op.drop_index(batch_op.f("ix_net_alerts_family"))
        batch_op.drop_index(batch_op.f("ix_net_alerts_device_id"))
        batch_op.drop_index(batch_op.f("ix_net_alerts_client"))
    op.drop_table("net_alerts")
