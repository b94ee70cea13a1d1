"""Per-organisation roll-ups (org_rollups): each organisation's own device and finding figures,
refreshed by ingest for one organisation and by a periodic job for all, so that the overview and
tree pages sum one small table instead of scanning millions of devices and findings; and the same
refresh keeps org_daily (findings and devices scanned per day, last 31 days) for the trend."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from quet.server.services import orgs
from quet.store.models import (
    Device,
    FindingRow,
    Organisation,
    OrgDaily,
    OrgRollup,
    ScanReport,
    UTCDateTime,
)
from quet.store.models.base import utcnow

RECENT_DAYS = 7  # "scanned" and "current signatures" mean: within the last week
DAILY_DAYS = 31  # org_daily covers today and the 30 days before (the trend shows 30)
FIGURES = (
    "devices",
    "scanned_7d",
    "infected",
    "open_findings",
    "remediated_findings",
    "false_positives",
    "current_signatures",
)
_BY_STATUS = {
    "open": "open_findings",
    "remediated": "remediated_findings",
    "false_positive": "false_positives",
}


def refresh(session: Session, org_id: int | None = None, now: datetime | None = None) -> int:
    """Recompute the roll-up of `org_id` (after an ingest) or of every organisation (the periodic
    job: "scanned in 7 days" changes with time alone). Returns the rows written; not committed."""
    now = now or utcnow()
    recent = sa.literal(now - timedelta(days=RECENT_DAYS), UTCDateTime())
    d, f = Device, FindingRow
    # Infected comes from the devices' open-finding counter (kept by ingest and status changes),
    # and findings are only counted per (org, status): both read an index, not 10M rows sorted.
    dev = sa.select(
        d.org_id,
        sa.func.count(),
        sa.func.count().filter(d.last_scan_at >= recent),
        sa.func.count().filter(d.content_updated_at >= recent),
        sa.func.count().filter(d.open_findings > 0),
    ).group_by(d.org_id)
    fnd = (
        sa.select(f.org_id, f.status, sa.func.count())
        .where(f.status.in_(tuple(_BY_STATUS)))
        .group_by(f.org_id, f.status)
    )
    if org_id is not None:
        dev, fnd = dev.where(d.org_id == org_id), fnd.where(f.org_id == org_id)
    rows: dict[int, dict[str, Any]] = {}

    def row(oid: int) -> dict[str, Any]:
        return rows.setdefault(
            oid, {"org_id": oid, "refreshed_at": now} | dict.fromkeys(FIGURES, 0)
        )

    for oid, devices, scanned, current, infected in session.execute(dev):
        row(oid).update(
            devices=devices, scanned_7d=scanned, current_signatures=current, infected=infected
        )
    for oid, status, n in session.execute(fnd):
        row(oid)[_BY_STATUS[status]] = n
    delete = sa.delete(OrgRollup)
    if org_id is not None:
        delete = delete.where(OrgRollup.org_id == org_id)
        row(org_id)  # a row of zeros once its last device is gone
    session.execute(delete)
    if rows:
        session.execute(sa.insert(OrgRollup), list(rows.values()))
    refresh_daily(session, org_id, now)
    return len(rows)


def utc_day(session: Session, column: Any) -> Any:
    """The UTC calendar day of a timestamp column, in either database."""
    if session.get_bind().dialect.name == "postgresql":
        return sa.cast(sa.func.timezone("UTC", column), sa.Date)
    return sa.func.date(column)


def as_date(value: object) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def refresh_daily(session: Session, org_id: int | None = None, now: datetime | None = None) -> int:
    """Rewrite org_daily for `org_id` (or every organisation) over the last DAILY_DAYS days:
    findings observed and distinct devices scanned per UTC day; days with neither get no row.
    Returns the rows written; not committed."""
    now = now or utcnow()
    first = now.astimezone(UTC).date() - timedelta(days=DAILY_DAYS - 1)
    since = sa.literal(datetime.combine(first, datetime.min.time(), UTC), UTCDateTime())
    f, s = FindingRow, ScanReport
    # Grouped by position: PostgreSQL sees two timezone('UTC', …) with distinct bind parameters
    # as different expressions.
    by_day: tuple[sa.ColumnClause[Any], ...] = (sa.literal_column("1"), sa.literal_column("2"))
    fnd = (
        sa.select(f.org_id, utc_day(session, f.observed_at), sa.func.count())
        .where(f.observed_at >= since)
        .group_by(*by_day)
    )
    scn = (
        sa.select(s.org_id, utc_day(session, s.finished), sa.func.count(sa.distinct(s.device_id)))
        .where(s.finished >= since)
        .group_by(*by_day)
    )
    delete = sa.delete(OrgDaily)
    if org_id is not None:
        fnd, scn = fnd.where(f.org_id == org_id), scn.where(s.org_id == org_id)
        delete = delete.where(OrgDaily.org_id == org_id)
    rows: dict[tuple[int, date], dict[str, Any]] = {}

    def row(oid: int, day: object) -> dict[str, Any]:
        d = as_date(day)
        return rows.setdefault(
            (oid, d), {"org_id": oid, "day": d, "findings": 0, "devices_scanned": 0}
        )

    for oid, day, n in session.execute(fnd):
        if day is not None and as_date(day) >= first:
            row(oid, day)["findings"] = int(n)
    for oid, day, n in session.execute(scn):
        if day is not None and as_date(day) >= first:
            row(oid, day)["devices_scanned"] = int(n)
    session.execute(delete)
    if rows:
        session.execute(sa.insert(OrgDaily), list(rows.values()))
    return len(rows)


def daily_from_rollups(
    session: Session, under: Organisation, first: date, last: date
) -> dict[date, tuple[int, int]]:
    """(findings, devices scanned) per day from `first` to `last` over `under`'s subtree; days
    without activity are absent."""
    d = OrgDaily
    rows = session.execute(
        sa.select(d.day, sa.func.sum(d.findings), sa.func.sum(d.devices_scanned))
        .join(Organisation, Organisation.id == d.org_id)
        .where(orgs.subtree_clause(under), d.day >= first, d.day <= last)
        .group_by(d.day)
    )
    return {as_date(day): (int(n or 0), int(m or 0)) for day, n, m in rows}


def _totals(figures: dict[str, int]) -> dict[str, Any]:
    devices = figures["devices"]
    return figures | {
        "coverage_pct": round(100.0 * figures["scanned_7d"] / devices, 1) if devices else 0.0,
        "current_pct": round(100.0 * figures["current_signatures"] / devices, 1)
        if devices
        else 0.0,
    }


def overview_from_rollups(session: Session, under: Organisation) -> dict[str, Any]:
    """Sums over `under`'s subtree: devices, scanned_7d, infected, open_findings,
    remediated_findings, false_positives, current_signatures, coverage_pct, current_pct,
    refreshed_at (oldest)."""
    r = OrgRollup
    sums = [sa.func.coalesce(sa.func.sum(getattr(r, name)), 0) for name in FIGURES]
    result = session.execute(
        sa.select(*sums, sa.func.min(r.refreshed_at))
        .join(Organisation, Organisation.id == r.org_id)
        .where(orgs.subtree_clause(under))
    ).one()
    out = _totals({name: int(v) for name, v in zip(FIGURES, result[:-1], strict=True)})
    out["refreshed_at"] = result[-1]
    return out


def tree_from_rollups(session: Session, under: Organisation) -> list[dict[str, Any]]:
    """One entry per child of `under` with its subtree's sums (org_id, code, name, kind and the
    figures of overview_from_rollups), by name; `under`'s own devices are not in any child."""
    r = OrgRollup
    cols = [getattr(r, name) for name in FIGURES]
    children = session.scalars(
        sa.select(Organisation)
        .where(Organisation.parent_id == under.id)
        .order_by(Organisation.name)
    ).all()
    sums: dict[int, dict[str, int]] = {c.id: dict.fromkeys(FIGURES, 0) for c in children}
    # The child of `under` that holds a row is the first id of the path after under's own.
    rest = sa.func.substr(Organisation.path, len(under.path) + 1)
    if session.get_bind().dialect.name == "postgresql":
        child = sa.func.split_part(rest, "/", 1)
    else:
        child = sa.func.substr(rest, 1, sa.func.instr(rest, "/") - 1)
    rows = session.execute(
        sa.select(child, *(sa.func.sum(c) for c in cols))
        .join(Organisation, Organisation.id == r.org_id)
        .where(orgs.subtree_clause(under), Organisation.id != under.id)
        .group_by(child)
    )
    for child_id, *values in rows:
        acc = sums.get(int(child_id))
        if acc is not None:
            acc.update({name: int(v or 0) for name, v in zip(FIGURES, values, strict=True)})
    return [
        {"org_id": c.id, "code": c.code, "name": c.name, "kind": c.kind} | _totals(sums[c.id])
        for c in children
    ]


# -- refreshing what changed ----------------------------------------------------------------------
# Ingest and remediation mark the organisations they touch; the server refreshes only those, on
# a timer (a few ms each), so the pages read fresh small tables without refreshing per request.
_dirty: set[int] = set()
_dirty_lock = threading.Lock()


def mark_dirty(org_ids: Iterable[int]) -> None:
    with _dirty_lock:
        _dirty.update(org_ids)


def refresh_dirty(sessions: Callable[[], Session]) -> int:
    """Refresh the organisations marked since the last call; returns how many."""
    with _dirty_lock:
        ids = sorted(_dirty)
        _dirty.clear()
    if not ids:
        return 0
    with sessions() as session:
        for org_id in ids:
            refresh(session, org_id)
        session.commit()
    return len(ids)
