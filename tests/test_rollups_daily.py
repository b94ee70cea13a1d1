"""org_daily and the overview's 30-day trend: what rollups.refresh writes per organisation and day
equals the findings and distinct devices scanned counted directly, on SQLite and PostgreSQL."""

# ruff: noqa: F811  (the fixtures imported from server_fixtures are the parameters' names)
from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from quet.server.services import dashboard, demo, orgs, rollups
from quet.store.models import Device, FindingRow, Organisation, OrgDaily, ScanReport
from server_fixtures import db_session, server_app  # noqa: F401  (fixtures)


def _direct(session: Session, under: Organisation, first: date) -> dict[date, tuple[int, int]]:
    """(findings, distinct devices scanned) per UTC day since `first`, counted in Python."""
    ids = set(session.scalars(orgs.subtree_ids(session, under)))
    found: Counter[date] = Counter()
    for f in session.scalars(sa.select(FindingRow)):
        day = f.observed_at.astimezone(UTC).date()
        if f.org_id in ids and day >= first:
            found[day] += 1
    scanned: dict[date, set[int]] = {}
    for s in session.scalars(sa.select(ScanReport)):
        day = s.finished.astimezone(UTC).date()
        if s.org_id in ids and day >= first:
            scanned.setdefault(day, set()).add(s.device_id)
    days = set(found) | set(scanned)
    return {d: (found[d], len(scanned.get(d, ()))) for d in days}


def test_trend_equals_the_direct_counts(db_session: Session) -> None:
    demo.seed(db_session)  # refreshes the roll-ups, org_daily included
    db_session.commit()
    today = datetime.now(UTC).date()
    first = today - timedelta(days=29)
    root = orgs.root(db_session)
    assert root is not None
    province = orgs.by_code(db_session, "HCM")
    assert province is not None
    for under in (root, province):
        expected = _direct(db_session, under, first)
        assert sum(n for n, _ in expected.values()) > 0  # the demo has recent findings
        got = dashboard.trend(db_session, under, today=today)
        span = [first + timedelta(days=i) for i in range(30)]
        assert [d for d, _ in got["findings"]] == span
        assert [int(v) for _, v in got["findings"]] == [expected.get(d, (0, 0))[0] for d in span]
        assert [int(v) for _, v in got["scanned"]] == [expected.get(d, (0, 0))[1] for d in span]
    # Only the last 31 days are kept, and only days with something.
    oldest = db_session.scalar(sa.select(sa.func.min(OrgDaily.day)))
    assert oldest is not None and rollups.as_date(oldest) >= today - timedelta(days=30)
    assert (
        db_session.scalar(
            sa.select(sa.func.count()).where(OrgDaily.findings == 0, OrgDaily.devices_scanned == 0)
        )
        == 0
    )


def test_refreshing_one_org_updates_its_days_only(db_session: Session) -> None:
    demo.seed(db_session)
    db_session.commit()
    today = datetime.now(UTC).date()
    leaf = db_session.scalars(
        sa.select(Organisation).where(Organisation.depth == 2).order_by(Organisation.id)
    ).first()
    assert leaf is not None
    others_before = db_session.execute(
        sa.select(OrgDaily.org_id, OrgDaily.day, OrgDaily.findings, OrgDaily.devices_scanned)
        .where(OrgDaily.org_id != leaf.id)
        .order_by(OrgDaily.org_id, OrgDaily.day)
    ).all()
    before = dict((d, n) for d, n in dashboard.trend(db_session, leaf, today=today)["findings"])[
        today
    ]
    # Two new devices scanned today, three findings on one of them, one two days ago too.
    now = datetime.now(UTC).replace(hour=12, minute=0)
    for host, n_find in (("daily-a", 3), ("daily-b", 0)):
        dev = Device(org_id=leaf.id, hostname=host, last_scan_at=now)
        db_session.add(dev)
        db_session.flush()
        report = ScanReport(
            id=str(uuid.uuid4()), device_id=dev.id, org_id=leaf.id, started=now, finished=now
        )
        db_session.add(report)
        db_session.flush()
        for i in range(n_find):
            db_session.add(
                FindingRow(
                    scan_id=report.id,
                    device_id=dev.id,
                    org_id=leaf.id,
                    observed_at=now - timedelta(days=2 if i == 0 else 0),
                    kind="hash",
                    name=f"Test.Daily-{i}",
                    status="open",
                )
            )
    db_session.flush()
    # Not refreshed yet: the trend reads org_daily, so it has not moved.
    trend = dashboard.trend(db_session, leaf, today=today)
    assert dict(trend["findings"])[today] == before
    rollups.refresh(db_session, leaf.id)
    db_session.commit()
    trend = dashboard.trend(db_session, leaf, today=today)
    assert dict(trend["findings"])[today] == before + 2
    first = today - timedelta(days=29)
    expected = _direct(db_session, leaf, first)
    span = [first + timedelta(days=i) for i in range(30)]
    assert [d for d, _ in trend["findings"]] == span
    assert [int(v) for _, v in trend["findings"]] == [expected.get(d, (0, 0))[0] for d in span]
    assert [int(v) for _, v in trend["scanned"]] == [expected.get(d, (0, 0))[1] for d in span]
    others_after = db_session.execute(
        sa.select(OrgDaily.org_id, OrgDaily.day, OrgDaily.findings, OrgDaily.devices_scanned)
        .where(OrgDaily.org_id != leaf.id)
        .order_by(OrgDaily.org_id, OrgDaily.day)
    ).all()
    assert others_after == others_before
    # The parent's trend includes the leaf's new findings.
    parent = db_session.get(Organisation, leaf.parent_id)
    assert parent is not None
    p_expected = _direct(db_session, parent, first)
    p_trend = dashboard.trend(db_session, parent, today=today)
    assert dict(p_trend["findings"])[today] == p_expected[today][0]


def test_refresh_drops_days_older_than_the_window(db_session: Session) -> None:
    root = orgs.root(db_session)
    assert root is not None
    old = datetime.now(UTC).date() - timedelta(days=60)
    db_session.add(OrgDaily(org_id=root.id, day=old, findings=5, devices_scanned=1))
    db_session.flush()
    rollups.refresh(db_session)  # no devices: no roll-up rows, and no days either
    db_session.commit()
    assert db_session.scalar(sa.select(sa.func.count()).select_from(OrgDaily)) == 0


def test_overview_figures_equal_the_live_counts(db_session: Session) -> None:
    """Every big figure of the overview comes from org_rollups; each equals a live count over the
    subtree, false positives included (after one finding is marked so and its org refreshed)."""
    demo.seed(db_session)
    db_session.commit()
    province = orgs.by_code(db_session, "HCM")
    root = orgs.root(db_session)
    assert province is not None and root is not None
    finding = db_session.scalars(
        sa.select(FindingRow)
        .join(Organisation, Organisation.id == FindingRow.org_id)
        .where(FindingRow.status == "open", orgs.subtree_clause(province))
        .order_by(FindingRow.id)
    ).first()
    assert finding is not None
    finding.status = "false_positive"
    rollups.refresh(db_session, finding.org_id)
    db_session.commit()
    cutoff = datetime.now(UTC) - timedelta(days=rollups.RECENT_DAYS)
    for under in (root, province):
        ids = set(db_session.scalars(orgs.subtree_ids(db_session, under)))
        devices = [d for d in db_session.scalars(sa.select(Device)) if d.org_id in ids]
        statuses = Counter(
            f.status for f in db_session.scalars(sa.select(FindingRow)) if f.org_id in ids
        )
        got = dashboard.overview(db_session, under, None)
        assert got.devices == len(devices) > 0
        assert got.infected == sum(d.open_findings > 0 for d in devices)
        assert got.protected_current == sum(
            d.content_updated_at is not None and d.content_updated_at >= cutoff for d in devices
        )
        assert got.open_findings == statuses["open"]
        assert got.remediated == statuses["remediated"]
        assert got.false_positives == statuses["false_positive"] >= 1
