"""Intel store services shared by the CLI, the server and the scanner: import, stream out, look a
value up, statistics, expiry and sightings. Imports live in quet.store.importer."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from quet.errors import InputError
from quet.indicators.model import Indicator, IndicatorType, guess
from quet.store.importer import ImportSummary, Matcher, import_indicators
from quet.store.models import UTCDateTime, indicator_sources, indicators, sightings
from quet.store.models.base import utcnow
from quet.store.models.intel import SIGHTING_KINDS

# How long an indicator stays active after a feed last listed it, when the feed gave no expiry.
# Addresses are reassigned and hosting moves, so network indicators age out; a file hash never
# stops being malware, so hashes, file names and YARA rules do not expire.
DEFAULT_TTL: dict[str, timedelta] = {
    "ipv4": timedelta(days=90),
    "ipv6": timedelta(days=90),
    "cidr": timedelta(days=180),
    "url": timedelta(days=180),
    "domain": timedelta(days=365),
}

__all__ = [
    "DEFAULT_TTL",
    "ImportSummary",
    "IndicatorRecord",
    "Matcher",
    "SightingRecord",
    "SourceRecord",
    "add_sighting",
    "expire",
    "import_indicators",
    "iter_indicators",
    "lookup",
    "parse_ttl",
    "stats",
]


@dataclass
class SourceRecord:
    source: str
    first_seen: datetime
    last_seen: datetime
    confidence: int


@dataclass
class SightingRecord:
    kind: str
    observed_at: datetime
    where: str
    note: str


@dataclass
class IndicatorRecord:
    """One stored indicator as `lookup` finds it: with its sources, sightings and why it matched
    (exact, parent-domain, cidr, url-host)."""

    id: int
    indicator: Indicator
    status: str
    matched: str
    created_at: datetime
    updated_at: datetime
    sources: list[SourceRecord] = field(default_factory=list)
    sightings: list[SightingRecord] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        ind = self.indicator
        return {
            "id": self.id,
            "type": ind.type.value,
            "value": ind.value,
            "name": ind.name,
            "family": ind.family,
            "confidence": ind.confidence,
            "first_seen": _iso(ind.first_seen),
            "last_seen": _iso(ind.last_seen),
            "expires": _iso(ind.expires),
            "tags": list(ind.tags),
            "campaign": ind.campaign,
            "size": ind.size,
            "status": self.status,
            "matched": self.matched,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "sources": [
                {**asdict(s), "first_seen": _iso(s.first_seen), "last_seen": _iso(s.last_seen)}
                for s in self.sources
            ],
            "sightings": [
                {**asdict(s), "observed_at": _iso(s.observed_at)} for s in self.sightings
            ],
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _indicator(row: sa.Row[Any], source: str) -> Indicator:
    return Indicator(
        IndicatorType(row.type),
        row.value,
        name=row.name,
        family=row.family,
        source=source,
        confidence=row.confidence,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        expires=row.expires,
        tags=tuple(row.tags or ()),
        campaign=row.campaign,
        size=row.size,
        fp_regex=row.fp_regex,
    )


def _active(now: datetime) -> sa.ColumnElement[bool]:
    # An explicit expiry in the past hides an indicator even before `expire` has marked it.
    return sa.and_(
        indicators.c.status == "active",
        sa.or_(
            indicators.c.expires.is_(None), indicators.c.expires > sa.literal(now, UTCDateTime())
        ),
    )


def _sources_of() -> sa.ScalarSelect[Any]:
    src = indicator_sources
    return (
        sa.select(sa.func.aggregate_strings(src.c.source, ","))
        .where(src.c.indicator_id == indicators.c.id)
        .scalar_subquery()
    )


def iter_indicators(
    engine: sa.Engine,
    *,
    types: Iterable[IndicatorType | str] | None = None,
    source: str | None = None,
    family: str | None = None,
    active_only: bool = True,
    min_confidence: int = 0,
    campaign: str | None = None,
    chunk: int = 5000,
) -> Iterator[Indicator]:
    """Stream stored indicators (never all in memory); Indicator.source is every source that
    lists it, comma-joined. By default only active ones: no expired or false positives."""
    i = indicators
    stmt = sa.select(i, _sources_of().label("sources")).order_by(i.c.id)
    if types is not None:
        stmt = stmt.where(i.c.type.in_([IndicatorType(t).value for t in types]))
    if source:
        src = indicator_sources
        stmt = stmt.where(sa.exists().where(src.c.indicator_id == i.c.id, src.c.source == source))
    if family:
        stmt = stmt.where(sa.func.lower(i.c.family) == family.lower())
    if campaign:
        stmt = stmt.where(i.c.campaign == campaign)
    if min_confidence:
        stmt = stmt.where(i.c.confidence >= min_confidence)
    if active_only:
        stmt = stmt.where(_active(utcnow()))
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=chunk).execute(stmt)
        for row in result:
            # Sorted here: neither backend promises the order of an aggregated string.
            sources = ",".join(sorted(row.sources.split(","))) if row.sources else ""
            yield _indicator(row, sources)


def _ip_candidates(ip: str) -> list[tuple[str, str, str]]:
    addr = ipaddress.ip_address(ip)
    kind = "ipv4" if addr.version == 4 else "ipv6"
    out = [(kind, addr.compressed, "exact")]
    for prefix in range(addr.max_prefixlen, -1, -1):
        net = ipaddress.ip_network(f"{addr}/{prefix}", strict=False)
        out.append(("cidr", net.compressed, "cidr"))
    return out


def _domain_candidates(domain: str, how: str = "exact") -> list[tuple[str, str, str]]:
    labels = domain.split(".")
    out = [("domain", domain, how)]
    # Parents by whole labels only: a.b.evil.com -> b.evil.com, evil.com (never "il.com").
    for n in range(1, len(labels) - 1):
        out.append(("domain", ".".join(labels[n:]), "parent-domain"))
    return out


def _candidates(value: str) -> list[tuple[str, str, str]]:
    kind, norm = guess(value)
    if kind in (IndicatorType.IPV4, IndicatorType.IPV6):
        return _ip_candidates(norm)
    if kind is IndicatorType.DOMAIN:
        return _domain_candidates(norm)
    if kind is IndicatorType.CIDR:
        net = ipaddress.ip_network(norm)
        return [("cidr", net.compressed, "exact")] + [
            ("cidr", net.supernet(new_prefix=p).compressed, "cidr")
            for p in range(net.prefixlen - 1, -1, -1)
        ]
    if kind is IndicatorType.URL:
        host = (urlsplit(norm).hostname or "").strip("[]")
        out = [("url", norm, "exact")]
        try:
            hosts = _ip_candidates(host)
        except ValueError:
            hosts = _domain_candidates(host, "url-host")
        return out + [(t, v, "url-host" if how == "exact" else how) for t, v, how in hosts]
    return [(kind.value, norm, "exact")]


def lookup(
    engine: sa.Engine, value: str, *, include_inactive: bool = False
) -> list[IndicatorRecord]:
    """Stored indicators matching `value`: exact, plus the parent domains of a domain (by whole
    labels), the CIDRs holding an IP, and the host of a URL. Most specific first. InputError when
    `value` is no indicator at all."""
    cands = _candidates(value)
    order = {(t, v): n for n, (t, v, _how) in enumerate(cands)}
    how = {(t, v): h for t, v, h in cands}
    by_type: dict[str, list[str]] = {}
    for t, v, _h in cands:
        by_type.setdefault(t, []).append(v)
    i = indicators
    stmt = sa.select(i).where(
        sa.or_(*(sa.and_(i.c.type == t, i.c.value.in_(vs)) for t, vs in by_type.items()))
    )
    if not include_inactive:
        stmt = stmt.where(_active(utcnow()))
    with engine.connect() as conn:
        rows = sorted(conn.execute(stmt), key=lambda r: order[(r.type, r.value)])
        records = [
            IndicatorRecord(
                id=r.id,
                indicator=_indicator(r, ""),
                status=r.status,
                matched=how[(r.type, r.value)],
                created_at=r.created_at,
                updated_at=r.updated_at,
            )
            for r in rows
        ]
        by_id = {rec.id: rec for rec in records}
        if by_id:
            src = indicator_sources
            for s in conn.execute(
                sa.select(src).where(src.c.indicator_id.in_(by_id)).order_by(src.c.source)
            ):
                by_id[s.indicator_id].sources.append(
                    SourceRecord(s.source, s.first_seen, s.last_seen, s.confidence)
                )
            sg = sightings
            for s in conn.execute(
                sa.select(sg).where(sg.c.indicator_id.in_(by_id)).order_by(sg.c.observed_at)
            ):
                by_id[s.indicator_id].sightings.append(
                    SightingRecord(s.kind, s.observed_at, s.where, s.note)
                )
    for rec in records:
        rec.indicator.source = ",".join(s.source for s in rec.sources)
    return records


def stats(engine: sa.Engine, *, now: datetime | None = None) -> dict[str, Any]:
    """Counts by type, status, source and family (top 20), and how many expire within 7 days."""
    now = now or utcnow()
    i, src = indicators, indicator_sources

    def grouped(col: sa.ColumnElement[Any], *where: sa.ColumnElement[bool]) -> dict[str, int]:
        n = sa.func.count().label("n")
        stmt = sa.select(col, n).where(*where).group_by(col).order_by(n.desc(), col)
        return {str(k): int(v) for k, v in conn.execute(stmt)}

    with engine.connect() as conn:
        total = int(conn.execute(sa.select(sa.func.count()).select_from(i)).scalar_one())
        by_type = grouped(i.c.type)
        by_status = grouped(i.c.status)
        by_source = grouped(src.c.source)
        fam_n = sa.func.count().label("n")
        families = {
            str(k): int(v)
            for k, v in conn.execute(
                sa.select(i.c.family, fam_n)
                .where(i.c.family != "")
                .group_by(i.c.family)
                .order_by(fam_n.desc(), i.c.family)
                .limit(20)
            )
        }
        soon = sa.literal(now + timedelta(days=7), UTCDateTime())
        expiring = conn.execute(
            sa.select(sa.func.count())
            .select_from(i)
            .where(_active(now), i.c.expires.is_not(None), i.c.expires <= soon)
        ).scalar_one()
    return {
        "total": total,
        "by_type": by_type,
        "by_status": by_status,
        "by_source": by_source,
        "top_families": families,
        "expiring_7d": int(expiring),
    }


def parse_ttl(text: str) -> tuple[str, timedelta | None]:
    """`ipv4=30d`, `url=12h`, `domain=never` as (type, ttl); InputError names what is wrong."""
    kind, sep, span = text.partition("=")
    kind, span = kind.strip().lower(), span.strip().lower()
    known = {t.value for t in IndicatorType}
    if not sep or kind not in known:
        raise InputError(
            f"TTL must be TYPE=N[d|h], TYPE one of {', '.join(sorted(known))}: {text!r}"
        )
    if span in ("never", "0", "none"):
        return kind, None
    unit = {"d": "days", "h": "hours"}.get(span[-1:], "")
    number = span[:-1] if unit else span
    if not number.isdigit():
        raise InputError(f"TTL must be a whole number of days (30d) or hours (12h): {text!r}")
    return kind, timedelta(**{unit or "days": int(number)})


def expire(
    engine: sa.Engine,
    now: datetime | None = None,
    *,
    default_ttl: dict[str, timedelta | None] | None = None,
) -> int:
    """Mark active indicators expired: past their own `expires`, or (without one) last listed
    longer ago than the TTL of their type (DEFAULT_TTL unless given). Returns how many."""
    now = now or utcnow()
    ttl = dict(DEFAULT_TTL if default_ttl is None else default_ttl)
    i = indicators
    at = sa.literal(now, UTCDateTime())
    stale = [i.c.expires < at]
    for kind, span in ttl.items():
        if span is not None:
            cutoff = sa.literal(now - span, UTCDateTime())
            stale.append(sa.and_(i.c.expires.is_(None), i.c.type == kind, i.c.last_seen < cutoff))
    stmt = (
        sa.update(i)
        .where(i.c.status == "active", sa.or_(*stale))
        .values(status="expired", updated_at=at)
    )
    with engine.begin() as conn:
        return int(conn.execute(stmt).rowcount)


def add_sighting(
    engine: sa.Engine,
    value: str,
    kind: str,
    where: str = "",
    note: str = "",
    *,
    observed_at: datetime | None = None,
) -> int:
    """Record that `value` was seen, or is a false positive (then it leaves exports and lookups
    but stays stored, so that a later import cannot bring it back). Returns the sighting id."""
    if kind not in SIGHTING_KINDS:
        raise InputError(f"sighting kind must be one of {', '.join(SIGHTING_KINDS)}: {kind!r}")
    itype, norm = guess(value)
    i = indicators
    now = observed_at or utcnow()
    with engine.begin() as conn:
        ind_id = conn.execute(
            sa.select(i.c.id).where(i.c.type == itype.value, i.c.value == norm)
        ).scalar_one_or_none()
        if ind_id is None:
            raise InputError(f"{itype.value} {norm} is not in the intel store")
        new_id = conn.execute(
            sa.insert(sightings).values(
                indicator_id=ind_id, kind=kind, observed_at=now, where=where, note=note
            )
        ).inserted_primary_key
        if kind == "false_positive":
            conn.execute(
                sa.update(i)
                .where(i.c.id == ind_id)
                .values(status="false_positive", updated_at=sa.literal(utcnow(), UTCDateTime()))
            )
    return int(new_id[0]) if new_id else 0
