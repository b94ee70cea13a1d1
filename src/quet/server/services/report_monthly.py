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
from quet.server.services.report_document import VN_TZ, default_place
from quet.server.services.reports import COUNTED, latest_campaign
from quet.store.models import Campaign, Organisation, Participation, SharingPeer
from quet.store.models.report import Report

RANKED = 10


def parse_month(text: str) -> date:
    """ "2026-10" → date(2026, 10, 1)."""
    try:
        year, month = (int(x) for x in text.strip().split("-"))
        return date(year, month, 1)
    except ValueError as exc:
        raise InputError(f"month {text!r}: write it as YYYY-MM, e.g. 2026-10") from exc


def _ranked(session: Session, under: Organisation | None, dim: str, month: date) -> list[Ranked]:
    now = botnet.breakdown(session, under, dim, month, limit=RANKED)
    before = {
        r["key"]: r["ips"]
        for r in botnet.breakdown(session, under, dim, rf.shift_months(month, -1), limit=10_000)
    }
    return [Ranked(r["label"] or r["key"], r["ips"], before.get(r["key"])) for r in now]


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
) -> MonthlyTechnicalReport:
    """The technical report on `month` (any day in it) for `under`'s subtree (default: the
    whole country, this server's root)."""
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
        number=number,
        place=default_place(session, under),
        day=now.astimezone(VN_TZ).date(),
        month=start,
        ips_month=int(figures["ips"]),
        ips_previous_month=int(figures["last_month"]),
        ips_same_month_last_year=int(figures["last_year"]),
        daily=daily,
        by_family=_ranked(session, under, "family", start),
        by_province=_ranked(session, under, "province", start),
        by_isp=_ranked(session, under, "asn", start),
        state_agency_ips=_ranked(session, under, "org", start),
        participation=_participation(session, under, campaign),
        notes=list(notes or []),
        generated_at=now,
    )
