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
    "has_data",
    "latest_day",
    "lookup",
    "org_ips",
    "period_start",
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


def period_start(period: str, day: date) -> date:
    """The start of the statistics period holding `day`: the day, its ISO week's Monday, or the
    1st of its month."""
    if period not in PERIODS:
        raise InputError(f"unknown period {period!r}: one of {', '.join(PERIODS)}")
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def period_end(period: str, start: date) -> date:
    """The last day of the period that begins on `start`."""
    if period == "day":
        return start
    if period == "week":
        return start + timedelta(days=6)
    return _next_month(start) - timedelta(days=1)


def previous_start(period: str, start: date) -> date:
    """The period before: yesterday, last week's Monday, last month's 1st."""
    if period == "day":
        return start - timedelta(days=1)
    if period == "week":
        return start - timedelta(days=7)
    return _prev_month(start)


def year_ago_start(period: str, start: date) -> date:
    """The same period a year earlier: the same date (28 Feb for 29 Feb), the Monday 52 weeks
    back, the same month."""
    if period == "week":
        return start - timedelta(weeks=52)
    try:
        return start.replace(year=start.year - 1)
    except ValueError:  # 29 February
        return start.replace(year=start.year - 1, day=28)


def _is_national(under: Organisation | None) -> bool:
    return under is None or under.parent_id is None


def _org_keys(under: Organisation) -> sa.Select[Any]:
    """The org-dimension keys (ids as text) of `under`'s subtree."""
    return sa.select(sa.cast(Organisation.id, sa.String)).where(
        Organisation.path.startswith(under.path)
    )


def has_data(session: Session, period: str, start: date) -> bool:
    """Whether any feed data was imported for the period (its national statistics row exists)."""
    q = sa.select(BotnetStat.ips).where(
        BotnetStat.period == period,
        BotnetStat.start == start,
        BotnetStat.dim == "all",
        BotnetStat.key == "",
    )
    return session.scalar(q.limit(1)) is not None


def _count(session: Session, under: Organisation | None, period: str, start: date) -> int | None:
    """Unique IPs of the period, for the country or a subtree; None when the period has no
    feed data at all (which is not the same as none of the subtree's IPs in it)."""
    if not has_data(session, period, start):
        return None
    q = sa.select(sa.func.coalesce(sa.func.sum(BotnetStat.ips), 0)).where(
        BotnetStat.period == period, BotnetStat.start == start
    )
    if _is_national(under):
        q = q.where(BotnetStat.dim == "all", BotnetStat.key == "")
    else:
        assert under is not None
        q = q.where(BotnetStat.dim == "org", BotnetStat.key.in_(_org_keys(under)))
    return int(session.scalar(q) or 0)


def _change(now: int | None, before: int | None) -> float | None:
    if now is None or before is None or before == 0:
        return None
    return round((now - before) * 100.0 / before, 1)


def breakdown(
    session: Session,
    under: Organisation | None,
    dim: str,
    month: date,
    limit: int = TOP,
    period: str = "month",
) -> list[dict[str, Any]]:
    """The top keys of one dimension in the period holding `month` (a month by default):
    [{key, label, ips}], biggest first; organisation rows also carry their `code` ('' for the
    unattributed bucket).

    For the country these are the statistics rows. For a subtree, organisations come from the
    statistics too (exact); family, province, ASN and sector are counted over the subtree's IP
    rows whose sightings overlap the period (an upper bound: botnet_ips keeps no per-day rows)."""
    if dim not in DIMS or dim == "all":
        raise InputError(f"unknown dimension {dim!r}: one of {', '.join(DIMS[1:])}")
    start = period_start(period, month)
    if _is_national(under) or dim == "org":
        q = sa.select(BotnetStat.key, BotnetStat.label, BotnetStat.ips).where(
            BotnetStat.period == period, BotnetStat.start == start, BotnetStat.dim == dim
        )
        if not _is_national(under):
            assert under is not None
            q = q.where(BotnetStat.key.in_(_org_keys(under)))
        q = q.order_by(BotnetStat.ips.desc(), BotnetStat.key).limit(limit)
        rows: list[dict[str, Any]] = [
            {"key": k, "label": lbl, "ips": int(n)} for k, lbl, n in session.execute(q)
        ]
        if dim == "org":
            ids = [int(r["key"]) for r in rows if str(r["key"]).isdigit()]
            codes = dict(
                session.execute(
                    sa.select(Organisation.id, Organisation.code).where(Organisation.id.in_(ids))
                ).all()
            )
            for r in rows:
                r["code"] = codes.get(int(r["key"]), "") if str(r["key"]).isdigit() else ""
        return rows
    assert under is not None
    end = period_end(period, start)
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
    session: Session,
    under: Organisation | None,
    month: date | None = None,
    period: str = "month",
) -> dict[str, Any]:
    """The figures `quet botnet stats` and the /botnet page share, for the country (`under` None
    or the root) or one subtree, for the period (a month by default; also 'week' or 'day')
    holding `month` (default: the newest feed day): its unique IPs, the previous period's
    (`last_month`), the same period a year earlier (`last_year`), both changes in %, the newest
    feed day and its count, and the period's top keys.

    A period without any feed data gives None (not 0) for its count and for the changes that
    need it; `has_data` says whether the asked period itself has any."""
    latest = latest_day(session)
    start = period_start(period, month or latest or date.today())
    prev, year_ago = previous_start(period, start), year_ago_start(period, start)
    ips = _count(session, under, period, start)
    last_month = _count(session, under, period, prev)
    last_year = _count(session, under, period, year_ago)
    national = _is_national(under)
    return {
        "scope": None if national or under is None else {"code": under.code, "name": under.name},
        "period": period,
        "start": start.isoformat(),
        "end": period_end(period, start).isoformat(),
        "month": start.strftime("%Y-%m"),
        "has_data": ips is not None,
        "ips": ips,
        "last_month": last_month,
        "last_year": last_year,
        "previous_start": prev.isoformat(),
        "year_ago_start": year_ago.isoformat(),
        "change_month_pct": _change(ips, last_month),
        "change_year_pct": _change(ips, last_year),
        "latest_day": latest.isoformat() if latest else None,
        "latest_day_ips": (_count(session, under, "day", latest) or 0) if latest else 0,
        "top_families": breakdown(session, under, "family", start, period=period),
        "top_provinces": breakdown(session, under, "province", start, period=period),
        "top_isps": breakdown(session, under, "asn", start, period=period),
        "top_sectors": breakdown(session, under, "sector", start, period=period),
        "top_orgs": breakdown(session, under, "org", start, period=period),
    }


def trend(
    session: Session,
    under: Organisation | None,
    days: int = 730,
    end: date | None = None,
    period: str = "day",
) -> list[tuple[date, int]]:
    """Unique IPs per day (or per week / month: `period`) over the last `days` days up to `end`
    (default: the newest feed day); each point is the period's start."""
    end = end or latest_day(session)
    if end is None:
        return []
    if period not in PERIODS:
        raise InputError(f"unknown period {period!r}: one of {', '.join(PERIODS)}")
    first = period_start(period, end - timedelta(days=days - 1))
    total = sa.func.sum(BotnetStat.ips)
    q = sa.select(BotnetStat.start, total).where(
        BotnetStat.period == period, BotnetStat.start >= first, BotnetStat.start <= end
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
    """The answer about one address: listed on the newest feed day or not. `families` is for the
    operators' CLI only; the public answer (`to_dict`, the API and the /lookup page) is yes or
    no and the day, never the family, the owner, the ASN or the history."""

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


def client_key(host: str) -> str:
    """The rate limit's key for a client address: an IPv6 client by its /64 (one subscriber's
    prefix, within which addresses rotate freely), IPv4 (and IPv4-mapped) by the address."""
    try:
        addr = ipaddress.ip_address(host.strip().strip("[]"))
    except ValueError:
        return host or "?"
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(addr) >> 64 << 64, 64)))
    return str(addr)


class RateLimiter:
    """At most `limit` calls per `window` seconds per client (a sliding log kept in memory),
    shared by the /lookup page and the API. Clients are keyed by `client_key` (IPv6 by /64).

    The table holds at most `max_clients` keys. When it is full, only clients whose window has
    passed are forgotten (they have nothing left to count); if every key is still live, a new
    client is refused until one expires. A flood of new addresses therefore never resets the
    budget of clients already counted."""

    def __init__(self, limit: int = 30, window: float = 60.0, max_clients: int = 100_000) -> None:
        self.limit, self.window, self.max_clients = limit, window, max_clients
        self._log: OrderedDict[str, deque[float]] = OrderedDict()  # least recently hit first
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._log)

    def _evict_expired(self, now: float) -> None:
        while self._log:
            log = next(iter(self._log.values()))
            if log and log[-1] > now - self.window:
                return  # the least recently hit client is still live: so are all the others
            self._log.popitem(last=False)

    def hit(self, client: str, now: float | None = None) -> float:
        """Count one call; 0 when allowed, else the seconds until the next one would be."""
        now = time.monotonic() if now is None else now
        key = client_key(client)
        with self._lock:
            log = self._log.get(key)
            if log is None:
                if len(self._log) >= self.max_clients:
                    self._evict_expired(now)
                if len(self._log) >= self.max_clients:
                    oldest = next(iter(self._log.values()))
                    return max(0.001, oldest[-1] + self.window - now)
                log = self._log[key] = deque()
            self._log.move_to_end(key)
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
