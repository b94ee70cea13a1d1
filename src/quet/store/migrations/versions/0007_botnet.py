"""botnet IPs: attributed sinkhole/feed IPs, statistics, digests

Revision ID: 0007_botnet
Revises: 0006_rollup_fp
Create Date: 2026-11-25 10:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = "0007_botnet"
down_revision: str | None = "0006_rollup_fp"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
