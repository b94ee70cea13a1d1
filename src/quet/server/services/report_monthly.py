"""The centre's monthly technical report (báo cáo kỹ thuật): the botnet-IP trend against last
month and the same month last year (from botnet_stats through services.botnet), state-agency
IPs by unit, and the participation and data-sharing status of every province and ministry."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from quet.errors import InputError
from quet.reports.document import MonthlyTechnicalReport, ProvinceStatus, Ranked, TrendPoint
from quet.server.services import botnet, orgs
from quet.server.services import report_figures as rf
from quet.server.services.report_document import VN_TZ, abbreviation, default_place
from quet.server.services.reports import COUNTED, latest_campaign
from quet.store.models import Campaign, Organisation, Participation, SharingPeer
from quet.store.models.botnet import BotnetStat
from quet.store.models.report import Report

RANKED = 10  # family, province and operator tables: the top ones (state agencies: all)
DEFAULT_SIGNER = "THỦ TRƯỞNG ĐƠN VỊ"  # as the campaign report's, until a signer is given


def parse_month(text: str) -> date:
    """ "2026-10" → date(2026, 10, 1)."""
    try:
        year, month = (int(x) for x in text.strip().split("-"))
        return date(year, month, 1)
    except ValueError as exc:
        raise InputError(f"month {text!r}: write it as YYYY-MM, e.g. 2026-10") from exc


def _ranked(session: Session, under: Organisation | None, dim: str, month: date) -> list[Ranked]:
    """The month's top RANKED keys of one dimension with last month's figure; the bucket with
    no key (province or operator not known) is labelled "" (printed "Không rõ") and put last."""
    now = botnet.breakdown(session, under, dim, month, limit=RANKED + 1)
    before = {
        r["key"]: r["ips"]
        for r in botnet.breakdown(session, under, dim, rf.shift_months(month, -1), limit=10_000)
    }
    known = [r for r in now if str(r["key"]).strip()][:RANKED]
    unknown = [r for r in now if not str(r["key"]).strip()]
    return [
        Ranked(str(r["label"] or r["key"]).strip(), int(r["ips"]), before.get(r["key"]))
        for r in known
    ] + [Ranked("", int(r["ips"]), before.get(r["key"])) for r in unknown]


GOVERNMENT = "government"


def effective_sectors(session: Session, under: Organisation) -> dict[int, Organisation]:
    """The state agencies of `under`'s subtree: organisations whose sector — their own, or the
    nearest ancestor's non-empty one — is "government"."""
    ancestors = [int(i) for i in under.path.strip("/").split("/") if i]
    rows = list(
        session.scalars(
            sa.select(Organisation).where(
                sa.or_(orgs.subtree_clause(under), Organisation.id.in_(ancestors))
            )
        )
    )
    sector = {o.id: (o.sector or "").strip() for o in rows}
    out = {}
    for o in rows:
        if not o.path.startswith(under.path):
            continue
        chain = [int(i) for i in o.path.strip("/").split("/") if i]
        own = next((sector.get(i, "") for i in reversed(chain) if sector.get(i, "")), "")
        if own == GOVERNMENT:
            out[o.id] = o
    return out


def _org_ips(session: Session, month: date) -> dict[int, int]:
    """Unique botnet IPs per organisation in the month (the statistics' org dimension; the
    unattributed bucket, key "", is not an organisation)."""
    s = BotnetStat
    rows = session.execute(
        sa.select(s.key, s.ips).where(s.period == "month", s.start == month, s.dim == "org")
    )
    return {int(k): int(n) for k, n in rows if str(k or "").strip().isdigit()}


def state_agency_ips(session: Session, under: Organisation, month: date) -> list[Ranked]:
    """Every state agency of the subtree with botnet IPs in the month (not a top list), most
    first, with last month's figure."""
    agencies = effective_sectors(session, under)
    now = _org_ips(session, month)
    before = _org_ips(session, rf.shift_months(month, -1))
    rows = [
        Ranked(agencies[org_id].name, n, before.get(org_id))
        for org_id, n in now.items()
        if org_id in agencies and n > 0
    ]
    return sorted(rows, key=lambda r: (-r.value, r.label))


def has_statistics(session: Session, month: date) -> bool:
    """Whether the feed gave any statistics for the month: without them the month is "no data",
    never 0."""
    s = BotnetStat
    found = session.scalar(sa.select(s.start).where(s.period == "month", s.start == month).limit(1))
    return found is not None


def _figure(session: Session, value: Any, month: date) -> int | None:
    if value is None or not has_statistics(session, month):
        return None
    return int(value)


def _participation(
    session: Session, under: Organisation, campaign: Campaign | None
) -> list[ProvinceStatus]:
    units = list(
        session.scalars(
            sa.select(Organisation)
            .where(orgs.subtree_clause(under), Organisation.kind.in_(("province", "ministry")))
            .order_by(Organisation.kind.desc(), Organisation.name)
        )
    )
    shared = {
        p.org_id: p.last_received
        for p in session.scalars(
            sa.select(SharingPeer).where(SharingPeer.org_id.in_([u.id for u in units]))
        )
    }
    reported: set[int] = set()
    if campaign is not None:
        reported = set(
            session.scalars(
                sa.select(Report.org_id).where(
                    Report.campaign_id == campaign.id, Report.status.in_(COUNTED)
                )
            )
        )
        reported |= set(
            session.scalars(
                sa.select(Participation.org_id).where(
                    Participation.campaign_id == campaign.id,
                    Participation.reported_at.is_not(None),
                )
            )
        )
    out = []
    for u in units:
        counts: dict[str, Any] = {"received": 0, "deployed": 0}
        if campaign is not None:
            counts = rf.participation(session, campaign, u, subtree=True)
        out.append(
            ProvinceStatus(
                code=u.code,
                name=u.name,
                kind=u.kind,
                received=counts["received"],
                deployed=counts["deployed"],
                reported=u.id in reported,
                last_shared=shared.get(u.id),
            )
        )
    return out


def build_monthly_report(
    session: Session,
    month: date,
    under: Organisation | None = None,
    *,
    now: datetime | None = None,
    number: str = "",
    notes: list[str] | None = None,
    signer_title: str = DEFAULT_SIGNER,
    signer_name: str = "",
) -> MonthlyTechnicalReport:
    """The technical report on `month` (any day in it) for `under`'s subtree (default: the
    whole country, this server's root). A month (or last month, or last year's) without
    statistics is None ("chưa có dữ liệu"), never 0."""
    now = now or datetime.now(UTC)
    start = rf.month_start(month)
    under = under or orgs.root(session)
    if under is None:
        raise InputError("no organisations yet: run `quet org import` first")
    figures = botnet.summary(session, under, start)
    end = rf.shift_months(start, 1) - timedelta(days=1)
    days = (end - start).days + 1
    daily = [TrendPoint(d, n) for d, n in botnet.trend(session, under, days=days, end=end)]
    parent = orgs.parent(session, under)
    campaign = latest_campaign(session, under)
    return MonthlyTechnicalReport(
        issuer=under.name.upper(),
        parent_body=parent.name.upper() if parent is not None else "",
        issuer_short=abbreviation(under.name),
        number=number,
        place=default_place(session, under),
        day=now.astimezone(VN_TZ).date(),
        month=start,
        ips_month=_figure(session, figures.get("ips"), start),
        ips_previous_month=_figure(session, figures.get("last_month"), rf.shift_months(start, -1)),
        ips_same_month_last_year=_figure(
            session, figures.get("last_year"), rf.shift_months(start, -12)
        ),
        daily=daily,
        by_family=_ranked(session, under, "family", start),
        by_province=_ranked(session, under, "province", start),
        by_isp=_ranked(session, under, "asn", start),
        state_agency_ips=state_agency_ips(session, under, start),
        participation=_participation(session, under, campaign),
        notes=list(notes or []),
        generated_at=now,
        signer_title=signer_title,
        signer_name=signer_name,
    )
