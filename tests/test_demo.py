"""The demo seed (quet server --demo) and the roll-ups it leaves: believable, complete, idempotent;
the roll-up sums equal the figures counted from devices and findings."""

# ruff: noqa: F811  (the fixtures imported from server_fixtures are the parameters' names)
from __future__ import annotations

import ipaddress
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from quet.server.services import demo, orgs, rollups, users
from quet.store.models import (
    Campaign,
    Device,
    FindingRow,
    Organisation,
    OrgRollup,
    Participation,
    ScanReport,
    User,
)
from server_fixtures import db_session, server_app  # noqa: F401  (fixtures)


def _count(session: Session, model: type) -> int:
    return int(session.scalar(sa.select(sa.func.count()).select_from(model)) or 0)


def test_seed_builds_a_believable_demo(db_session: Session) -> None:
    summary = demo.seed(db_session)
    db_session.commit()
    provinces = db_session.scalars(
        sa.select(Organisation).where(Organisation.kind == "province").order_by(Organisation.code)
    ).all()
    assert [p.name for p in provinces] == [
        "Tỉnh Cao Bằng",
        "Thành phố Đà Nẵng",
        "Thành phố Hồ Chí Minh",
    ]
    for prov in provinces:
        agencies = db_session.scalars(
            sa.select(Organisation).where(Organisation.parent_id == prov.id)
        ).all()
        assert 3 <= len(agencies) <= 5
        assert any(a.name.startswith("Sở Y tế") for a in agencies)
        assert all(a.contact_email and a.networks for a in agencies)
        # Each agency's range is inside its province's documentation /24 and owns its devices.
        dev = db_session.scalars(sa.select(Device).where(Device.org_id == agencies[0].id)).first()
        assert dev is not None
        owner = orgs.owner_of_ip(db_session, dev.ips[0])
        assert owner is not None and owner.id == agencies[0].id

    campaign = db_session.scalars(sa.select(Campaign)).one()
    assert campaign.name == "Chiến dịch rà quét, bóc gỡ mã độc năm 2026"
    assert [p.name for p in campaign.phases] == ["Đợt 1", "Đợt 2"]
    parts = db_session.scalars(sa.select(Participation)).all()
    assert any(p.reported_at for p in parts) and any(p.received_at is None for p in parts)
    assert any(p.deployed_at and not p.reported_at for p in parts)
    assert any(p.received_at and not p.deployed_at for p in parts)

    devices = _count(db_session, Device)
    assert 55 <= devices <= 70
    kinds = set(db_session.scalars(sa.select(Device.kind)))
    assert kinds == {"server", "workstation", "endpoint"}
    versions = set(db_session.scalars(sa.select(Device.content_version)))
    assert len(versions) >= 3  # signatures of varied age
    names = " ".join(db_session.scalars(sa.select(FindingRow.name)))
    for family in ("Mirai", "Ramnit", "Sality", "Emotet", "WannaCry", "EICAR"):
        assert family in names, family
    statuses = set(db_session.scalars(sa.select(FindingRow.status)))
    assert {"open", "remediated"} <= statuses
    assert _count(db_session, ScanReport) > 40
    # The open-findings counter on each device agrees with its findings.
    for dev in db_session.scalars(sa.select(Device)):
        open_n = db_session.scalar(
            sa.select(sa.func.count()).where(
                FindingRow.device_id == dev.id, FindingRow.status == "open"
            )
        )
        assert dev.open_findings == open_n

    # Officers can sign in with the password the summary printed.
    for code in ("cb", "dn", "hcm"):
        password = summary.split(f"canbo.{code} / ")[1].split(";")[0].strip()
        user = users.authenticate(db_session, f"canbo.{code}", password)
        assert user is not None and user.role == "officer"


def test_seed_twice_changes_nothing(db_session: Session) -> None:
    demo.seed(db_session)
    db_session.commit()
    before = [_count(db_session, m) for m in (Organisation, Device, FindingRow, User)]
    assert demo.seed(db_session) == "already seeded"
    db_session.commit()
    assert [_count(db_session, m) for m in (Organisation, Device, FindingRow, User)] == before


FOUR = ("devices", "scanned_7d", "infected", "open_findings")


def _direct(session: Session, under: Organisation) -> dict[str, int]:
    tree = Device.org_id.in_(orgs.subtree_ids(session, under))
    week = datetime.now(UTC) - timedelta(days=7)
    f_tree = FindingRow.org_id.in_(orgs.subtree_ids(session, under))
    return {
        "devices": int(session.scalar(sa.select(sa.func.count()).where(tree)) or 0),
        "scanned_7d": int(
            session.scalar(sa.select(sa.func.count()).where(tree, Device.last_scan_at >= week)) or 0
        ),
        "infected": int(
            session.scalar(
                sa.select(sa.func.count(sa.distinct(FindingRow.device_id))).where(
                    f_tree, FindingRow.status == "open"
                )
            )
            or 0
        ),
        "open_findings": int(
            session.scalar(sa.select(sa.func.count()).where(f_tree, FindingRow.status == "open"))
            or 0
        ),
    }


def test_rollups_equal_the_direct_counts(db_session: Session) -> None:
    demo.seed(db_session)
    db_session.commit()
    root = orgs.root(db_session)
    assert root is not None
    overview = rollups.overview_from_rollups(db_session, root)
    direct = _direct(db_session, root)
    assert {k: overview[k] for k in direct} == direct
    assert 0 < overview["coverage_pct"] <= 100
    tree = rollups.tree_from_rollups(db_session, root)
    assert sorted(t["code"] for t in tree) == ["CB", "DN", "HCM"]
    for node in tree:
        org = orgs.by_code(db_session, node["code"])
        assert org is not None
        assert {k: node[k] for k in direct} == _direct(db_session, org)
    assert sum(t["devices"] for t in tree) == overview["devices"]


def test_refreshing_one_org_after_a_change(db_session: Session) -> None:
    demo.seed(db_session)
    db_session.commit()
    first_open = db_session.scalars(
        sa.select(FindingRow).where(FindingRow.status == "open").order_by(FindingRow.id)
    ).first()
    assert first_open is not None
    org = db_session.get(Organisation, first_open.org_id)
    assert org is not None
    before = db_session.get(OrgRollup, org.id)
    assert before is not None and before.infected > 0 and before.open_findings > 0
    # What a status change does: the finding and its device's open counter.
    for row in db_session.scalars(sa.select(FindingRow).where(FindingRow.org_id == org.id)):
        row.status = "remediated"
    for d in db_session.scalars(sa.select(Device).where(Device.org_id == org.id)):
        d.open_findings = 0
    dev = Device(org_id=org.id, hostname="hc-new", last_scan_at=datetime.now(UTC))
    db_session.add(dev)
    db_session.flush()
    assert rollups.refresh(db_session, org.id) == 1
    db_session.commit()
    mine = db_session.get(OrgRollup, org.id)
    assert mine is not None and mine.open_findings == 0 and mine.infected == 0
    assert mine.devices == _direct(db_session, org)["devices"]
    parent = db_session.get(Organisation, org.parent_id)
    assert parent is not None
    overview = rollups.overview_from_rollups(db_session, parent)
    assert {k: overview[k] for k in FOUR} == _direct(db_session, parent)
    # An organisation whose devices are all gone keeps a row of zeros.
    empty = orgs.create(db_session, "NEW", "Sở mới", "department", parent)
    assert rollups.refresh(db_session, empty.id) == 1
    assert rollups.overview_from_rollups(db_session, empty)["devices"] == 0


def test_seed_imports_a_year_of_falling_botnet_figures(db_session: Session) -> None:
    """The demo goes through the real botnet import: attributed addresses lie in the agencies'
    registered ranges, the rest stay unattributed, and the figures fall month on month and year
    on year (the campaign works), so the /botnet page has a story to show."""
    from quet.server.services import botnet
    from quet.store.models.botnet import BotnetImport, BotnetIp

    demo.seed(db_session)
    db_session.commit()
    assert _count(db_session, BotnetImport) == 1
    rows = db_session.scalars(sa.select(BotnetIp)).all()
    attributed = [r for r in rows if r.org_id is not None]
    assert attributed and len(attributed) < len(rows)
    for row in attributed:
        org = db_session.get(Organisation, row.org_id)
        assert org is not None and any(
            ipaddress.ip_address(row.ip) in ipaddress.ip_network(n.cidr) for n in org.networks
        )
    latest = botnet.summary(db_session, None)["latest_day"]
    assert latest is not None
    # The month of the newest feed day (on the 1st, today's month has no data yet).
    figures = botnet.summary(db_session, None, month=date.fromisoformat(latest).replace(day=1))
    assert figures["ips"] > 0
    assert figures["last_month"] > figures["ips"] * 0.9  # this month is not over yet
    assert figures["last_year"] > figures["ips"]


def test_seed_files_the_reported_organisations_returns(db_session: Session) -> None:
    """Every organisation whose participation says reported has a submitted or accepted return
    with frozen figures, dated when it reported; nobody else has one."""
    from quet.store.models.report import Report

    demo.seed(db_session)
    db_session.commit()
    reported = {
        p.org_id: p.reported_at
        for p in db_session.scalars(sa.select(Participation))
        if p.reported_at is not None
    }
    returns = {r.org_id: r for r in db_session.scalars(sa.select(Report))}
    assert reported and set(returns) == set(reported)
    for org_id, row in returns.items():
        assert row.status in ("submitted", "accepted")
        assert row.figures and row.evaluation
        assert row.submitted_at is not None
        assert abs((row.submitted_at - reported[org_id]).total_seconds()) < 1
