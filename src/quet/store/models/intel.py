"""Threat-intel tables: one row per indicator, the sources that listed it, sightings, import runs."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from quet.store.models.base import Base, JSONList, UTCDateTime, utcnow

STATUSES = ("active", "expired", "false_positive")
SIGHTING_KINDS = ("seen", "false_positive")


class IndicatorRow(Base):
    """One indicator, whatever the number of feeds that list it (those are IndicatorSourceRow)."""

    __tablename__ = "indicators"
    __table_args__ = (
        sa.UniqueConstraint("type", "value"),
        sa.CheckConstraint(f"status IN {STATUSES!r}", name="status"),
        sa.Index("ix_indicators_status_type", "status", "type"),
    )

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
    )
    type: Mapped[str] = mapped_column(sa.String(16))
    value: Mapped[str] = mapped_column(sa.Text)
    name: Mapped[str] = mapped_column(sa.Text, default="")
    family: Mapped[str] = mapped_column(sa.String(200), default="", index=True)
    confidence: Mapped[int] = mapped_column(sa.Integer, default=50)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    expires: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    tags: Mapped[list[str]] = mapped_column(JSONList, default=list)
    campaign: Mapped[str] = mapped_column(sa.String(200), default="")
    size: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)
    fp_regex: Mapped[str] = mapped_column(sa.Text, default="")
    status: Mapped[str] = mapped_column(sa.String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IndicatorSourceRow(Base):
    """A feed (or file) that listed an indicator: when it first and last did, and how sure it was."""

    __tablename__ = "indicator_sources"

    indicator_id: Mapped[int] = mapped_column(
        sa.ForeignKey("indicators.id", ondelete="CASCADE"), primary_key=True
    )
    source: Mapped[str] = mapped_column(sa.String(200), primary_key=True, index=True)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    confidence: Mapped[int] = mapped_column(sa.Integer, default=50)


class SightingRow(Base):
    """Someone saw the indicator on a machine (`seen`) or found it harmless (`false_positive`)."""

    __tablename__ = "sightings"
    __table_args__ = (sa.CheckConstraint(f"kind IN {SIGHTING_KINDS!r}", name="kind"),)

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
    )
    indicator_id: Mapped[int] = mapped_column(
        sa.ForeignKey("indicators.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(sa.String(16))
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    where: Mapped[str] = mapped_column(sa.Text, default="")
    note: Mapped[str] = mapped_column(sa.Text, default="")


class ImportRunRow(Base):
    """One `import_indicators` call: what it read and what it changed."""

    __tablename__ = "import_runs"

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
    )
    source: Mapped[str] = mapped_column(sa.String(200))
    started: Mapped[datetime] = mapped_column(UTCDateTime)
    finished: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    read: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    added: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    updated: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    suppressed: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    rejected: Mapped[int] = mapped_column(sa.BigInteger, default=0)


indicators: sa.Table = IndicatorRow.__table__  # type: ignore[assignment]
indicator_sources: sa.Table = IndicatorSourceRow.__table__  # type: ignore[assignment]
sightings: sa.Table = SightingRow.__table__  # type: ignore[assignment]
import_runs: sa.Table = ImportRunRow.__table__  # type: ignore[assignment]

__all__ = [
    "SIGHTING_KINDS",
    "STATUSES",
    "ImportRunRow",
    "IndicatorRow",
    "IndicatorSourceRow",
    "SightingRow",
    "import_runs",
    "indicator_sources",
    "indicators",
    "sightings",
]
