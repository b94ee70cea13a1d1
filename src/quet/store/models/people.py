"""People, their sessions and API tokens, and the audit log of every change."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from quet.store.models.base import Base, JSONList, UTCDateTime, utcnow

ROLES = ("admin", "officer", "viewer")
_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


class User(Base):
    """A person. Everything they see and change is limited to `org_id`'s subtree."""

    __tablename__ = "users"
    __table_args__ = (sa.CheckConstraint(f"role IN {ROLES!r}", name="role"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(100), unique=True)
    full_name: Mapped[str] = mapped_column(sa.String(200), default="")
    email: Mapped[str] = mapped_column(sa.String(200), default="")
    password_hash: Mapped[str] = mapped_column(sa.String(300))
    role: Mapped[str] = mapped_column(sa.String(16), default="viewer")
    org_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id", ondelete="RESTRICT"))
    lang: Mapped[str] = mapped_column(sa.String(8), default="vi")
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    must_change_password: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class LoginSession(Base):
    """A browser session: the cookie holds a random token; only its SHA256 is stored."""

    __tablename__ = "login_sessions"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)  # sha256 of the cookie token
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ip: Mapped[str] = mapped_column(sa.String(64), default="")


class ApiToken(Base):
    """A bearer token for scripts: shown once, stored as SHA256, scoped like its owner."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked: Mapped[bool] = mapped_column(sa.Boolean, default=False)


class AuditEntry(Base):
    """Who changed what, when, from where. Written in the same transaction as the change."""

    __tablename__ = "audit_log"
    __table_args__ = (sa.Index("ix_audit_log_org_at", "org_id", "at"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(sa.String(200))  # "user:alice", "device:12", "system"
    action: Mapped[str] = mapped_column(sa.String(100))  # "org.create", "campaign.ack", ...
    target: Mapped[str] = mapped_column(sa.String(200), default="")  # "org:HN", "campaign:3"
    org_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("organisations.id", ondelete="SET NULL"), nullable=True
    )
    ip: Mapped[str] = mapped_column(sa.String(64), default="")
    detail: Mapped[dict[str, Any] | list[Any]] = mapped_column(JSONList, default=dict)
