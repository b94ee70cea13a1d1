"""Per-organisation per-day figures (org_daily) for the last month, kept with the roll-ups, so
that the overview's 30-day trend sums a few thousand rows instead of grouping findings by day."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from quet.store.models.base import Base


class OrgDaily(Base):
    """One organisation's own findings observed and devices scanned on one UTC day."""

    __tablename__ = "org_daily"
    __table_args__ = (sa.Index("ix_org_daily_day", "day"),)

    org_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    findings: Mapped[int] = mapped_column(sa.Integer, default=0)
    devices_scanned: Mapped[int] = mapped_column(sa.Integer, default=0)
