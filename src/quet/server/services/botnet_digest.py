"""The daily botnet digest: each organisation with IPs active on the newest feed day gets one
e-mail (its IPs as a CSV attachment) and one signed webhook, at most once per day.

`botnet_digests.last_sent_day` makes a run idempotent: it is set when a channel delivered, and
committed right after sending, so a crash or a second run (the server's loop, `quet botnet
notify`) never mails the same day twice. An organisation whose every delivery failed is tried
again on the next run.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from quet.server import notify
from quet.server.notify import Delivery
from quet.server.services import audit
from quet.server.services.botnet import IpRow, latest_day, status_of
from quet.server.settings import Settings
from quet.store.models import Organisation
from quet.store.models.botnet import BotnetDigest, BotnetIp

CSV_COLUMNS = ("ip", "family", "first_seen", "last_seen", "status", "asn", "isp")
WEBHOOK_MAX_IPS = 5000  # the CSV always has all of them; the webhook body stays bounded


@dataclass
class DigestResult:
    """One run: the feed day, who was sent what, who was skipped and why."""

    day: date | None
    sent: list[str] = field(default_factory=list)  # organisation codes
    skipped: dict[str, str] = field(default_factory=dict)  # code -> reason
    deliveries: list[Delivery] = field(default_factory=list)

    @property
    def failed(self) -> list[Delivery]:
        return [d for d in self.deliveries if not d.ok]

    def to_dict(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat() if self.day else None,
            "sent": list(self.sent),
            "skipped": dict(self.skipped),
            "deliveries": [
                {"org": d.org_code, "channel": d.channel, "ok": d.ok, "error": d.error}
                for d in self.deliveries
            ],
        }


def _recipients(contact: str) -> tuple[str, ...]:
    return tuple(a for a in re.split(r"[\s,;]+", contact) if a)


def _rows(session: Session, org: Organisation, day: date) -> list[IpRow]:
    found = session.scalars(
        sa.select(BotnetIp)
        .where(BotnetIp.org_id == org.id, BotnetIp.last_seen == day)
        .order_by(BotnetIp.ip, BotnetIp.family)
    )
    return [
        IpRow(
            ip=r.ip,
            family=r.family,
            org_id=r.org_id,
            org_code=org.code,
            org_name=org.name,
            first_seen=r.first_seen,
            last_seen=r.last_seen,
            days_seen=r.days_seen,
            status=status_of(r.first_seen, r.last_seen, day),
            asn=r.asn,
            isp=r.isp,
        )
        for r in found
    ]


def digest_csv(rows: list[IpRow]) -> bytes:
    """The attachment: one line per (ip, family), UTF-8 with a BOM so spreadsheets read it."""
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\r\n")
    out.writerow(CSV_COLUMNS)
    for r in rows:
        out.writerow(
            [
                r.ip,
                r.family,
                r.first_seen.isoformat(),
                r.last_seen.isoformat(),
                r.status,
                "" if r.asn is None else r.asn,
                r.isp,
            ]
        )
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def _families(rows: list[IpRow]) -> str:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.family or "?"] = counts.get(r.family or "?", 0) + 1
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    return ", ".join(f"{name} ({n})" for name, n in top)


def digest_notice(
    org: Organisation, to: tuple[str, ...], day: date, rows: list[IpRow]
) -> notify.Notice:
    ips = len({r.ip for r in rows})
    new = len({r.ip for r in rows if r.status == "new"})
    families = _families(rows)
    day_vi = day.strftime("%d/%m/%Y")
    subject = (
        f"[Quét] {ips} địa chỉ IP nhiễm mã độc botnet ngày {day_vi} / {ips} botnet IPs on {day}"
    )
    text = (
        f"Kính gửi {org.name},\n\n"
        f"Theo dữ liệu sinkhole/botnet ngày {notify.date_vi(day)}, {ips} địa chỉ IP thuộc dải mạng "
        f"của đơn vị đang kết nối tới máy chủ điều khiển botnet ({new} địa chỉ mới). "
        f"Họ mã độc: {families}.\n"
        "Danh sách chi tiết trong tệp CSV đính kèm. Đề nghị đơn vị rà quét, xử lý các máy "
        "dùng những địa chỉ này.\n\n"
        f"Dear {org.name},\n\n"
        f"According to the sinkhole/botnet feeds of {notify.date_en(day)}, {ips} IP addresses in "
        f"your registered ranges contacted botnet command servers ({new} new). "
        f"Families: {families}.\n"
        "The attached CSV lists them. Please find and clean the machines behind them.\n"
        "\n--\nThư này được gửi tự động từ hệ thống Quét; vui lòng không trả lời.\n"
        "This message was sent automatically by Quét; please do not reply.\n"
    )
    return notify.Notice(
        org_code=org.code,
        org_name=org.name,
        to=to,
        subject=subject,
        text=text,
        attachments=((f"botnet-{org.code}-{day.isoformat()}.csv", "text/csv", digest_csv(rows)),),
    )


def digest_payload(org: Organisation, day: date, rows: list[IpRow]) -> dict[str, Any]:
    listed = rows[:WEBHOOK_MAX_IPS]
    return {
        "event": "botnet.digest",
        "day": day.isoformat(),
        "org": {"code": org.code, "name": org.name},
        "ips": len({r.ip for r in rows}),
        "rows": len(rows),
        "truncated": len(rows) > len(listed),
        "items": [{c: r.to_dict()[c] for c in CSV_COLUMNS} for r in listed],
    }


def send(session: Session, settings: Settings, day: date | None = None) -> DigestResult:
    day = day or latest_day(session)
    result = DigestResult(day)
    if day is None:
        return result
    active = sa.func.count(sa.distinct(BotnetIp.ip))
    counts: list[tuple[int, int]] = session.execute(
        sa.select(BotnetIp.org_id, active)
        .where(BotnetIp.last_seen == day, BotnetIp.org_id.is_not(None))
        .group_by(BotnetIp.org_id)
    ).all()  # type: ignore[assignment]
    if not counts:
        return result
    orgs = {
        o.id: o
        for o in session.scalars(
            sa.select(Organisation).where(Organisation.id.in_([c[0] for c in counts]))
        )
    }
    prefs = {
        d.org_id: d
        for d in session.scalars(sa.select(BotnetDigest).where(BotnetDigest.org_id.in_(list(orgs))))
    }
    notices: list[notify.Notice] = []
    events: list[tuple[str, str, dict[str, Any]]] = []
    due: dict[str, Organisation] = {}
    for org_id, n in sorted(counts, key=lambda c: orgs[c[0]].code):
        org = orgs[org_id]
        pref = prefs.get(org_id)
        email_on = pref.email_enabled if pref else True
        webhook_on = pref.webhook_enabled if pref else True
        threshold = pref.threshold if pref else 1
        if pref and pref.last_sent_day is not None and pref.last_sent_day >= day:
            result.skipped[org.code] = "already sent"
            continue
        if not email_on and not webhook_on:
            result.skipped[org.code] = "opted out"
            continue
        if n < threshold:
            result.skipped[org.code] = f"below threshold ({n} < {threshold})"
            continue
        to = _recipients(org.contact_email) if email_on else ()
        url = org.webhook_url if webhook_on else ""
        if not to and not url:
            result.skipped[org.code] = "no contact e-mail or webhook"
            continue
        rows = _rows(session, org, day)
        due[org.code] = org
        if to:
            notices.append(digest_notice(org, to, day, rows))
        if url:
            events.append((org.code, url, digest_payload(org, day, rows)))
    if notices:
        smtp = notify.SmtpSettings(
            host=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
            sender=settings.smtp_sender,
        )
        result.deliveries += notify.send_email(notices, smtp)
    if events:
        if settings.webhook_secret:
            result.deliveries += notify.send_webhooks(events, settings.webhook_secret)
        else:
            error = "no webhook secret configured (QUET_WEBHOOK_SECRET)"
            result.deliveries += [Delivery(c, "webhook", False, error, 0) for c, _, _ in events]
    delivered = {d.org_code for d in result.deliveries if d.ok}
    for code, org in due.items():
        if code not in delivered:
            continue
        result.sent.append(code)
        pref = prefs.get(org.id)
        if pref is None:
            pref = BotnetDigest(
                org_id=org.id, email_enabled=True, webhook_enabled=True, threshold=1
            )
            session.add(pref)
        pref.last_sent_day = day
    if due:
        audit.record(
            session,
            "system:botnet",
            "botnet.digest",
            f"day:{day.isoformat()}",
            None,
            {
                "sent": result.sent,
                "failed": [f"{d.org_code} {d.channel}: {d.error}" for d in result.failed],
            },
        )
    session.commit()
    return result
