"""Organisations: the tree, subtree scoping, creation and import."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from quet.errors import InputError
from quet.store.models import Organisation, OrgAsn, OrgDomain, OrgNetwork, User


def root(session: Session) -> Organisation | None:
    return session.scalars(
        sa.select(Organisation).where(Organisation.parent_id.is_(None)).order_by(Organisation.id)
    ).first()


def by_code(session: Session, code: str) -> Organisation | None:
    return session.scalars(sa.select(Organisation).where(Organisation.code == code)).first()


def subtree_clause(org: Organisation) -> sa.ColumnElement[bool]:
    """Rows of `org` and every organisation below it (by the materialised path)."""
    return Organisation.path.startswith(org.path)


def subtree_ids(session: Session, org: Organisation) -> sa.Select[Any]:
    return sa.select(Organisation.id).where(subtree_clause(org))


def can_see(user: User, user_org: Organisation, org: Organisation) -> bool:
    return org.path.startswith(user_org.path)


def create(
    session: Session,
    code: str,
    name: str,
    kind: str = "unit",
    parent: Organisation | None = None,
    *,
    contact_name: str = "",
    contact_email: str = "",
    contact_phone: str = "",
    ip_ranges: Iterable[str] = (),
    domains: Iterable[str] = (),
    asns: Iterable[int] = (),
) -> Organisation:
    if by_code(session, code) is not None:
        raise InputError(f"organisation code {code!r} already exists")
    org = Organisation(
        code=code,
        name=name,
        kind=kind,
        parent_id=parent.id if parent else None,
        depth=(parent.depth + 1) if parent else 0,
        contact_name=contact_name,
        contact_email=contact_email,
        contact_phone=contact_phone,
    )
    session.add(org)
    session.flush()  # the id is part of the path
    org.path = f"{parent.path if parent else '/'}{org.id}/"
    set_networks(org, ip_ranges)
    org.domains = [OrgDomain(domain=d) for d in dict.fromkeys(domains)]
    org.asns = [OrgAsn(asn=a) for a in dict.fromkeys(asns)]
    return org


def set_networks(org: Organisation, cidrs: Iterable[str]) -> None:
    nets = []
    for cidr in dict.fromkeys(cidrs):
        net = ipaddress.ip_network(cidr, strict=False)
        start, end = hex_range(net)
        nets.append(OrgNetwork(cidr=net.compressed, start_hex=start, end_hex=end))
    org.networks = nets


def hex_range(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> tuple[str, str]:
    """Fixed-width hex bounds; IPv4 is mapped into IPv6 (::ffff:a.b.c.d) so both share one order."""
    first, last = int(net.network_address), int(net.broadcast_address)
    if net.version == 4:
        first, last = first + 0xFFFF00000000, last + 0xFFFF00000000
    return f"{first:032x}", f"{last:032x}"


def ip_hex(ip: str) -> str:
    addr = ipaddress.ip_address(ip)
    value = int(addr) + (0xFFFF00000000 if addr.version == 4 else 0)
    return f"{value:032x}"


def owner_of_ip(session: Session, ip: str) -> Organisation | None:
    """The organisation whose registered range holds `ip` (the narrowest wins)."""
    h = ip_hex(ip)
    row = session.execute(
        sa.select(OrgNetwork.org_id)
        .where(OrgNetwork.start_hex <= h, OrgNetwork.end_hex >= h)
        .order_by(sa.desc(OrgNetwork.start_hex), OrgNetwork.end_hex)
        .limit(1)
    ).first()
    return session.get(Organisation, row[0]) if row else None
