"""official reports: the campaign form per organisation, workflow, overrides

Revision ID: 0008_reports
Revises: 0007_botnet
Create Date: 2026-11-25 10:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008_reports"
down_revision: str | None = "0007_botnet"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{target}.id"],
        name=op.f(f"fk_{table}_{column}_{target}"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "reports",
        sa.Column("id", _ID, nullable=False),
        sa.Column("campaign_id", _ID, nullable=False),
        sa.Column("org_id", _ID, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("number", sa.String(length=100), nullable=False),
        sa.Column("place", sa.String(length=200), nullable=False),
        sa.Column("addressee", sa.Text(), nullable=False),
        sa.Column("signer_title", sa.String(length=200), nullable=False),
        sa.Column("signer_name", sa.String(length=200), nullable=False),
        sa.Column("evaluation", sa.Text(), nullable=False),
        sa.Column("proposals", sa.Text(), nullable=False),
        sa.Column("figures", _JSON, nullable=False),
        sa.Column("overrides", _JSON, nullable=False),
        sa.Column("submitted_at", _TS, nullable=True),
        sa.Column("submitted_by", sa.String(length=200), nullable=False),
        sa.Column("decided_at", _TS, nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=False),
        sa.Column("return_reason", sa.Text(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.CheckConstraint(
            "status IN ('draft', 'submitted', 'accepted', 'returned')",
            name=op.f("ck_reports_status"),
        ),
        _fk("reports", "campaign_id", "campaigns"),
        _fk("reports", "org_id", "organisations"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
        sa.UniqueConstraint("campaign_id", "org_id", name=op.f("uq_reports_campaign_id_org_id")),
    )
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reports_campaign_id"), ["campaign_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_reports_org_id"), ["org_id"], unique=False)

    op.create_table(
        "report_reminders",
        sa.Column("id", _ID, nullable=False),
        sa.Column("campaign_id", _ID, nullable=False),
        sa.Column("org_id", _ID, nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("sent_at", _TS, nullable=False),
        _fk("report_reminders", "campaign_id", "campaigns"),
        _fk("report_reminders", "org_id", "organisations"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_reminders")),
        sa.UniqueConstraint(
            "campaign_id",
            "org_id",
            "kind",
            name=op.f("uq_report_reminders_campaign_id_org_id_kind"),
        ),
    )


def downgrade() -> None:
    op.drop_table("report_reminders")
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reports_org_id"))
        batch_op.drop_index(batch_op.f("ix_reports_campaign_id"))
    op.drop_table("reports")
