"""A believable demo (quet server --demo): three provinces and their agencies, the 2026 campaign in
two phases, ~60 devices with scans and findings of real malware families, an officer per province.
Deterministic, and idempotent: a second run changes nothing."""

from __future__ import annotations

import hashlib
import ipaddress
import random
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from quet.server import security
from quet.server.services import orgs, rollups, users
from quet.store.models import (
    Campaign,
    Device,
    FindingRow,
    Organisation,
    Participation,
    Phase,
    ScanReport,
)
from quet.store.models.botnet import BotnetIp

CAMPAIGN = "Chiến dịch rà quét, bóc gỡ mã độc năm 2026"
LATEST_CONTENT = 20261120  # the newest signature bundle in the demo


@dataclass(frozen=True)
class Agency:
    suffix: str
    name: str
    kind: str
    contact: str


@dataclass(frozen=True)
class Province:
    code: str
    name: str
    domain: str
    network: str  # a documentation /24, split into /27s for its agencies
    phone: str
    agencies: tuple[Agency, ...]


PROVINCES = (
    Province("CB", "Tỉnh Cao Bằng", "caobang.example", "192.0.2.0/24", "0206 3852",
        (Agency("SYT", "Sở Y tế tỉnh Cao Bằng", "department", "Nông Văn Hùng"),
         Agency("SGDDT", "Sở Giáo dục và Đào tạo tỉnh Cao Bằng", "department", "Bế Thị Lan"),
         Agency("STC", "Sở Tài chính tỉnh Cao Bằng", "department", "Hoàng Văn Quý"),
         Agency("HQ", "UBND huyện Hà Quảng", "district", "Lương Thị Mai"))),
    Province("DN", "Thành phố Đà Nẵng", "danang.example", "198.51.100.0/24", "0236 3822",
        (Agency("SYT", "Sở Y tế thành phố Đà Nẵng", "department", "Trần Văn Minh"),
         Agency("SGDDT", "Sở Giáo dục và Đào tạo thành phố Đà Nẵng", "department", "Lê Thị Hoa"),
         Agency("STC", "Sở Tài chính thành phố Đà Nẵng", "department", "Phan Văn Tâm"),
         Agency("HC", "UBND quận Hải Châu", "district", "Nguyễn Thị Thu"),
         Agency("HV", "UBND huyện Hòa Vang", "district", "Đặng Văn Lợi"))),
    Province("HCM", "Thành phố Hồ Chí Minh", "hochiminh.example", "203.0.113.0/24", "028 3829",
        (Agency("SYT", "Sở Y tế Thành phố Hồ Chí Minh", "department", "Võ Minh Khoa"),
         Agency("SGDDT", "Sở Giáo dục và Đào tạo Thành phố Hồ Chí Minh", "department",
                "Huỳnh Thị Ngọc"),
         Agency("STC", "Sở Tài chính Thành phố Hồ Chí Minh", "department", "Trương Văn Đức"),
         Agency("Q1", "UBND Quận 1", "district", "Phạm Thị Hạnh"),
         Agency("TD", "UBND thành phố Thủ Đức", "district", "Ngô Quốc Bảo"))),
)  # fmt: skip

# (family, detection name, kind, sha256 or C2 value); WannaCry's and EICAR's hashes are the
# well-known public ones, the others are stand-ins derived from the name.
MALWARE = (
    ("Mirai", "Unix.Trojan.Mirai-9976014-0", "hash", ""),
    ("Mirai", "Mirai C2 (telnet botnet)", "c2", "198.18.23.45"),
    ("Ramnit", "Win.Worm.Ramnit-1234", "hash", ""),
    ("Sality", "W32.Sality.AA", "hash", ""),
    ("Emotet", "Win.Trojan.Emotet-9953370-0", "hash", ""),
    ("Emotet", "Emotet C2", "c2", "emotet-c2.example.net"),
    ("WannaCry", "Win.Ransomware.WannaCry-6313787-0", "hash",
     "ed01ebfbc9eb5bbea545af4d01bf5f1071661840480439c6e5babe8e080e41aa"),
    ("EICAR", "Win.Test.EICAR_HDB-1", "hash",
     "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"),
)  # fmt: skip

KINDS = (
    ("server", "srv", ("Windows Server 2019", "Ubuntu 22.04 LTS", "Windows Server 2016")),
    ("workstation", "pc", ("Windows 10 Pro 22H2", "Windows 11 Pro 23H2", "Windows 10 Pro 21H2")),
    ("endpoint", "lt", ("Windows 11 Pro 23H2", "Windows 10 Home", "macOS 14")),
)
ANTIMALWARE: tuple[list[str], ...] = (
    ["Microsoft Defender"],
    ["BKAV Endpoint"],
    ["Kaspersky Endpoint Security"],
    [],
)


def _sha(name: str) -> str:
    return hashlib.sha256(f"quet-demo:{name}".encode()).hexdigest()


def seed(session: Session) -> str:
    """Create the demo under this server's root; 'already seeded' when it exists. Not committed."""
    if session.scalars(sa.select(Campaign).where(Campaign.name == CAMPAIGN)).first() is not None:
        return "already seeded"
    root = orgs.root(session)
    if root is None:
        root = orgs.create(session, "VN", "Trung tâm Giám sát an toàn không gian mạng quốc gia",
                           "national")  # fmt: skip
    rng = random.Random(2026)
    now = datetime.now(UTC).replace(microsecond=0)
    today = now.date()
    campaign = _campaign(session, root, today)
    passwords: list[str] = []
    agencies: list[Organisation] = []
    provinces: list[Organisation] = []
    for prov in PROVINCES:
        p_org, a_orgs = _province(session, root, prov)
        provinces.append(p_org)
        agencies += a_orgs
        password = security.new_password()
        users.create_user(
            session, f"canbo.{prov.code.lower()}", password, "officer", p_org,
            full_name=f"Cán bộ chuyên trách {prov.name}", email=f"canbo@{prov.domain}",
            must_change_password=True, actor="demo",
        )  # fmt: skip
        passwords.append(f"canbo.{prov.code.lower()} / {password}")
    # The provinces relay the campaign and report their own roll-up: they take part too.
    counts = _participations(session, campaign, agencies, today, rng)
    for state, n in _participations(
        session, campaign, provinces, today, rng, states=("late", "deployed", "reported")
    ).items():
        counts[state] = counts.get(state, 0) + n
    devices, findings = _devices(session, agencies, now, rng)
    rollups.refresh(session, now=now)
    for org in (root, *provinces):
        org.sector = org.sector or "government"  # the agencies inherit it
    botnet_ips = _botnet(session, agencies, today, rng)
    _reports(session, campaign, root, provinces + agencies, rng)
    states = ", ".join(f"{k}: {v}" for k, v in counts.items())
    return (
        f"{len(PROVINCES)} tỉnh/thành, {len(agencies)} cơ quan, chiến dịch «{CAMPAIGN}» "
        f"(2 đợt; {states}), {devices} thiết bị, {findings} phát hiện, "
        f"{botnet_ips} IP botnet (13 tháng); "
        f"tài khoản cán bộ (đổi mật khẩu khi đăng nhập): {'; '.join(passwords)}"
    )


def _province(
    session: Session, root: Organisation, prov: Province
) -> tuple[Organisation, list[Organisation]]:
    p_org = orgs.create(
        session, prov.code, prov.name, "province", root,
        contact_name="Sở Thông tin và Truyền thông", contact_email=f"soattt@{prov.domain}",
        contact_phone=f"{prov.phone} 000", domains=[prov.domain],
    )  # fmt: skip
    base = prov.network.rsplit(".", 1)[0]
    out = []
    for n, ag in enumerate(prov.agencies):
        out.append(
            orgs.create(
                session, f"{prov.code}-{ag.suffix}", ag.name, ag.kind, p_org,
                contact_name=ag.contact, contact_email=f"{ag.suffix.lower()}@{prov.domain}",
                contact_phone=f"{prov.phone} {101 + n:03d}",
                ip_ranges=[f"{base}.{32 * n}/27"],
            )
        )  # fmt: skip
    return p_org, out


def _campaign(session: Session, root: Organisation, today: date) -> Campaign:
    # Dates follow today, so that phase 1 is over (late reports show) and phase 2 is running.
    campaign = Campaign(
        name=CAMPAIGN,
        year=2026,
        description=(
            "Rà quét, bóc gỡ mã độc trên máy chủ, máy trạm và thiết bị đầu cuối của các cơ quan "
            "nhà nước; báo cáo kết quả theo từng đợt."
        ),
        scope_org_id=root.id,
        bundle_version=LATEST_CONTENT,
        created_by="demo",
    )
    campaign.phases = [
        Phase(number=1, name="Đợt 1", starts=today - timedelta(days=150),
              ends=today - timedelta(days=60), report_deadline=today - timedelta(days=50)),
        Phase(number=2, name="Đợt 2", starts=today - timedelta(days=30),
              ends=today + timedelta(days=20), report_deadline=today + timedelta(days=30)),
    ]  # fmt: skip
    session.add(campaign)
    session.flush()
    return campaign


def _participations(
    session: Session,
    campaign: Campaign,
    agencies: list[Organisation],
    today: date,
    rng: random.Random,
    states: tuple[str, ...] = ("reported", "deployed", "reported", "acknowledged", "late"),
) -> dict[str, int]:
    start = datetime.combine(today - timedelta(days=150), datetime.min.time(), UTC)
    deadline = datetime.combine(today - timedelta(days=50), datetime.min.time(), UTC)
    # Cycling through the states gives every province a mix; "late" means nothing reported
    # although the phase-1 deadline has passed.
    counts: dict[str, int] = {}
    for n, org in enumerate(agencies):
        state = states[n % len(states)]
        counts[state] = counts.get(state, 0) + 1
        part = Participation(
            campaign_id=campaign.id,
            org_id=org.id,
            ack_token_hash=security.token_hash(f"demo-ack-{org.code}"),
            notified_at=start + timedelta(hours=2),
        )
        if state != "late":
            part.received_at = start + timedelta(days=rng.randint(0, 3), hours=rng.randint(1, 8))
            part.received_by = org.contact_name
        if state in ("deployed", "reported"):
            part.deployed_at = start + timedelta(days=rng.randint(5, 20))
        if state == "reported":
            part.reported_at = deadline - timedelta(days=rng.randint(0, 6))
            part.report = {"phase": 1, "devices": rng.randint(3, 6), "infected": rng.randint(0, 2),
                           "cleaned": rng.randint(0, 2), "note": "Đã rà quét toàn bộ máy trạm."}  # fmt: skip
        session.add(part)
    return counts


def _devices(
    session: Session, agencies: list[Organisation], now: datetime, rng: random.Random
) -> tuple[int, int]:
    n_dev = n_find = 0
    for a_index, org in enumerate(agencies):
        base = org.networks[0].cidr.split("/")[0].rsplit(".", 1)
        for i in range(4 + a_index % 2):  # 4 or 5 per agency: ~60 in all
            kind, short, systems = KINDS[0] if i == 0 else KINDS[1 + rng.randint(0, 3) // 3]
            age = rng.choice((0, 1, 2, 3, 5, 9, 16, 40))  # days since signatures were updated
            ago = timedelta(days=rng.randint(0, 12), hours=rng.randint(1, 20))
            scanned = None if rng.random() < 0.12 else now - ago
            dev = Device(
                org_id=org.id,
                hostname=f"{org.code.lower()}-{short}{i + 1:02d}",
                kind=kind,
                os=rng.choice(systems),
                ips=[f"{base[0]}.{int(base[1]) + 10 + i}"],
                agent_version=rng.choice(("0.1.0", "0.1.0", "0.0.9")),
                content_version=LATEST_CONTENT - (age // 7) * 7,
                content_updated_at=now - timedelta(days=age, hours=rng.randint(0, 20)),
                antimalware=rng.choice(ANTIMALWARE),
                credential_hash=security.token_hash(f"demo-device-{org.code}-{i}"),
                enrolled_at=now - timedelta(days=rng.randint(40, 140)),
                last_seen=now - timedelta(hours=rng.randint(0, 72)),
                last_scan_at=scanned,
            )
            session.add(dev)
            session.flush()
            n_dev += 1
            if scanned is not None:
                n_find += _scan(session, dev, scanned, rng)
    return n_dev, n_find


def _scan(session: Session, dev: Device, when: datetime, rng: random.Random) -> int:
    report = ScanReport(
        id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        device_id=dev.id,
        org_id=dev.org_id,
        started=when - timedelta(minutes=rng.randint(20, 90)),
        finished=when,
        received_at=when + timedelta(minutes=1),
        files_scanned=rng.randint(40_000, 400_000),
        bytes_scanned=rng.randint(10, 200) * 1_000_000_000,
        signatures={"version": dev.content_version},
    )
    session.add(report)
    session.flush()
    # About one device in four has something; Linux servers get Mirai, the rest the others.
    if rng.random() > 0.27:
        return 0
    linux = dev.os.startswith("Ubuntu")
    picks = [m for m in MALWARE if (m[0] == "Mirai") == linux]
    chosen = rng.sample(picks, k=min(len(picks), rng.randint(1, 2)))
    opened = 0
    for family, name, kind, value in chosen:
        status = rng.choice(("open", "remediated", "remediated", "open"))
        if family == "EICAR" and rng.random() < 0.5:
            status = "false_positive"  # the officer marked the test file as harmless
        sha = value if kind == "hash" and value else (_sha(name) if kind == "hash" else "")
        session.add(
            FindingRow(
                scan_id=report.id,
                device_id=dev.id,
                org_id=dev.org_id,
                observed_at=when - timedelta(minutes=rng.randint(1, 15)),
                kind=kind,
                name=name,
                path="" if kind == "c2" else _path(dev, family),
                indicator=value if kind == "c2" else sha,
                sha256=sha,
                score=100 if family != "EICAR" else 50,
                action="quarantined" if status == "remediated" else "reported",
                status=status,
                remediated_at=when + timedelta(days=1) if status == "remediated" else None,
            )
        )
        opened += status == "open"
    report.findings_count = len(chosen)
    dev.open_findings = opened
    return len(chosen)


def _path(dev: Device, family: str) -> str:
    if dev.os.startswith("Ubuntu"):
        return f"/tmp/.{family.lower()}/dvrHelper"
    return {
        "EICAR": "C:\\Users\\Public\\Downloads\\eicar.com",
        "WannaCry": "C:\\Windows\\tasksche.exe",
        "Ramnit": "C:\\Program Files\\Microsoft\\DesktopLayer.exe",
        "Sality": "C:\\Windows\\system32\\drivers\\amsint32.sys",
    }.get(family, f"C:\\Users\\ketoan\\AppData\\Roaming\\{family.lower()}.exe")


# Shadowserver-style family names, most frequent first.
BOTNET_FAMILIES = ("mirai", "gamut", "andromeda", "conficker", "sality", "ramnit", "necurs")
BOTNET_DAYS = 400  # a little over 13 months: "vs the same month last year" has data


def _botnet(session: Session, agencies: list[Organisation], today: date, rng: random.Random) -> int:
    """A year and a month of daily sinkhole events, falling as the campaign works: addresses in
    the agencies' registered ranges (attributed) and in an ISP-like range (unattributed), run
    through the real import (feed reader, event store, DuckDB attribution, statistics).
    Commits the session (the import does). Returns the distinct addresses imported."""
    from quet.botnet.attribute import import_files  # DuckDB and Arrow: only when seeding

    hosts = [
        str(ip)
        for org in agencies
        for net in org.networks
        for ip in list(ipaddress.ip_network(net.cidr).hosts())[1:29]
    ]
    isp = [f"198.18.{a}.{b}" for a in range(0, 40) for b in range(1, 255, 7)]
    family_of = {ip: BOTNET_FAMILIES[min(int(rng.expovariate(0.8)), 6)] for ip in hosts + isp}
    # Each address is infected from `start` until cleaned; infections are mostly old and new ones
    # fewer (the campaign works), agencies clean faster: the monthly figures fall.
    infected: dict[str, tuple[date, date]] = {}
    for ip in hosts + isp:
        start = today - timedelta(days=int(2 * BOTNET_DAYS * rng.random() ** 0.6))
        mean = 90 if ip in hosts else 220
        infected[ip] = (start, start + timedelta(days=1 + int(rng.expovariate(1 / mean))))
    lines = ["ip,timestamp,family"]
    for back in range(BOTNET_DAYS, 0, -1):
        day = today - timedelta(days=back)
        seen = 0.55 if day.weekday() >= 5 else 0.7  # fewer machines on at weekends
        for ip, (first, last) in infected.items():
            if first <= day < last and rng.random() < seen:
                lines.append(
                    f"{ip},{day.isoformat()}T{rng.randrange(24):02d}:17:00Z,{family_of[ip]}"
                )
    with tempfile.TemporaryDirectory(prefix="quet-demo-") as folder:
        feed = Path(folder) / "demo-sinkhole.csv"
        feed.write_text("\n".join(lines) + "\n", encoding="utf-8")
        import_files(session, [feed])
    return int(session.scalar(sa.select(sa.func.count(sa.distinct(BotnetIp.ip)))) or 0)


EVALUATIONS = (
    "Đơn vị đã phổ biến chiến dịch tới toàn bộ cán bộ, cài đặt công cụ rà quét trên các máy "
    "trạm và máy chủ; các máy phát hiện mã độc đã được cách ly và xử lý.",
    "Đã triển khai rà quét định kỳ hằng tuần; một số máy trạm cũ chưa cập nhật được mẫu nhận "
    "diện mới do cấu hình thấp, đơn vị đang bố trí thay thế.",
)
PROPOSALS = (
    "Đề nghị Sở Thông tin và Truyền thông tiếp tục hỗ trợ tập huấn cho cán bộ chuyên trách.",
    "",
)


def _reports(
    session: Session,
    campaign: Campaign,
    root: Organisation,
    members: list[Organisation],
    rng: random.Random,
) -> None:
    """The official returns of the organisations whose participation says reported: Part 1
    written, the figures frozen at the report's date, every other one accepted by the parent."""
    from quet.server.deps import Principal
    from quet.server.services import reports
    from quet.store.models import User

    clerk = Principal(User(username="demo", role="admin", org_id=root.id), root)
    parts = {
        p.org_id: p
        for p in session.scalars(
            sa.select(Participation).where(Participation.campaign_id == campaign.id)
        )
    }
    # Agencies before their provinces, so a province's report sums its agencies' returns.
    latest: datetime | None = None
    for n, org in enumerate(sorted(members, key=lambda o: -o.depth)):
        part = parts.get(org.id)
        if part is None or part.reported_at is None:
            continue
        when = part.reported_at
        if org.depth == 1 and latest is not None:
            when = max(when, latest + timedelta(days=1))  # a province reports after its agencies
        latest = max(latest or when, when)
        fields: dict[str, str | None] = {
            "evaluation": EVALUATIONS[n % 2],
            "proposals": PROPOSALS[n % 2],
            "number": f"{rng.randint(10, 250)}/BC-{org.code.split('-')[-1]}",
        }
        reports.edit(session, clerk, campaign, org, fields)
        reports.submit(session, clerk, campaign, org, now=when)
        if n % 2 == 0:
            reports.accept(session, clerk, campaign, org, now=when + timedelta(days=1))
