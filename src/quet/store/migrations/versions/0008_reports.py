"""official reports: the campaign form per organisation, workflow, overrides

Revision ID: 0008_reports
Revises: 0007_botnet
Create Date: 2026-11-25 10:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = "0008_reports"
down_revision: str | None = "0007_botnet"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
