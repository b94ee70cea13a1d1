"""The figures of the official form (Part 2), measured from the database for one organisation's
own rows or for its whole subtree, within a campaign's dates; and the rows' wording.

Every count here is additive over organisations (a device, an alert, a botnet IP belongs to one
organisation), so a parent's figure is its own plus its children's; coverage is a ratio and is
recomputed from the summed `protected` and `devices`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from quet.server.services import orgs, rollups
from quet.store.models import (
    Campaign,
    Device,
    FindingRow,
    NetAlertRow,
    Organisation,
    Participation,
    ScanReport,
    UTCDateTime,
)
from quet.store.models.botnet import BotnetIp


@dataclass(frozen=True)
class RowSpec:
    key: str
    label: str  # Vietnamese, as the form words it
    label_en: str
    short: str  # the annex's column header
    unit: str = ""  # "%" for a percentage
    summed: bool = True  # a parent adds its children's (False: measured over the subtree)


# Rows 1-2 are worded exactly as seed 003 (Cục ATTT's national form); the rest are what Quét
# measures. Rows 1-2 come from participation data, which the parent holds for its whole subtree.
ROWS: tuple[RowSpec, ...] = (
    RowSpec(
        "received",
        "Tổng số cơ quan, tổ chức, doanh nghiệp nhận được thông tin về chiến dịch",
        "Organisations that received the campaign information",
        "Nhận thông tin",
        summed=False,
    ),
    RowSpec(
        "deployed",
        "Tổng số cơ quan tổ chức triển khai chiến dịch",
        "Organisations that deployed the campaign",
        "Triển khai",
        summed=False,
    ),
    RowSpec(
        "devices",
        "Tổng số máy tính, thiết bị trong phạm vi rà quét",
        "Devices in scope",
        "Thiết bị",
    ),
    RowSpec(
        "scanned",
        "Số máy tính, thiết bị đã được rà quét",
        "Devices scanned",
        "Đã rà quét",
    ),
    RowSpec(
        "infected",
        "Số máy tính, thiết bị phát hiện nhiễm mã độc",
        "Devices found infected",
        "Nhiễm mã độc",
    ),
    RowSpec(
        "cleaned",
        "Số máy tính, thiết bị đã được xử lý, bóc gỡ mã độc",
        "Devices cleaned",
        "Đã bóc gỡ",
    ),
    RowSpec(
        "coverage",
        "Tỷ lệ máy tính, thiết bị có phần mềm phòng chống mã độc được cập nhật mẫu nhận diện",
        "Coverage of anti-malware with current signatures",
        "Cập nhật mẫu (%)",
        unit="%",
    ),
    RowSpec(
        "net_hosts",
        "Số máy nội bộ phát hiện kết nối tới địa chỉ độc hại (giám sát mạng)",
        "Internal hosts seen contacting malicious addresses",
        "Kết nối độc hại",
    ),
    RowSpec(
        "botnet_ips",
        "Số địa chỉ IP của đơn vị nằm trong mạng botnet",
        "Botnet IPs attributed to the unit",
        "IP botnet",
    ),
)
KEYS = tuple(r.key for r in ROWS)
BY_KEY = {r.key: r for r in ROWS}
# Kept in snapshots beside the rows: coverage's numerator, so parents can recompute the ratio.
HIDDEN = ("protected",)
COUNT_KEYS = tuple(k for k in KEYS if k != "coverage")

Figures = dict[str, int | float | None]


def window(campaign: Campaign) -> tuple[datetime, datetime]:
    """The campaign's dates as a UTC half-open interval [first phase's start, last's end + 1 day)."""
    starts = min((p.starts for p in campaign.phases), default=campaign.created_at.date())
    ends = max((p.ends for p in campaign.phases), default=starts)
    return (
        datetime.combine(starts, time.min, UTC),
        datetime.combine(ends + timedelta(days=1), time.min, UTC),
    )


def coverage(protected: int | float | None, devices: int | float | None) -> float | None:
    if protected is None or not devices:
        return None
    return round(float(protected) * 100.0 / float(devices), 1)


def participation(
    session: Session, campaign: Campaign, org: Organisation, *, subtree: bool
) -> dict[str, int]:
    """Rows 1-2: organisations (`org` itself, or its whole subtree) that received the campaign's
    information and that deployed it."""
    p = Participation
    ids = _ids(org, subtree)
    received, deployed = session.execute(
        sa.select(
            sa.func.count().filter(p.received_at.is_not(None)),
            sa.func.count().filter(p.deployed_at.is_not(None)),
        ).where(
            p.campaign_id == campaign.id,
            p.org_id.in_(ids) if ids is not None else p.org_id == org.id,
        )
    ).one()
    return {"received": int(received), "deployed": int(deployed)}


def _ids(org: Organisation, subtree: bool) -> Any:
    if subtree:
        return sa.select(Organisation.id).where(orgs.subtree_clause(org)).scalar_subquery()
    return None


def measure(
    session: Session,
    campaign: Campaign,
    org: Organisation,
    *,
    subtree: bool = False,
    now: datetime | None = None,
) -> Figures:
    """The form's figures from data: `org`'s own rows, or its whole subtree's. Rows 1-2 count
    organisations (the subtree's members that received / deployed); the rest are counts within
    the campaign's dates; coverage is % of devices whose signatures are current (updated within
    rollups.RECENT_DAYS days of now, or of the campaign's end once it is over)."""
    start, end = window(campaign)
    now = now or datetime.now(UTC)
    reference = min(now, end)
    ids = _ids(org, subtree)

    def where(column: Any) -> Any:
        return column.in_(ids) if ids is not None else column == org.id

    out: Figures = dict(participation(session, campaign, org, subtree=subtree))

    s, e = sa.literal(start, UTCDateTime()), sa.literal(end, UTCDateTime())
    cutoff = sa.literal(reference - timedelta(days=rollups.RECENT_DAYS), UTCDateTime())
    devices, protected = session.execute(
        sa.select(
            sa.func.count(),
            sa.func.count().filter(Device.content_updated_at >= cutoff),
        ).where(where(Device.org_id))
    ).one()
    out["devices"], out["protected"] = int(devices), int(protected)
    out["scanned"] = int(
        session.scalar(
            sa.select(sa.func.count(sa.distinct(ScanReport.device_id))).where(
                where(ScanReport.org_id), ScanReport.finished >= s, ScanReport.finished < e
            )
        )
        or 0
    )
    f = FindingRow
    infected_devices = (
        sa.select(f.device_id)
        .where(
            where(f.org_id),
            f.observed_at >= s,
            f.observed_at < e,
            f.status != "false_positive",
        )
        .distinct()
        .subquery()
    )
    infected, cleaned = session.execute(
        sa.select(
            sa.func.count(),
            sa.func.count().filter(Device.open_findings == 0),
        ).select_from(infected_devices.join(Device, Device.id == infected_devices.c.device_id))
    ).one()
    out["infected"], out["cleaned"] = int(infected), int(cleaned)
    out["coverage"] = coverage(out["protected"], out["devices"])
    a = NetAlertRow
    out["net_hosts"] = int(
        session.scalar(
            sa.select(sa.func.count(sa.distinct(a.client))).where(
                where(a.org_id),
                a.status != "false_positive",
                sa.func.coalesce(a.last_seen, a.received_at) >= s,
                sa.func.coalesce(a.first_seen, a.received_at) < e,
            )
        )
        or 0
    )
    out["botnet_ips"] = botnet_ips(session, where, start, end)
    return out


def botnet_ips(session: Session, where: Any, start: datetime, end: datetime) -> int | None:
    """Distinct botnet IPs attributed to the organisations, last seen (a feed day) within
    [start, end); None when this server's database has no botnet table, never a silent zero."""
    if not sa.inspect(session.connection()).has_table(BotnetIp.__tablename__):
        return None
    b = BotnetIp
    return int(
        session.scalar(
            sa.select(sa.func.count(sa.distinct(b.ip))).where(
                where(b.org_id), b.last_seen >= start.date(), b.last_seen < end.date()
            )
        )
        or 0
    )


def add(total: Figures, part: dict[str, Any], keys: tuple[str, ...]) -> None:
    """Add `part`'s values into `total` for `keys` (a None on either side stays None only when
    both are None: an unknown is not a zero, but a known part is still counted)."""
    for key in keys:
        value = part.get(key)
        if value is None:
            continue
        before = total.get(key)
        total[key] = value if before is None else before + value


def month_start(day: date) -> date:
    return day.replace(day=1)


def shift_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)
