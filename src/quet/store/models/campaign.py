"""Campaigns, their phases (đợt), and each organisation's participation: received, deployed,
reported — the figures of the official form come straight from here."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from quet.store.models.base import Base, JSONList, UTCDateTime, utcnow

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(300))
    year: Mapped[int] = mapped_column(sa.Integer)
    description: Mapped[str] = mapped_column(sa.Text, default="")
    scope_org_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"))
    bundle_version: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    created_by: Mapped[str] = mapped_column(sa.String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    phases: Mapped[list[Phase]] = relationship(
        back_populates="campaign",
        cascade="all, delete-orphan",
        order_by="Phase.number",
        lazy="selectin",
    )


class Phase(Base):
    """One đợt of a campaign, with its own dates and report deadline."""

    __tablename__ = "campaign_phases"
    __table_args__ = (sa.UniqueConstraint("campaign_id", "number"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(sa.Integer)
    name: Mapped[str] = mapped_column(sa.String(200), default="")
    starts: Mapped[date] = mapped_column(sa.Date)
    ends: Mapped[date] = mapped_column(sa.Date)
    report_deadline: Mapped[date] = mapped_column(sa.Date)
    campaign: Mapped[Campaign] = relationship(back_populates="phases")


class Participation(Base):
    """One organisation in one campaign: when it was told, acknowledged, deployed and reported."""

    __tablename__ = "participations"
    __table_args__ = (sa.UniqueConstraint("campaign_id", "org_id"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        sa.ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    org_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    ack_token_hash: Mapped[str] = mapped_column(sa.String(64), default="", index=True)
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    received_by: Mapped[str] = mapped_column(sa.String(200), default="")
    deployed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    report: Mapped[dict[str, Any] | list[Any]] = mapped_column(JSONList, default=dict)
