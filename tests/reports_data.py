"""A small, fully known world for the report tests: a three-level tree, one campaign, and devices,
scans, findings, network alerts and botnet IPs whose counts each test can state exactly.

    VN (national, campaign scope)
    ├── CB  Sở Thông tin và Truyền thông tỉnh Cao Bằng
    │   ├── CB-A  Sở Y tế tỉnh Cao Bằng            (the unit with data)
    │   ├── CB-B  Sở Tài chính tỉnh Cao Bằng
    │   └── CB-C  Sở Giáo dục và Đào tạo tỉnh Cao Bằng
    └── DN  Sở Thông tin và Truyền thông thành phố Đà Nẵng
        └── DN-A  Sở Y tế thành phố Đà Nẵng
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from quet.server.deps import Principal
from quet.server.services import campaigns, orgs, users
from quet.store.models import (
    Campaign,
    Device,
    FindingRow,
    NetAlertRow,
    Organisation,
    Participation,
    ScanReport,
    User,
)
from quet.store.models.botnet import BotnetIp

CAMPAIGN = "Chiến dịch Giảm tỉ lệ lây nhiễm mã độc và Botnet năm 2026"
NAMES = {
    "CB": ("Sở Thông tin và Truyền thông tỉnh Cao Bằng", "province", None),
    "CB-A": ("Sở Y tế tỉnh Cao Bằng", "department", "CB"),
    "CB-B": ("Sở Tài chính tỉnh Cao Bằng", "department", "CB"),
    "CB-C": ("Sở Giáo dục và Đào tạo tỉnh Cao Bằng", "department", "CB"),
    "DN": ("Sở Thông tin và Truyền thông thành phố Đà Nẵng", "province", None),
    "DN-A": ("Sở Y tế thành phố Đà Nẵng", "department", "DN"),
}
# What CB-A's own data adds up to (see add_unit_data).
CB_A = {
    "devices": 5,
    "scanned": 3,
    "infected": 2,
    "cleaned": 1,
    "protected": 2,
    "coverage": 40.0,
    "net_hosts": 2,
    "botnet_ips": 3,
}


@dataclass
class World:
    campaign: Campaign
    start: date
    deadline: date


def at(day: date, hour: int = 9) -> datetime:
    return datetime.combine(day, time(hour), UTC)


def build(session: Session, today: date, *, deadline_in: int = 10) -> World:
    """The tree, the campaign (one phase: 20 days ago to 10 days ahead, report deadline
    `deadline_in` days from today) and every unit having received and deployed it."""
    root = orgs.root(session)
    assert root is not None
    for code, (name, kind, parent) in NAMES.items():
        p = orgs.by_code(session, parent) if parent else root
        orgs.create(session, code, name, kind, p, contact_email=f"{code.lower()}@example.test")
    session.flush()
    start = today - timedelta(days=20)
    campaign = campaigns.create_campaign(
        session,
        "test",
        CAMPAIGN,
        today.year,
        root,
        [
            campaigns.PhaseSpec(
                1, "Đợt 1", start, today + timedelta(days=10), today + timedelta(days=deadline_in)
            )
        ],
    )
    for code in NAMES:
        org = orgs.by_code(session, code)
        assert org is not None
        session.add(
            Participation(
                campaign_id=campaign.id,
                org_id=org.id,
                received_at=at(start),
                # CB-C received the campaign but has not deployed it.
                deployed_at=None if code == "CB-C" else at(start + timedelta(days=1)),
                report={},
            )
        )
    session.flush()
    return World(campaign, start, today + timedelta(days=deadline_in))


def _scan(session: Session, device: Device, when: datetime) -> ScanReport:
    scan = ScanReport(
        id=str(uuid.uuid4()),
        device_id=device.id,
        org_id=device.org_id,
        started=when - timedelta(minutes=5),
        finished=when,
        signatures={},
    )
    session.add(scan)
    session.flush()
    return scan


def add_unit_data(session: Session, world: World, code: str = "CB-A") -> None:
    """Five devices with the counts of CB_A, and the decoys that must not count."""
    org = orgs.by_code(session, code)
    assert org is not None
    batch = session.scalar(sa.select(sa.func.count()).select_from(Device)) or 0
    net = f"203.0.{batch // 5}"  # each call its own botnet addresses
    now = datetime.now(UTC)
    inside = at(world.start + timedelta(days=3))
    before = at(world.start - timedelta(days=30))
    devs = []
    for i in range(5):
        d = Device(
            org_id=org.id,
            hostname=f"{code.lower()}-pc{i}",
            kind="workstation",
            ips=[f"10.0.0.{i + 1}"],
            antimalware=[],
            # Two with signatures updated today (current), three a month old.
            content_updated_at=now if i < 2 else now - timedelta(days=30),
            open_findings=0,
        )
        session.add(d)
        devs.append(d)
    session.flush()
    # Scanned within the campaign: pc0, pc1, pc2; pc3 only long before it.
    for d in devs[:3]:
        _scan(session, d, inside)
    old_scan = _scan(session, devs[3], before)
    # pc0: infected, still open. pc1: infected, cleaned. pc2: a false positive only.
    s0 = session.scalars(sa.select(ScanReport).where(ScanReport.device_id == devs[0].id)).one()
    s1 = session.scalars(sa.select(ScanReport).where(ScanReport.device_id == devs[1].id)).one()
    s2 = session.scalars(sa.select(ScanReport).where(ScanReport.device_id == devs[2].id)).one()
    for scan, dev, status in ((s0, devs[0], "open"), (s1, devs[1], "remediated"),
                              (s2, devs[2], "false_positive")):  # fmt: skip
        session.add(
            FindingRow(
                scan_id=scan.id,
                device_id=dev.id,
                org_id=org.id,
                observed_at=inside,
                kind="hash",
                name="Win32.Ramnit",
                status=status,
            )
        )
    devs[0].open_findings = 1
    # pc3: a finding long before the campaign (not counted).
    session.add(
        FindingRow(
            scan_id=old_scan.id,
            device_id=devs[3].id,
            org_id=org.id,
            observed_at=before,
            kind="hash",
            name="Old.Thing",
            status="open",
        )
    )
    devs[3].open_findings = 1
    # Network alerts: two hosts in the window (one with two alerts), one false positive, one old.
    alerts = [
        ("10.0.0.1", "1.2.3.4", "open", inside),
        ("10.0.0.1", "5.6.7.8", "open", inside),
        ("10.0.0.2", "1.2.3.4", "resolved", inside),
        ("10.0.0.3", "9.9.9.9", "false_positive", inside),
        ("10.0.0.4", "1.2.3.4", "open", before),
    ]
    for client, ind, status, when in alerts:
        session.add(
            NetAlertRow(
                id=uuid.uuid4().hex,
                client=client,
                org_id=org.id,
                indicator_type="ipv4",
                indicator=ind,
                first_seen=when,
                last_seen=when,
                status=status,
                fields=[],
                examples=[],
            )
        )
    # Botnet IPs: 3 distinct in the window (one listed under two families), one seen before.
    for ip, family, last in (
        (f"{net}.1", "mirai", world.start + timedelta(days=2)),
        (f"{net}.1", "gafgyt", world.start + timedelta(days=4)),
        (f"{net}.2", "ramnit", world.start + timedelta(days=5)),
        (f"{net}.3", "sality", world.start + timedelta(days=6)),
        (f"{net}.4", "sality", world.start - timedelta(days=3)),
    ):
        session.add(BotnetIp(ip=ip, family=family, org_id=org.id, first_seen=last, last_seen=last))
    session.flush()


def principal(session: Session, username: str, role: str, code: str) -> Principal:
    org = orgs.by_code(session, code)
    assert org is not None
    user = session.scalars(sa.select(User).where(User.username == username)).first()
    if user is None:
        user = users.create_user(session, username, "mat-khau-thu-nghiem-1", role, org)
        session.flush()
    return Principal(user, org)


def org(session: Session, code: str) -> Organisation:
    found = orgs.by_code(session, code)
    assert found is not None
    return found
