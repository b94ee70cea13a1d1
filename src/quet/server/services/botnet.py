"""Botnet IPs on the server: storing what `quet botnet import` attributed (apply_ips, apply_stats,
record_import), the figures the pages and `quet botnet stats` share (summary, trend, breakdown),
the organisations' IP lists with status, the public lookup and the daily digests.

The writes live in botnet_store (re-exported here, the engine's one entry point), the digests in
botnet_digest. Reads of figures use `botnet_stats` only, never the IP rows, so that two years of
daily charts stay cheap. Nothing here commits except send_digests (mail that went out must be
remembered).
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from quet.errors import InputError
from quet.server.services import audit
from quet.server.services.botnet_store import apply_ips, apply_stats, record_import
from quet.server.services.errors import Forbidden
from quet.server.settings import Settings
from quet.store.models import Organisation
from quet.store.models.botnet import (
    DIMS,
    PERIODS,
    SECTORS,
    BotnetDigest,
    BotnetIp,
    BotnetStat,
)

if TYPE_CHECKING:
    from quet.server.deps import Principal
    from quet.server.services.botnet_digest import DigestResult

ServerSettings = Settings  # the name the engine's contract uses
STATUSES = ("new", "active", "gone")
TOP = 10
STALE_DAYS = 7  # a lookup says the data is old when the newest feed day is further back
__all__ = [
    "DIMS",
    "PERIODS",
    "SECTORS",
    "STATUSES",
    "LookupResult",
    "ServerSettings",
    "apply_ips",
    "apply_stats",
    "breakdown",
    "latest_day",
    "lookup",
    "org_ips",
    "record_import",
    "send_digests",
    "status_of",
    "summary",
    "trend",
]

# --- reading: figures -----------------------------------------------------------------------------


def latest_day(session: Session, today: date | None = None) -> date | None:
    """The newest feed day (of the statistics, else of the IP rows), not after `today`."""
    stat = sa.select(sa.func.max(BotnetStat.start)).where(
        BotnetStat.period == "day", BotnetStat.dim == "all"
    )
    ips = sa.select(sa.func.max(BotnetIp.last_seen))
    if today is not None:
        stat = stat.where(BotnetStat.start <= today)
        ips = ips.where(BotnetIp.last_seen <= today)
    day = session.scalar(stat)
    return day if day is not None else session.scalar(ips)


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _prev_month(start: date) -> date:
    return (start - timedelta(days=1)).replace(day=1)


def _next_month(start: date) -> date:
    return (start + timedelta(days=32)).replace(day=1)


def _is_national(under: Organisation | None) -> bool:
    return under is None or under.parent_id is None


def _org_keys(under: Organisation) -> sa.Select[Any]:
    """The org-dimension keys (ids as text) of `under`'s subtree."""
    return sa.select(sa.cast(Organisation.id, sa.String)).where(
        Organisation.path.startswith(under.path)
    )


def _count(session: Session, under: Organisation | None, period: str, start: date) -> int:
    q = sa.select(sa.func.coalesce(sa.func.sum(BotnetStat.ips), 0)).where(
        BotnetStat.period == period, BotnetStat.start == start
    )
    if _is_national(under):
        q = q.where(BotnetStat.dim == "all", BotnetStat.key == "")
    else:
        assert under is not None
        q = q.where(BotnetStat.dim == "org", BotnetStat.key.in_(_org_keys(under)))
    return int(session.scalar(q) or 0)


def _change(now: int, before: int) -> float | None:
    if before == 0:
        return None
    return round((now - before) * 100.0 / before, 1)


def breakdown(
    session: Session,
    under: Organisation | None,
    dim: str,
    month: date,
    limit: int = TOP,
) -> list[dict[str, Any]]:
    """The month's top keys of one dimension: [{key, label, ips}], biggest first.

    For the country these are the statistics rows. For a subtree, organisations come from the
    statistics too (exact); family, province, ASN and sector are counted over the subtree's IP
    rows whose sightings overlap the month (an upper bound: botnet_ips keeps no per-day rows)."""
    if dim not in DIMS or dim == "all":
        raise InputError(f"unknown dimension {dim!r}: one of {', '.join(DIMS[1:])}")
    start = _month_start(month)
    if _is_national(under) or dim == "org":
        q = sa.select(BotnetStat.key, BotnetStat.label, BotnetStat.ips).where(
            BotnetStat.period == "month", BotnetStat.start == start, BotnetStat.dim == dim
        )
        if not _is_national(under):
            assert under is not None
            q = q.where(BotnetStat.key.in_(_org_keys(under)))
        q = q.order_by(BotnetStat.ips.desc(), BotnetStat.key).limit(limit)
        return [{"key": k, "label": lbl, "ips": int(n)} for k, lbl, n in session.execute(q)]
    assert under is not None
    end = _next_month(start) - timedelta(days=1)
    ip_count = sa.func.count(sa.distinct(BotnetIp.ip))
    scope = sa.and_(
        BotnetIp.org_id.in_(
            sa.select(Organisation.id).where(Organisation.path.startswith(under.path))
        ),
        BotnetIp.last_seen >= start,
        BotnetIp.first_seen <= end,
    )
    if dim == "sector":
        return _sector_breakdown(session, under, scope, limit)
    column: Any = {"family": BotnetIp.family, "province": BotnetIp.province, "asn": BotnetIp.asn}[
        dim
    ]
    label: Any = sa.func.max(BotnetIp.isp) if dim == "asn" else sa.func.max(column)
    q2 = (
        sa.select(column, label, ip_count)
        .where(scope)
        .group_by(column)
        .order_by(ip_count.desc(), column)
        .limit(limit)
    )
    out = []
    for key, lbl, n in session.execute(q2):
        text = "" if key is None else str(key)
        out.append({"key": text, "label": str(lbl or text), "ips": int(n)})
    return out


def _sector_breakdown(
    session: Session, under: Organisation, scope: sa.ColumnElement[bool], limit: int
) -> list[dict[str, Any]]:
    per_org: dict[int | None, int] = {
        org_id: int(n)
        for org_id, n in session.execute(
            sa.select(BotnetIp.org_id, sa.func.count(sa.distinct(BotnetIp.ip)))
            .where(scope)
            .group_by(BotnetIp.org_id)
        )
    }
    sectors = effective_sectors(session, under)
    totals: dict[str, int] = {}
    for org_id, n in per_org.items():
        if org_id is None:
            continue
        key = sectors.get(org_id, "")
        totals[key] = totals.get(key, 0) + int(n)
    ranked = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    return [{"key": k, "label": k, "ips": n} for k, n in ranked]


def effective_sectors(session: Session, under: Organisation) -> dict[int, str]:
    """Each organisation of the subtree → its sector, or its nearest ancestor's non-empty one."""
    ancestor_ids = [int(p) for p in under.path.strip("/").split("/") if p]
    rows = session.execute(
        sa.select(Organisation.id, Organisation.path, Organisation.sector).where(
            sa.or_(Organisation.path.startswith(under.path), Organisation.id.in_(ancestor_ids))
        )
    ).all()
    own = {i: s for i, _, s in rows}
    out = {}
    for org_id, path, _ in rows:
        chain = [int(p) for p in path.strip("/").split("/") if p]
        out[org_id] = next((own.get(i, "") for i in reversed(chain) if own.get(i, "")), "")
    return out


def summary(
    session: Session, under: Organisation | None, month: date | None = None
) -> dict[str, Any]:
    """The figures `quet botnet stats` and the /botnet page share, for the country (`under` None
    or the root) or one subtree: the month's unique IPs, last month's, the same month last year,
    both changes in %, the newest feed day and its count, and the month's top keys."""
    latest = latest_day(session)
    start = _month_start(month or latest or date.today())
    prev, year_ago = _prev_month(start), start.replace(year=start.year - 1)
    ips = _count(session, under, "month", start)
    last_month = _count(session, under, "month", prev)
    last_year = _count(session, under, "month", year_ago)
    national = _is_national(under)
    return {
        "scope": None if national or under is None else {"code": under.code, "name": under.name},
        "month": start.strftime("%Y-%m"),
        "ips": ips,
        "last_month": last_month,
        "last_year": last_year,
        "change_month_pct": _change(ips, last_month),
        "change_year_pct": _change(ips, last_year),
        "latest_day": latest.isoformat() if latest else None,
        "latest_day_ips": _count(session, under, "day", latest) if latest else 0,
        "top_families": breakdown(session, under, "family", start),
        "top_provinces": breakdown(session, under, "province", start),
        "top_isps": breakdown(session, under, "asn", start),
        "top_sectors": breakdown(session, under, "sector", start),
        "top_orgs": breakdown(session, under, "org", start),
    }


def trend(
    session: Session, under: Organisation | None, days: int = 730, end: date | None = None
) -> list[tuple[date, int]]:
    """Daily unique IPs over the last `days` feed days up to `end` (default: the newest)."""
    end = end or latest_day(session)
    if end is None:
        return []
    first = end - timedelta(days=days - 1)
    total = sa.func.sum(BotnetStat.ips)
    q = sa.select(BotnetStat.start, total).where(
        BotnetStat.period == "day", BotnetStat.start >= first, BotnetStat.start <= end
    )
    if _is_national(under):
        q = q.where(BotnetStat.dim == "all", BotnetStat.key == "")
    else:
        assert under is not None
        q = q.where(BotnetStat.dim == "org", BotnetStat.key.in_(_org_keys(under)))
    q = q.group_by(BotnetStat.start).order_by(BotnetStat.start)
    return [
        (d if isinstance(d, date) else date.fromisoformat(d), int(n)) for d, n in session.execute(q)
    ]


# --- reading: IP lists ----------------------------------------------------------------------------


def status_of(first_seen: date, last_seen: date, latest: date | None) -> str:
    """new = first seen on the newest feed day; active = seen on it; gone = not seen on it."""
    if latest is None or last_seen < latest:
        return "gone"
    return "new" if first_seen >= latest else "active"


@dataclass
class IpRow:
    ip: str
    family: str
    org_id: int | None
    org_code: str
    org_name: str
    first_seen: date
    last_seen: date
    days_seen: int
    status: str
    asn: int | None
    isp: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "ip": self.ip,
            "family": self.family,
            "org": self.org_code,
            "org_name": self.org_name,
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "days_seen": self.days_seen,
            "status": self.status,
            "asn": self.asn,
            "isp": self.isp,
        }


def org_ips(
    session: Session,
    org: Organisation,
    *,
    subtree: bool = False,
    since: date | None = None,
    limit: int = 500,
    latest: date | None = None,
) -> tuple[list[IpRow], int]:
    """The IPs attributed to `org` (or its whole subtree) last seen on or after `since` (default:
    30 days before the newest feed day): new and active first, then gone; and the total count."""
    latest = latest if latest is not None else latest_day(session)
    if since is None:
        since = (latest or date.today()) - timedelta(days=30)
    if subtree:
        where: sa.ColumnElement[bool] = BotnetIp.org_id.in_(
            sa.select(Organisation.id).where(Organisation.path.startswith(org.path))
        )
    else:
        where = BotnetIp.org_id == org.id
    where = sa.and_(where, BotnetIp.last_seen >= since)
    total = int(session.scalar(sa.select(sa.func.count()).select_from(BotnetIp).where(where)) or 0)
    q = (
        sa.select(BotnetIp, Organisation.code, Organisation.name, Organisation.path)
        .join(Organisation, Organisation.id == BotnetIp.org_id)
        .where(where)
        .order_by(BotnetIp.last_seen.desc(), Organisation.path, BotnetIp.ip, BotnetIp.family)
        .limit(limit)
    )
    out = [
        IpRow(
            ip=r.ip,
            family=r.family,
            org_id=r.org_id,
            org_code=code,
            org_name=name,
            first_seen=r.first_seen,
            last_seen=r.last_seen,
            days_seen=r.days_seen,
            status=status_of(r.first_seen, r.last_seen, latest),
            asn=r.asn,
            isp=r.isp,
        )
        for r, code, name, _ in session.execute(q)
    ]
    order = {s: i for i, s in enumerate(STATUSES)}
    out.sort(key=lambda r: (order[r.status] if r.status != "new" else -1, r.org_code, r.ip))
    return out, total


# --- the public lookup ----------------------------------------------------------------------------


@dataclass
class LookupResult:
    """What the public may learn about one address: listed on the newest feed day or not, and
    the families. Never the owner, the ASN or the history."""

    ip: str
    listed: bool
    day: date | None  # the newest feed day the answer is about
    families: list[str] = field(default_factory=list)
    stale: bool = False  # the newest feed day is more than STALE_DAYS old

    def to_dict(self) -> dict[str, Any]:
        return {
            "ip": self.ip,
            "listed": self.listed,
            "day": self.day.isoformat() if self.day else None,
            "families": list(self.families),
            "stale": self.stale,
        }


def canonical_ip(text: str) -> str:
    """IPv4 dotted or IPv6 compressed; an IPv4-mapped IPv6 address becomes its IPv4 form."""
    try:
        addr = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError as exc:
        raise InputError(f"{text[:60]!r} is not an IP address") from exc
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return addr.compressed


def lookup(session: Session, ip: str, today: date | None = None) -> LookupResult:
    """Is `ip` in a botnet on the newest feed day (not after `today`)?"""
    canonical = canonical_ip(ip)
    today = today or date.today()
    day = latest_day(session, today)
    if day is None:
        return LookupResult(canonical, False, None)
    families = sorted(
        session.scalars(
            sa.select(BotnetIp.family).where(BotnetIp.ip == canonical, BotnetIp.last_seen == day)
        )
    )
    return LookupResult(
        canonical,
        bool(families),
        day,
        [f for f in families if f],
        stale=(today - day).days > STALE_DAYS,
    )


# --- digest settings ------------------------------------------------------------------------------


def digest_settings(session: Session, org: Organisation) -> BotnetDigest:
    """The organisation's digest row, or the defaults (not added to the session) when it has none."""
    row = session.get(BotnetDigest, org.id)
    if row is None:
        row = BotnetDigest(
            org_id=org.id, email_enabled=True, webhook_enabled=True, threshold=1, last_sent_day=None
        )
    return row


def set_digest_settings(
    session: Session,
    principal: Principal,
    org: Organisation,
    *,
    email_enabled: bool,
    webhook_enabled: bool,
    threshold: int,
) -> BotnetDigest:
    """Change who gets the daily digest and from how many IPs; audit logged. Forbidden unless the
    person may change `org`."""
    if not principal.can_change(org):
        raise Forbidden("not allowed for this organisation")
    if not 1 <= threshold <= 1_000_000:
        raise InputError("threshold must be between 1 and 1000000")
    row = session.get(BotnetDigest, org.id)
    if row is None:
        row = BotnetDigest(org_id=org.id, last_sent_day=None)
        session.add(row)
    before = (row.email_enabled, row.webhook_enabled, row.threshold)
    row.email_enabled, row.webhook_enabled, row.threshold = (
        email_enabled,
        webhook_enabled,
        threshold,
    )
    if before != (email_enabled, webhook_enabled, threshold):
        audit.record(
            session,
            principal.actor,
            "botnet.digest_settings",
            f"org:{org.code}",
            org.id,
            {"email": email_enabled, "webhook": webhook_enabled, "threshold": threshold},
        )
    session.flush()
    return row


def send_digests(session: Session, settings: Settings, day: date | None = None) -> DigestResult:
    """Each organisation with at least its threshold of IPs active on `day` (default: the newest
    feed day) gets one e-mail (CSV attached) and one signed webhook, once per day. Commits."""
    from quet.server.services.botnet_digest import send

    return send(session, settings, day)


# --- the public lookup's rate limit ---------------------------------------------------------------


class RateLimiter:
    """At most `limit` calls per `window` seconds per client (a sliding log kept in memory; the
    oldest clients are forgotten past `max_clients`). Shared by the /lookup page and the API."""

    def __init__(self, limit: int = 30, window: float = 60.0, max_clients: int = 100_000) -> None:
        self.limit, self.window, self.max_clients = limit, window, max_clients
        self._log: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, client: str, now: float | None = None) -> float:
        """Count one call; 0 when allowed, else the seconds until the next one would be."""
        now = time.monotonic() if now is None else now
        with self._lock:
            log = self._log.get(client)
            if log is None:
                log = self._log[client] = deque()
                while len(self._log) > self.max_clients:
                    self._log.popitem(last=False)
            self._log.move_to_end(client)
            while log and log[0] <= now - self.window:
                log.popleft()
            if len(log) >= self.limit:
                return max(0.001, log[0] + self.window - now)
            log.append(now)
            return 0.0


LOOKUP_LIMIT = 30  # per client per minute


_limiter_lock = threading.Lock()


def limiter(state: Any) -> RateLimiter:
    """The app's one lookup limiter (kept on app.state, so each app instance has its own)."""
    with _limiter_lock:
        found = getattr(state, "botnet_lookup_limiter", None)
        if not isinstance(found, RateLimiter):
            found = RateLimiter(LOOKUP_LIMIT, 60.0)
            state.botnet_lookup_limiter = found
        return found


# --- the server's daily run -----------------------------------------------------------------------

DIGEST_CHECK_SECONDS = 300.0  # how often the server looks for a newly imported feed day
DIGEST_MAX_AGE_DAYS = 3  # the loop leaves older feed days alone (`quet botnet notify --day` not)
_digest_done: dict[int, tuple[date, float]] = {}


def digests_due(
    sessions: Callable[[], Session], settings: Settings, today: date | None = None
) -> DigestResult | None:
    """The server loop's step: send the newest feed day's digests unless that day is done (all
    delivered within the last hour) or older than DIGEST_MAX_AGE_DAYS."""
    with sessions() as session:
        day = latest_day(session)
        today = today or date.today()
        if day is None or (today - day).days > DIGEST_MAX_AGE_DAYS:
            return None
        done = _digest_done.get(id(sessions))
        if done is not None and done[0] == day and time.monotonic() - done[1] < 3600:
            return None
        result = send_digests(session, settings, day)
        if not result.failed:
            _digest_done[id(sessions)] = (day, time.monotonic())
        return result
