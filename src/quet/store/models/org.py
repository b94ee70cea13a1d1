"""Organisations: the campaign's tree (national → province → department/district → unit) and what
each one owns on the network (IP ranges, domains, ASNs), used to attribute devices and botnet IPs."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from quet.store.models.base import Base, UTCDateTime, utcnow

ORG_KINDS = ("national", "ministry", "province", "department", "district", "unit")
_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


class Organisation(Base):
    """A node of the tree. `path` is the chain of ids ('/1/7/42/') so a subtree is one LIKE query."""

    __tablename__ = "organisations"
    __table_args__ = (sa.CheckConstraint(f"kind IN {ORG_KINDS!r}", name="kind"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(300))
    kind: Mapped[str] = mapped_column(sa.String(16), default="unit")
    parent_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("organisations.id", ondelete="RESTRICT"), nullable=True, index=True
    )
    path: Mapped[str] = mapped_column(sa.String(1000), default="/", index=True)
    depth: Mapped[int] = mapped_column(sa.Integer, default=0)
    contact_name: Mapped[str] = mapped_column(sa.String(200), default="")
    contact_email: Mapped[str] = mapped_column(sa.String(200), default="")
    contact_phone: Mapped[str] = mapped_column(sa.String(50), default="")
    webhook_url: Mapped[str] = mapped_column(sa.String(500), default="")
    sector: Mapped[str] = mapped_column(sa.String(32), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    networks: Mapped[list[OrgNetwork]] = relationship(
        back_populates="org", cascade="all, delete-orphan", lazy="selectin"
    )
    domains: Mapped[list[OrgDomain]] = relationship(
        back_populates="org", cascade="all, delete-orphan", lazy="selectin"
    )
    asns: Mapped[list[OrgAsn]] = relationship(
        back_populates="org", cascade="all, delete-orphan", lazy="selectin"
    )


class OrgNetwork(Base):
    """A registered IP range. start/end are fixed-width hex (32 digits, IPv4 mapped into IPv6), so
    `start <= ip AND ip <= end` works as a plain string range query on both databases."""

    __tablename__ = "org_networks"
    __table_args__ = (sa.Index("ix_org_networks_range", "start_hex", "end_hex"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    org_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    cidr: Mapped[str] = mapped_column(sa.String(64))
    start_hex: Mapped[str] = mapped_column(sa.String(32))
    end_hex: Mapped[str] = mapped_column(sa.String(32))
    org: Mapped[Organisation] = relationship(back_populates="networks")


class OrgDomain(Base):
    __tablename__ = "org_domains"
    __table_args__ = (sa.UniqueConstraint("org_id", "domain"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    org_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id", ondelete="CASCADE"))
    domain: Mapped[str] = mapped_column(sa.String(253), index=True)
    org: Mapped[Organisation] = relationship(back_populates="domains")


class OrgAsn(Base):
    __tablename__ = "org_asns"
    __table_args__ = (sa.UniqueConstraint("org_id", "asn"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    org_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id", ondelete="CASCADE"))
    asn: Mapped[int] = mapped_column(sa.BigInteger, index=True)
    org: Mapped[Organisation] = relationship(back_populates="asns")
