"""The intel store: indicators, the sources that list them, sightings, import runs.

Revision ID: 0001_intel
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001_intel"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite: INTEGER PRIMARY KEY = rowid
_TS = sa.DateTime(timezone=True)
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "indicators",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("family", sa.String(200), nullable=False),
        sa.Column("confidence", sa.Integer(), nullable=False),
        sa.Column("first_seen", _TS, nullable=False),
        sa.Column("last_seen", _TS, nullable=False),
        sa.Column("expires", _TS, nullable=True),
        sa.Column("tags", _JSON, nullable=False),
        sa.Column("campaign", sa.String(200), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("fp_regex", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_indicators"),
        sa.UniqueConstraint("type", "value", name="uq_indicators_type_value"),
        sa.CheckConstraint(
            "status IN ('active', 'expired', 'false_positive')", name="ck_indicators_status"
        ),
    )
    op.create_index("ix_indicators_family", "indicators", ["family"])
    op.create_index("ix_indicators_status_type", "indicators", ["status", "type"])
    op.create_table(
        "indicator_sources",
        sa.Column("indicator_id", _ID, nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("first_seen", _TS, nullable=False),
        sa.Column("last_seen", _TS, nullable=False),
        sa.Column("confidence", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("indicator_id", "source", name="pk_indicator_sources"),
        sa.ForeignKeyConstraint(
            ["indicator_id"],
            ["indicators.id"],
            name="fk_indicator_sources_indicator_id_indicators",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_indicator_sources_source", "indicator_sources", ["source"])
    op.create_table(
        "sightings",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("indicator_id", _ID, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("observed_at", _TS, nullable=False),
        sa.Column("where", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sightings"),
        sa.ForeignKeyConstraint(
            ["indicator_id"],
            ["indicators.id"],
            name="fk_sightings_indicator_id_indicators",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint("kind IN ('seen', 'false_positive')", name="ck_sightings_kind"),
    )
    op.create_index("ix_sightings_indicator_id", "sightings", ["indicator_id"])
    op.create_table(
        "import_runs",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("started", _TS, nullable=False),
        sa.Column("finished", _TS, nullable=True),
        sa.Column("read", sa.BigInteger(), nullable=False),
        sa.Column("added", sa.BigInteger(), nullable=False),
        sa.Column("updated", sa.BigInteger(), nullable=False),
        sa.Column("suppressed", sa.BigInteger(), nullable=False),
        sa.Column("rejected", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_import_runs"),
    )


def downgrade() -> None:
    op.drop_table("import_runs")
    op.drop_index("ix_sightings_indicator_id", "sightings")
    op.drop_table("sightings")
    op.drop_index("ix_indicator_sources_source", "indicator_sources")
    op.drop_table("indicator_sources")
    op.drop_index("ix_indicators_status_type", "indicators")
    op.drop_index("ix_indicators_family", "indicators")
    op.drop_table("indicators")
