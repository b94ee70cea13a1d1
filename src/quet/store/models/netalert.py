"""Network-watch alerts posted by `quet net watch --post`: one internal host that touched one listed
indicator, keyed by the alert's stable id and mapped to a device and organisation of the inventory."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from quet.store.models.base import Base, JSONList, UTCDateTime, utcnow

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
NET_ALERT_STATUSES = ("open", "resolved", "false_positive")
# Why an alert is filed under the poster's own organisation instead of the IP's owner.
NET_ALERT_NOTES = ("", "unregistered", "outside_scope")


class NetAlertRow(Base):
    """One alert; a repeat post with the same id updates it (a higher count, a later sighting)."""

    __tablename__ = "net_alerts"
    __table_args__ = (
        sa.CheckConstraint(f"status IN {NET_ALERT_STATUSES!r}", name="status"),
        sa.Index("ix_net_alerts_org_status", "org_id", "status"),
        sa.Index("ix_net_alerts_last_seen", "last_seen"),
    )

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)  # sha256 hex, the client's
    client: Mapped[str] = mapped_column(sa.String(64), index=True)
    org_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("organisations.id", ondelete="SET NULL"), nullable=True
    )
    device_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("devices.id", ondelete="SET NULL"), nullable=True, index=True
    )
    note: Mapped[str] = mapped_column(sa.String(32), default="")
    indicator_type: Mapped[str] = mapped_column(sa.String(16))
    indicator: Mapped[str] = mapped_column(sa.Text)
    name: Mapped[str] = mapped_column(sa.String(300), default="")
    family: Mapped[str] = mapped_column(sa.String(200), default="", index=True)
    source_feed: Mapped[str] = mapped_column(sa.String(300), default="")
    first_seen: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    count: Mapped[int] = mapped_column(sa.BigInteger, default=1)
    fields: Mapped[list[Any]] = mapped_column(JSONList, default=list)
    examples: Mapped[list[Any]] = mapped_column(JSONList, default=list)
    status: Mapped[str] = mapped_column(sa.String(16), default="open")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reporter: Mapped[str] = mapped_column(sa.String(100), default="")
