"""Official reports: the campaign form per organisation and its workflow (issue 7).

One row per (campaign, organisation): the text people write (Part 1, the letter's number, place
and signer), the overrides of measured figures (each with its reason), and, from submission on,
the frozen snapshot of the figures that the parent's roll-up sums. Reminder e-mails are recorded
per kind so each goes out once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from quet.store.models.base import Base, JSONList, UTCDateTime, utcnow

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
REPORT_STATUSES = ("draft", "submitted", "accepted", "returned")


class Report(Base):
    """An organisation's return for one campaign. `figures` is empty until submission; then it
    holds the effective values ({key: number or null}) and stays frozen while submitted/accepted.
    `overrides` is {key: {"value", "reason", "by", "at"}}."""

    __tablename__ = "reports"
    __table_args__ = (
        sa.UniqueConstraint("campaign_id", "org_id"),
        sa.CheckConstraint(f"status IN {REPORT_STATUSES!r}", name="status"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        sa.ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    org_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(sa.String(16), default="draft")
    number: Mapped[str] = mapped_column(sa.String(100), default="")
    place: Mapped[str] = mapped_column(sa.String(200), default="")
    addressee: Mapped[str] = mapped_column(sa.Text, default="")  # "Kính gửi:" lines
    signer_title: Mapped[str] = mapped_column(sa.String(200), default="")
    signer_name: Mapped[str] = mapped_column(sa.String(200), default="")
    evaluation: Mapped[str] = mapped_column(sa.Text, default="")
    proposals: Mapped[str] = mapped_column(sa.Text, default="")
    figures: Mapped[dict[str, Any]] = mapped_column(JSONList, default=dict)
    overrides: Mapped[dict[str, Any]] = mapped_column(JSONList, default=dict)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    submitted_by: Mapped[str] = mapped_column(sa.String(200), default="")
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    decided_by: Mapped[str] = mapped_column(sa.String(200), default="")
    return_reason: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReportReminder(Base):
    """A reminder e-mail sent to one organisation for one campaign; `kind` names the occasion
    ("d3:2026-10-28": three days before that deadline), so each kind goes out once."""

    __tablename__ = "report_reminders"
    __table_args__ = (sa.UniqueConstraint("campaign_id", "org_id", "kind"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"))
    org_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(64))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
