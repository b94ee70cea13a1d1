"""org daily: per-organisation per-day findings and devices scanned, for the 30-day trend

Revision ID: 0005_daily
Revises: 0004_net_alerts
Create Date: 2026-11-25 09:55:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_daily"
down_revision: str | None = "0004_net_alerts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "org_daily",
        sa.Column("org_id", _ID, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("findings", sa.Integer(), nullable=False),
        sa.Column("devices_scanned", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organisations.id"],
            name=op.f("fk_org_daily_org_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "day", name=op.f("pk_org_daily")),
    )
    with op.batch_alter_table("org_daily", schema=None) as batch_op:
        batch_op.create_index("ix_org_daily_day", ["day"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("org_daily", schema=None) as batch_op:
        batch_op.drop_index("ix_org_daily_day")
    op.drop_table("org_daily")
