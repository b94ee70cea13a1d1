"""Devices enrolled by agents (or created by an uploaded report), their scans and findings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from quet.store.models.base import Base, JSONList, UTCDateTime, utcnow

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
DEVICE_KINDS = ("server", "workstation", "endpoint")
FINDING_STATUSES = ("open", "remediated", "false_positive")


class EnrollmentToken(Base):
    """Handed to an agency's IT officer; an agent exchanges it for a per-device credential."""

    __tablename__ = "enrollment_tokens"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    org_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    label: Mapped[str] = mapped_column(sa.String(200), default="")
    created_by: Mapped[str] = mapped_column(sa.String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    max_uses: Mapped[int] = mapped_column(sa.Integer, default=1000)
    uses: Mapped[int] = mapped_column(sa.Integer, default=0)
    revoked: Mapped[bool] = mapped_column(sa.Boolean, default=False)


class Device(Base):
    __tablename__ = "devices"
    __table_args__ = (
        sa.CheckConstraint(f"kind IN {DEVICE_KINDS!r}", name="kind"),
        sa.Index("ix_devices_org_last_scan", "org_id", "last_scan_at"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    org_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organisations.id", ondelete="RESTRICT"), index=True
    )
    hostname: Mapped[str] = mapped_column(sa.String(255))
    kind: Mapped[str] = mapped_column(sa.String(16), default="workstation")
    os: Mapped[str] = mapped_column(sa.String(200), default="")
    ips: Mapped[list[str]] = mapped_column(JSONList, default=list)
    agent_version: Mapped[str] = mapped_column(sa.String(50), default="")
    content_version: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    content_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    antimalware: Mapped[list[str]] = mapped_column(JSONList, default=list)
    credential_hash: Mapped[str] = mapped_column(sa.String(64), default="", index=True)
    enrolled_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_scan_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    open_findings: Mapped[int] = mapped_column(sa.Integer, default=0)
    uploaded_only: Mapped[bool] = mapped_column(sa.Boolean, default=False)


class ScanReport(Base):
    """One scan of one device; its UUID (from the scanner) makes uploads idempotent."""

    __tablename__ = "scan_reports"
    __table_args__ = (sa.Index("ix_scan_reports_org_finished", "org_id", "finished"),)

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    device_id: Mapped[int] = mapped_column(
        sa.ForeignKey("devices.id", ondelete="CASCADE"), index=True
    )
    org_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"))
    started: Mapped[datetime] = mapped_column(UTCDateTime)
    finished: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    files_scanned: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    bytes_scanned: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    findings_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    errors_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    interrupted: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    signatures: Mapped[dict[str, Any] | list[Any]] = mapped_column(JSONList, default=dict)


class FindingRow(Base):
    """A finding from a scan, with its remediation status (open until cleaned or dismissed)."""

    __tablename__ = "findings"
    __table_args__ = (
        sa.CheckConstraint(f"status IN {FINDING_STATUSES!r}", name="status"),
        sa.Index("ix_findings_org_status", "org_id", "status"),
        sa.Index("ix_findings_device", "device_id"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    scan_id: Mapped[str] = mapped_column(
        sa.ForeignKey("scan_reports.id", ondelete="CASCADE"), index=True
    )
    device_id: Mapped[int] = mapped_column(sa.ForeignKey("devices.id", ondelete="CASCADE"))
    org_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"))
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(sa.String(32))
    name: Mapped[str] = mapped_column(sa.String(300))
    path: Mapped[str] = mapped_column(sa.Text, default="")
    indicator: Mapped[str] = mapped_column(sa.Text, default="")
    sha256: Mapped[str] = mapped_column(sa.String(64), default="")
    score: Mapped[int] = mapped_column(sa.Integer, default=100)
    action: Mapped[str] = mapped_column(sa.String(32), default="reported")
    status: Mapped[str] = mapped_column(sa.String(16), default="open")
    remediated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
