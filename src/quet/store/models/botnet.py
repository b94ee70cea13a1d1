"""Botnet IPs from sinkhole and botnet feeds, attributed to organisations (issue 6).

`botnet_ips` keeps one row per (ip, family) ever seen, with the attribution of its newest sighting;
`botnet_stats` holds the precomputed unique-IP counts per day/week/month and dimension that every
page and `quet botnet stats` read (never the IP rows), so two years of charts stay cheap;
`botnet_imports` records each feed file taken in; `botnet_digests` is each organisation's daily
digest setting and state (no row = the defaults: opted in, threshold 1).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from quet.store.models.base import Base, JSONList, UTCDateTime, utcnow

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")

SECTORS = ("government", "finance", "education", "health", "energy", "telecom", "other", "")
PERIODS = ("day", "week", "month")
DIMS = ("all", "family", "province", "asn", "sector", "org")


class BotnetIp(Base):
    """One (ip, family) ever reported; `org_id` etc. are the newest attribution."""

    __tablename__ = "botnet_ips"
    __table_args__ = (
        sa.UniqueConstraint("ip", "family"),
        sa.Index("ix_botnet_ips_org_last", "org_id", "last_seen"),
        sa.Index("ix_botnet_ips_last_seen", "last_seen"),
        sa.Index("ix_botnet_ips_ip", "ip"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    ip: Mapped[str] = mapped_column(sa.String(45))
    family: Mapped[str] = mapped_column(sa.String(100), default="")
    org_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("organisations.id", ondelete="SET NULL"), nullable=True
    )
    asn: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)
    isp: Mapped[str] = mapped_column(sa.String(200), default="")
    province: Mapped[str] = mapped_column(sa.String(100), default="")
    country: Mapped[str] = mapped_column(sa.String(2), default="")
    first_seen: Mapped[date] = mapped_column(sa.Date)
    last_seen: Mapped[date] = mapped_column(sa.Date)
    days_seen: Mapped[int] = mapped_column(sa.Integer, default=0)


class BotnetStat(Base):
    """COUNT(DISTINCT ip) in one period for one key of one dimension."""

    __tablename__ = "botnet_stats"
    __table_args__ = (
        sa.CheckConstraint(f"period IN {PERIODS!r}", name="period"),
        sa.CheckConstraint(f"dim IN {DIMS!r}", name="dim"),
        # A subtree's trend sums its organisations' rows: one index range per organisation.
        sa.Index("ix_botnet_stats_dim_key", "dim", "key", "period", "start"),
    )

    period: Mapped[str] = mapped_column(sa.String(8), primary_key=True)
    start: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    dim: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    label: Mapped[str] = mapped_column(sa.String(300), default="")
    ips: Mapped[int] = mapped_column(sa.BigInteger, default=0)


class BotnetImport(Base):
    """One feed file imported by `quet botnet import`."""

    __tablename__ = "botnet_imports"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    file: Mapped[str] = mapped_column(sa.String(500), default="")
    sha256: Mapped[str] = mapped_column(sa.String(64), default="", index=True)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    format: Mapped[str] = mapped_column(sa.String(32), default="")
    rows: Mapped[int] = mapped_column(sa.Integer, default=0)
    bad_rows: Mapped[int] = mapped_column(sa.Integer, default=0)
    duplicates: Mapped[int] = mapped_column(sa.Integer, default=0)
    new_events: Mapped[int] = mapped_column(sa.Integer, default=0)
    attributed: Mapped[int] = mapped_column(sa.Integer, default=0)
    unattributed: Mapped[int] = mapped_column(sa.Integer, default=0)
    first_day: Mapped[date | None] = mapped_column(sa.Date, nullable=True)
    last_day: Mapped[date | None] = mapped_column(sa.Date, nullable=True)
    errors: Mapped[list[Any]] = mapped_column(JSONList, default=list)


class BotnetDigest(Base):
    """An organisation's daily digest settings and the last day one was sent."""

    __tablename__ = "botnet_digests"

    org_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True
    )
    email_enabled: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    webhook_enabled: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    threshold: Mapped[int] = mapped_column(sa.Integer, default=1)
    last_sent_day: Mapped[date | None] = mapped_column(sa.Date, nullable=True)
