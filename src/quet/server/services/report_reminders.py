"""Reminder e-mails before a campaign's report deadline: to every unit without a submitted
report, 3 days and 1 day before, each once (recorded in report_reminders), from the server's hourly
loop and from `quet report remind`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from html import escape

import sqlalchemy as sa
from sqlalchemy.orm import Session

from quet.errors import InputError
from quet.server import notify
from quet.server.services import audit, campaigns
from quet.server.services.reports import COUNTED, deadline_of
from quet.server.settings import Settings
from quet.store.models import Campaign, Organisation
from quet.store.models.report import Report, ReportReminder

log = logging.getLogger("quet.server.reports")

REMIND_DAYS = (3, 1)  # reminder e-mails this many days before the deadline, once each
REMIND_EVERY_S = 3600.0  # the server's background loop


@dataclass
class Due:
    campaign: Campaign
    org: Organisation
    kind: str
    deadline: date
    days_left: int


def due(session: Session, today: date | None = None, campaign: Campaign | None = None) -> list[Due]:
    """Reminders owed now: to every member of a campaign whose deadline is within REMIND_DAYS,
    without a submitted report, not yet reminded for this occasion."""
    today = today or datetime.now(UTC).date()
    out: list[Due] = []
    for c in [campaign] if campaign is not None else session.scalars(sa.select(Campaign)):
        deadline = deadline_of(c, today)
        days_left = (deadline - today).days
        if days_left < 0 or days_left > max(REMIND_DAYS):
            continue
        step = min(d for d in REMIND_DAYS if d >= days_left)
        kind = f"d{step}:{deadline.isoformat()}"
        done = set(
            session.scalars(
                sa.select(Report.org_id).where(
                    Report.campaign_id == c.id, Report.status.in_(COUNTED)
                )
            )
        )
        done |= set(
            session.scalars(
                sa.select(ReportReminder.org_id).where(
                    ReportReminder.campaign_id == c.id, ReportReminder.kind == kind
                )
            )
        )
        for org in campaigns.members(session, c):
            if org.id not in done:
                out.append(Due(c, org, kind, deadline, days_left))
    return out


def reminder_notice(d: Due, base_url: str) -> notify.Notice:
    link = f"{base_url.rstrip('/')}/reports/{d.campaign.id}/{d.org.code}"
    vi_when = notify.date_vi(d.deadline)
    en_when = notify.date_en(d.deadline)
    vi_left = "hôm nay là hạn cuối" if d.days_left == 0 else f"còn {d.days_left} ngày"
    en_left = "today is the deadline" if d.days_left == 0 else f"{d.days_left} day(s) left"
    subject = f"[Quét] Nhắc hạn báo cáo: {d.campaign.name} ({vi_left})"
    vi = (
        f"Kính gửi {d.org.name},\n\n"
        f"Đơn vị chưa gửi báo cáo kết quả triển khai {d.campaign.name}. Hạn báo cáo là "
        f"{vi_when} ({vi_left}). Đề nghị đơn vị hoàn thành và gửi báo cáo tại: {link}\n"
    )
    en = (
        f"Dear {d.org.name},\n\n"
        f"Your report on {d.campaign.name} has not been submitted yet. It is due on {en_when} "
        f"({en_left}). Please complete and submit it at: {link}\n"
    )
    footer = "\n--\nThư này được gửi tự động từ hệ thống Quét / sent automatically by Quét.\n"
    href = escape(link, quote=True)
    html = (
        f'<!DOCTYPE html><html lang="vi"><head><meta charset="utf-8"><title>{escape(subject)}'
        f"</title></head><body><p>Kính gửi {escape(d.org.name)},</p><p>Đơn vị chưa gửi báo cáo "
        f"kết quả triển khai {escape(d.campaign.name)}. Hạn báo cáo là <strong>{vi_when}"
        f'</strong> ({vi_left}).</p><p><a href="{href}">Mở báo cáo</a></p><hr>'
        f'<p lang="en">Your report is due on <strong>{en_when}</strong> ({en_left}). '
        f'<a href="{href}">Open the report</a></p></body></html>'
    )
    return notify.Notice(
        org_code=d.org.code,
        org_name=d.org.name,
        to=(d.org.contact_email,),
        subject=subject,
        text=vi + "\n" + en + footer,
        html=html,
        campaign_id=d.campaign.id,
    )


def smtp_of(settings: Settings) -> notify.SmtpSettings:
    return notify.SmtpSettings(
        host=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username,
        password=settings.smtp_password,
        starttls=settings.smtp_starttls,
        sender=settings.smtp_sender,
    )


def remind(
    session: Session,
    settings: Settings,
    *,
    today: date | None = None,
    campaign: Campaign | None = None,
    actor: str = "system",
) -> list[notify.Delivery]:
    """Send the reminders owed now; each (campaign, organisation, occasion) is recorded once sent,
    so running again (the server's loop, `quet report remind`) sends nothing twice. Units
    without an e-mail address come back as failed deliveries. Not committed."""
    owed = due(session, today, campaign)
    if not owed:
        return []
    base = settings.public_url or f"http://{settings.host}:{settings.port}"
    notices: list[notify.Notice] = []
    by_code: dict[str, Due] = {}
    deliveries: list[notify.Delivery] = []
    for d in owed:
        if not d.org.contact_email:
            deliveries.append(notify.Delivery(d.org.code, "email", False, "no contact e-mail", 0))
            continue
        try:
            notices.append(reminder_notice(d, base))
        except InputError as exc:  # pragma: no cover - Notice takes any text
            deliveries.append(notify.Delivery(d.org.code, "email", False, str(exc), 0))
            continue
        by_code[d.org.code] = d
    sent = notify.send_email(notices, smtp_of(settings)) if notices else []
    now = datetime.now(UTC)
    for delivery in sent:
        d = by_code[delivery.org_code]
        if delivery.ok:
            session.add(
                ReportReminder(campaign_id=d.campaign.id, org_id=d.org.id, kind=d.kind, sent_at=now)
            )
    for c in {d.campaign.id: d.campaign for d in owed}.values():
        audit.record(
            session,
            actor,
            "report.remind",
            f"campaign:{c.id}",
            c.scope_org_id,
            {
                "sent": sorted(
                    x.org_code for x in sent if x.ok and by_code[x.org_code].campaign is c
                ),
                "failed": [f"{x.org_code}: {x.error}" for x in [*deliveries, *sent] if not x.ok][
                    :50
                ],
            },
        )
    session.flush()
    return deliveries + sent


def remind_all(sessions: Callable[[], AbstractContextManager[Session]], settings: Settings) -> int:
    """The server's background job: send what is owed, commit; returns the e-mails sent."""
    with sessions() as session:
        out = remind(session, settings)
        session.commit()
    sent = sum(d.ok for d in out)
    if out:
        log.info("report reminders: %d sent, %d failed", sent, len(out) - sent)
    return sent
