"""org rollups: false positives, so the overview reads every figure from the roll-ups

Revision ID: 0006_rollup_fp
Revises: 0005_daily
Create Date: 2026-11-25 10:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_rollup_fp"
down_revision: str | None = "0005_daily"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("org_rollups", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("false_positives", sa.BigInteger(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("org_rollups", schema=None) as batch_op:
        batch_op.drop_column("false_positives")
