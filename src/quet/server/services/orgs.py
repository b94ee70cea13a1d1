"""Organisations: the tree, subtree scoping, lookup within a person's scope, creation and
changes (shared by the API, the web pages and `quet org`)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from quet.errors import InputError
from quet.server.services import audit
from quet.server.services.errors import Forbidden, NotFound
from quet.store.models import Organisation, OrgAsn, OrgDomain, OrgNetwork, User

if TYPE_CHECKING:
    from quet.server.deps import Principal


def root(session: Session) -> Organisation | None:
    return session.scalars(
        sa.select(Organisation).where(Organisation.parent_id.is_(None)).order_by(Organisation.id)
    ).first()


def by_code(session: Session, code: str) -> Organisation | None:
    return session.scalars(sa.select(Organisation).where(Organisation.code == code)).first()


def visible(session: Session, principal: Principal, code: str) -> Organisation:
    """The organisation `code` if `principal` may see it; NotFound otherwise (existence is not
    told)."""
    org = by_code(session, code)
    if org is None or not principal.can_see(org):
        raise NotFound(f"organisation {code!r} not found")
    return org


def visible_or_own(session: Session, principal: Principal, code: str | None) -> Organisation:
    """The organisation a request names (see `visible`), or the person's own when it names none."""
    return visible(session, principal, code) if code else principal.org


def parent(session: Session, org: Organisation) -> Organisation | None:
    return session.get(Organisation, org.parent_id) if org.parent_id else None


def by_ids(session: Session, ids: Iterable[int | None]) -> dict[int, Organisation]:
    """The organisations of these ids (None skipped), in one query: for a listing's names."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {
        o.id: o for o in session.scalars(sa.select(Organisation).where(Organisation.id.in_(wanted)))
    }


def parent_codes(session: Session, found: Iterable[Organisation]) -> dict[int, str | None]:
    """Each organisation's parent code (None for the root), fetching only parents not in `found`."""
    rows = list(found)
    codes: dict[int, str] = {o.id: o.code for o in rows}
    missing = {o.parent_id for o in rows if o.parent_id is not None} - set(codes)
    codes.update((i, o.code) for i, o in by_ids(session, missing).items())
    return {o.id: codes.get(o.parent_id) if o.parent_id is not None else None for o in rows}


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
    webhook_url: str = "",
    sector: str = "",
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
        webhook_url=webhook_url,
        sector=sector,
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


def set_owned(
    org: Organisation,
    ip_ranges: list[str] | None = None,
    domains: list[str] | None = None,
    asns: list[int] | None = None,
) -> bool:
    """Replace what `org` owns on the network (None leaves that part alone); True if it changed.
    Rows that stay are kept, so the (org, domain) and (org, asn) unique keys never collide."""
    changed = False
    if ip_ranges is not None and {n.cidr for n in org.networks} != set(ip_ranges):
        set_networks(org, ip_ranges)
        changed = True
    if domains is not None and {d.domain for d in org.domains} != set(domains):
        keep = [d for d in org.domains if d.domain in set(domains)]
        have = {d.domain for d in keep}
        org.domains = keep + [OrgDomain(domain=d) for d in dict.fromkeys(domains) if d not in have]
        changed = True
    if asns is not None and {a.asn for a in org.asns} != set(asns):
        kept = [a for a in org.asns if a.asn in set(asns)]
        seen = {a.asn for a in kept}
        org.asns = kept + [OrgAsn(asn=a) for a in dict.fromkeys(asns) if a not in seen]
        changed = True
    return changed


@dataclass
class OrgChanges:
    """New values for an organisation, already validated (schemas.orgs, or the page's form);
    None leaves a field as it is."""

    name: str | None = None
    kind: str | None = None
    contact_name: str | None = None
    contact_email: str | None = None
    contact_phone: str | None = None
    webhook_url: str | None = None
    sector: str | None = None
    ip_ranges: list[str] | None = None
    domains: list[str] | None = None
    asns: list[int] | None = None


_OWNED = ("ip_ranges", "domains", "asns")


def update(
    session: Session, principal: Principal, org: Organisation, changes: OrgChanges
) -> Organisation:
    """Apply `changes` to `org` and record one audit entry naming the fields that changed (none
    when nothing did). Forbidden unless the person may change `org`; the root stays national."""
    if not principal.can_change(org):
        raise Forbidden("not allowed for this organisation")
    if org.parent_id is None and changes.kind not in (None, org.kind, "national"):
        raise InputError("the root stays 'national'")
    changed: list[str] = []
    for f in fields(OrgChanges):
        value = getattr(changes, f.name)
        if f.name not in _OWNED and value is not None and getattr(org, f.name) != value:
            setattr(org, f.name, value)
            changed.append(f.name)
    if set_owned(org, changes.ip_ranges, changes.domains, changes.asns):
        changed.append("networks")
    if changed:
        org.updated_at = datetime.now(UTC)
        audit.record(
            session, principal.actor, "org.update", f"org:{org.code}", org.id, {"fields": changed}
        )
    return org
