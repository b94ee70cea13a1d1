"""botnet IPs: attributed sinkhole/feed IPs, statistics, digests

Revision ID: 0007_botnet
Revises: 0006_rollup_fp
Create Date: 2026-11-25 10:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007_botnet"
down_revision: str | None = "0006_rollup_fp"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("sector", sa.String(length=32), server_default="", nullable=False)
        )

    op.create_table(
        "botnet_ips",
        sa.Column("id", _ID, nullable=False),
        sa.Column("ip", sa.String(length=45), nullable=False),
        sa.Column("family", sa.String(length=100), nullable=False),
        sa.Column("org_id", _ID, nullable=True),
        sa.Column("asn", sa.BigInteger(), nullable=True),
        sa.Column("isp", sa.String(length=200), nullable=False),
        sa.Column("province", sa.String(length=100), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("first_seen", sa.Date(), nullable=False),
        sa.Column("last_seen", sa.Date(), nullable=False),
        sa.Column("days_seen", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organisations.id"],
            name=op.f("fk_botnet_ips_org_id_organisations"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_botnet_ips")),
        sa.UniqueConstraint("ip", "family", name=op.f("uq_botnet_ips_ip_family")),
    )
    with op.batch_alter_table("botnet_ips", schema=None) as batch_op:
        batch_op.create_index("ix_botnet_ips_org_last", ["org_id", "last_seen"], unique=False)
        batch_op.create_index("ix_botnet_ips_last_seen", ["last_seen"], unique=False)
        batch_op.create_index("ix_botnet_ips_ip", ["ip"], unique=False)

    op.create_table(
        "botnet_stats",
        sa.Column("period", sa.String(length=8), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("dim", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("label", sa.String(length=300), nullable=False),
        sa.Column("ips", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "period IN ('day', 'week', 'month')", name=op.f("ck_botnet_stats_period")
        ),
        sa.CheckConstraint(
            "dim IN ('all', 'family', 'province', 'asn', 'sector', 'org')",
            name=op.f("ck_botnet_stats_dim"),
        ),
        sa.PrimaryKeyConstraint("period", "start", "dim", "key", name=op.f("pk_botnet_stats")),
    )
    with op.batch_alter_table("botnet_stats", schema=None) as batch_op:
        batch_op.create_index(
            "ix_botnet_stats_dim_key", ["dim", "key", "period", "start"], unique=False
        )

    op.create_table(
        "botnet_imports",
        sa.Column("id", _ID, nullable=False),
        sa.Column("file", sa.String(length=500), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("imported_at", _TS, nullable=False),
        sa.Column("format", sa.String(length=32), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("bad_rows", sa.Integer(), nullable=False),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.Column("new_events", sa.Integer(), nullable=False),
        sa.Column("attributed", sa.Integer(), nullable=False),
        sa.Column("unattributed", sa.Integer(), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=True),
        sa.Column("last_day", sa.Date(), nullable=True),
        sa.Column("errors", _JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_botnet_imports")),
    )
    with op.batch_alter_table("botnet_imports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_botnet_imports_sha256"), ["sha256"], unique=False)

    op.create_table(
        "botnet_digests",
        sa.Column("org_id", _ID, nullable=False),
        sa.Column("email_enabled", sa.Boolean(), nullable=False),
        sa.Column("webhook_enabled", sa.Boolean(), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("last_sent_day", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organisations.id"],
            name=op.f("fk_botnet_digests_org_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_botnet_digests")),
    )


def downgrade() -> None:
    op.drop_table("botnet_digests")
    with op.batch_alter_table("botnet_imports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_botnet_imports_sha256"))
    op.drop_table("botnet_imports")
    with op.batch_alter_table("botnet_stats", schema=None) as batch_op:
        batch_op.drop_index("ix_botnet_stats_dim_key")
    op.drop_table("botnet_stats")
    with op.batch_alter_table("botnet_ips", schema=None) as batch_op:
        batch_op.drop_index("ix_botnet_ips_ip")
        batch_op.drop_index("ix_botnet_ips_last_seen")
        batch_op.drop_index("ix_botnet_ips_org_last")
    op.drop_table("botnet_ips")
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.drop_column("sector")
