"""Sharing between servers (a province's → the national one): the children's registered keys, the
signed reports received from them, and the per-organisation roll-ups the dashboard pages read."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from quet.store.models.base import Base, JSONList, UTCDateTime, utcnow

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


class SharingPeer(Base):
    """A child server allowed to send reports for `org_id`: its Ed25519 public key."""

    __tablename__ = "sharing_peers"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    org_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organisations.id", ondelete="CASCADE"), unique=True
    )
    name: Mapped[str] = mapped_column(sa.String(200), default="")
    public_key: Mapped[str] = mapped_column(sa.String(200))  # "ed25519:<base64 of 32 bytes>"
    key_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_received: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ShareReceipt(Base):
    """One accepted envelope: its id (so a replay is refused) and the child's summary figures."""

    __tablename__ = "sharing_receipts"
    __table_args__ = (sa.Index("ix_sharing_receipts_org_received", "org_id", "received_at"),)

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)  # the envelope id
    org_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id", ondelete="CASCADE"))
    key_id: Mapped[str] = mapped_column(sa.String(64))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    period: Mapped[str] = mapped_column(sa.String(64), default="")
    summary: Mapped[dict[str, Any] | list[Any]] = mapped_column(JSONList, default=dict)
    indicators: Mapped[int] = mapped_column(sa.Integer, default=0)
    sightings: Mapped[int] = mapped_column(sa.Integer, default=0)


class OrgRollup(Base):
    """One organisation's own figures (not its subtree), kept by ingest and a periodic refresh,
    so that the overview and tree pages sum a small table instead of scanning findings."""

    __tablename__ = "org_rollups"

    org_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True
    )
    devices: Mapped[int] = mapped_column(sa.Integer, default=0)
    scanned_7d: Mapped[int] = mapped_column(sa.Integer, default=0)
    infected: Mapped[int] = mapped_column(sa.Integer, default=0)  # devices with open findings
    open_findings: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    remediated_findings: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    false_positives: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    current_signatures: Mapped[int] = mapped_column(sa.Integer, default=0)
    refreshed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
