"""Botnet pages: /botnet (the month's unique IPs against last month and last year, the daily trend,
breakdowns, the IPs of the person's units), the botnet block of an organisation's page with its
digest settings, and the public /lookup (no sign-in, rate-limited, says only yes or no)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from quet.errors import InputError
from quet.server import notify
from quet.server.deps import Principal, find_org, service_errors
from quet.server.services import botnet, orgs
from quet.server.web import charts, i18n
from quet.server.web.render import (
    PageRoute,
    PageUser,
    SessionDep,
    forbidden,
    lang_of,
    redirect,
    render,
)
from quet.store.models import Organisation

router = APIRouter(route_class=PageRoute, include_in_schema=False)

i18n.add(
    {
        "nav.botnet": ("Botnet", "Botnet"),
        "page.botnet": ("IP nhiễm mã độc botnet", "Botnet IPs"),
        "page.lookup": ("Kiểm tra IP botnet", "Botnet IP check"),
        "botnet.scope_national": ("Toàn quốc", "Whole country"),
        "botnet.month": ("Tháng", "Month"),
        "botnet.show": ("Xem", "Show"),
        "botnet.this_month": ("IP botnet tháng {month}", "Botnet IPs in {month}"),
        "botnet.last_month": ("Tháng trước", "Last month"),
        "botnet.last_year": ("Cùng kỳ năm trước", "Same month last year"),
        "botnet.latest_day": ("Ngày dữ liệu mới nhất", "Newest feed day"),
        "botnet.ips_on_day": ("{count} IP ngày {day}", "{count} IPs on {day}"),
        "botnet.vs_last_month": ("{arrow} {pct} so với tháng trước", "{arrow} {pct} vs last month"),
        "botnet.vs_last_year": ("{arrow} {pct} so với cùng kỳ", "{arrow} {pct} vs a year ago"),
        "botnet.no_change": ("— chưa có số liệu để so sánh", "— nothing to compare with"),
        "botnet.no_period_data": ("chưa có dữ liệu", "no data"),
        "botnet.period": ("Kỳ", "Period"),
        "botnet.period.day": ("Ngày", "Day"),
        "botnet.period.week": ("Tuần", "Week"),
        "botnet.period.month": ("Tháng", "Month"),
        "botnet.day": ("Ngày (tuần, ngày)", "Day (week, day)"),
        "botnet.this_week": ("IP botnet tuần {month}", "Botnet IPs in the week of {month}"),
        "botnet.this_day": ("IP botnet ngày {month}", "Botnet IPs on {month}"),
        "botnet.last_week": ("Tuần trước", "Last week"),
        "botnet.last_day": ("Ngày trước đó", "The day before"),
        "botnet.vs_last_week": ("{arrow} {pct} so với tuần trước", "{arrow} {pct} vs last week"),
        "botnet.vs_last_day": (
            "{arrow} {pct} so với ngày trước",
            "{arrow} {pct} vs the day before",
        ),
        "botnet.trend_week": ("Số IP botnet theo tuần", "Botnet IPs per week"),
        "botnet.trend_month": ("Số IP botnet theo tháng", "Botnet IPs per month"),
        "botnet.unit_ips_note_period": (
            "Các IP thuộc dải mạng đã đăng ký của đơn vị, xuất hiện từ {month}.",
            "IPs in the units' registered ranges seen since {month}.",
        ),
        "botnet.trend": ("Số IP botnet theo ngày", "Botnet IPs per day"),
        "botnet.unique_ips": ("IP duy nhất", "Unique IPs"),
        "botnet.by_family": ("Theo họ mã độc", "By malware family"),
        "botnet.by_province": ("Theo tỉnh, thành phố", "By province"),
        "botnet.by_asn": ("Theo nhà mạng (ASN)", "By ISP (ASN)"),
        "botnet.by_sector": ("Theo lĩnh vực", "By sector"),
        "botnet.by_org": ("Theo đơn vị", "By organisation"),
        "botnet.unit_ips": ("IP botnet của các đơn vị", "Botnet IPs of the units"),
        "botnet.unit_ips_note": (
            "Các IP thuộc dải mạng đã đăng ký của đơn vị, xuất hiện từ đầu tháng {month}.",
            "IPs in the units' registered ranges seen since the start of {month}.",
        ),
        "botnet.shown_of": ("Hiển thị {shown} / {total}", "Showing {shown} of {total}"),
        "botnet.unattributed": ("Chưa xác định đơn vị", "Unattributed"),
        "botnet.unknown": ("Không rõ", "Unknown"),
        "botnet.family": ("Họ mã độc", "Family"),
        "botnet.ip": ("Địa chỉ IP", "IP address"),
        "botnet.first_seen": ("Lần đầu", "First seen"),
        "botnet.last_seen": ("Lần cuối", "Last seen"),
        "botnet.days_seen": ("Số ngày", "Days"),
        "botnet.org": ("Đơn vị", "Organisation"),
        "botnet.isp": ("Nhà mạng", "ISP"),
        "botnet.key": ("Nhóm", "Group"),
        "botnet.status": ("Trạng thái", "Status"),
        "botnet.status.new": ("Mới", "New"),
        "botnet.status.active": ("Còn hoạt động", "Still active"),
        "botnet.status.gone": ("Đã hết", "Gone"),
        "botnet.sector": ("Lĩnh vực", "Sector"),
        "botnet.sector.": ("(chưa xác định)", "(not set)"),
        "botnet.sector.government": ("Cơ quan nhà nước", "Government"),
        "botnet.sector.finance": ("Tài chính, ngân hàng", "Finance"),
        "botnet.sector.education": ("Giáo dục", "Education"),
        "botnet.sector.health": ("Y tế", "Health"),
        "botnet.sector.energy": ("Năng lượng", "Energy"),
        "botnet.sector.telecom": ("Viễn thông", "Telecommunications"),
        "botnet.sector.other": ("Khác", "Other"),
        "botnet.no_data": (
            "Chưa có dữ liệu botnet. Nạp dữ liệu bằng lệnh: quet botnet import TỆP",
            "No botnet data yet. Load feeds with: quet botnet import FILE",
        ),
        "botnet.org_panel": ("IP nhiễm mã độc botnet", "Botnet IPs"),
        "botnet.org_none": (
            "Không có IP nào của đơn vị trong dữ liệu botnet 30 ngày gần đây.",
            "None of this organisation's IPs were in the botnet feeds in the last 30 days.",
        ),
        "botnet.digest": ("Bản tin hằng ngày", "Daily digest"),
        "botnet.digest_help": (
            "Mỗi ngày có IP nhiễm, đơn vị nhận một thư (kèm tệp CSV) và một webhook.",
            "On each day with infected IPs the organisation gets one e-mail (CSV attached) "
            "and one webhook.",
        ),
        "botnet.digest_email": ("Gửi thư điện tử", "Send e-mail"),
        "botnet.digest_webhook": ("Gửi webhook", "Send webhook"),
        "botnet.digest_threshold": ("Chỉ gửi khi có ít nhất (IP)", "Only when at least (IPs)"),
        "botnet.digest_last": ("Lần gửi gần nhất: {day}", "Last sent for: {day}"),
        "botnet.digest_never": ("Chưa gửi lần nào", "Never sent"),
        "lookup.intro": (
            "Kiểm tra xem một địa chỉ IP có nằm trong mạng máy tính ma (botnet) theo dữ liệu "
            "mới nhất hay không. Mặc định là địa chỉ IP của bạn.",
            "Check whether an IP address is part of a botnet according to the newest data. "
            "By default, your own address.",
        ),
        "lookup.ip": ("Địa chỉ IP", "IP address"),
        "lookup.check": ("Kiểm tra", "Check"),
        "lookup.yours": ("Địa chỉ IP của bạn", "Your IP address"),
        "lookup.listed": (
            "Địa chỉ {ip} CÓ trong danh sách IP botnet ngày {day}.",
            "The address {ip} IS listed as a botnet IP on {day}.",
        ),
        "lookup.not_listed": (
            "Địa chỉ {ip} không có trong danh sách IP botnet ngày {day}.",
            "The address {ip} is not listed as a botnet IP on {day}.",
        ),
        "lookup.no_data": (
            "Hệ thống chưa có dữ liệu botnet để kiểm tra.",
            "There is no botnet data to check against yet.",
        ),
        "lookup.stale": (
            "Lưu ý: dữ liệu mới nhất là của ngày {day}.",
            "Note: the newest data is from {day}.",
        ),
        "lookup.advice_listed": (
            "Một thiết bị dùng địa chỉ này (máy tính, điện thoại, camera, bộ định tuyến…) có "
            "thể đã nhiễm mã độc. Hãy cập nhật phần mềm, quét mã độc bằng phần mềm diệt virus, "
            "đổi mật khẩu thiết bị và bộ định tuyến; nếu là mạng của cơ quan, báo cho bộ phận "
            "công nghệ thông tin.",
            "A device using this address (computer, phone, camera, router…) may be infected. "
            "Update its software, scan it with an anti-malware tool, change the device and "
            "router passwords; on an organisation's network, tell its IT staff.",
        ),
        "lookup.advice_clean": (
            "Không phát hiện trong dữ liệu hiện có. Hãy tiếp tục cập nhật phần mềm và dùng "
            "phần mềm diệt mã độc.",
            "Nothing found in the current data. Keep your software up to date and use "
            "anti-malware protection.",
        ),
        "lookup.privacy": (
            "Trang này chỉ cho biết có hay không; không tiết lộ chủ sở hữu hay thông tin khác.",
            "This page only says yes or no; it tells nothing about the owner or anything else.",
        ),
        "lookup.bad_ip": ("Địa chỉ IP không hợp lệ.", "That is not a valid IP address."),
        "lookup.too_many": (
            "Bạn đã kiểm tra quá nhiều lần. Vui lòng thử lại sau {seconds} giây.",
            "Too many checks. Please try again in {seconds} seconds.",
        ),
    }
)


def sector_options(t: i18n.Translate) -> list[tuple[str, str]]:
    return [(s, t(f"botnet.sector.{s}")) for s in ("", *botnet.SECTORS[:-1])]


def _label(t: i18n.Translate, dim: str, row: dict[str, Any]) -> str:
    key, label = row["key"], row["label"]
    if dim == "sector":
        return t(f"botnet.sector.{key}") if key in botnet.SECTORS else str(key)
    if not key:
        return t("botnet.unattributed") if dim == "org" else t("botnet.unknown")
    if dim == "asn":
        return f"AS{key} {label}".strip() if label and label != key else f"AS{key}"
    return str(label or key)


def _day_param(value: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise InputError(f"day must be YYYY-MM-DD, got {value[:20]!r}") from exc


def period_label(period: str, start: date, lang: str) -> str:
    """The period as people write it: 11/2026, the week 16/11/2026–22/11/2026, 20/11/2026."""
    if period == "month":
        return month_label(start, lang)
    end = botnet.period_end(period, start)
    if lang == "en":
        return (
            notify.date_en(start)
            if period == "day"
            else f"{notify.date_en(start)} – {notify.date_en(end)}"
        )
    if period == "day":
        return start.strftime("%d/%m/%Y")
    return f"{start.strftime('%d/%m/%Y')} – {end.strftime('%d/%m/%Y')}"


def _month_param(value: str) -> date | None:
    if not value:
        return None
    try:
        year, month = value.split("-", 1)
        return date(int(year), int(month), 1)
    except ValueError as exc:
        raise InputError(f"month must be YYYY-MM, got {value[:20]!r}") from exc


def month_label(start: date, lang: str) -> str:
    """11/2026 (vi) or November 2026 (en)."""
    if lang == "en":
        return f"{notify.date_en(start).split(' ', 1)[1]}"
    return f"{start.month:02d}/{start.year}"


def _arrow(pct: float | None) -> str:
    if pct is None:
        return ""
    return "▲" if pct > 0 else ("▼" if pct < 0 else "=")


@router.get("/botnet")
def page(
    request: Request,
    session: SessionDep,
    principal: PageUser,
    month: Annotated[str, Query(max_length=7)] = "",
    org: Annotated[str, Query(max_length=64)] = "",
    period: Annotated[str, Query(pattern=r"^(|day|week|month)$")] = "",
    day: Annotated[str, Query(max_length=10)] = "",
) -> HTMLResponse:
    lang = lang_of(request)
    t = i18n.translator(lang)
    trend_period = period or "day"  # the default page: this month's figures, a daily trend
    period = period or "month"
    with service_errors(invalid=400):
        wanted = _month_param(month)
        wanted_day = _day_param(day)
    if period != "month" and wanted_day is not None:
        wanted = wanted_day
    under = find_org(session, principal, org or None)
    figures = botnet.summary(session, under, wanted, period)
    days = botnet.trend(session, under, 730, period=trend_period)
    trend_title = t("botnet.trend") if trend_period == "day" else t(f"botnet.trend_{trend_period}")
    trend = charts.line_chart(
        {t("botnet.unique_ips"): [(d, float(n)) for d, n in days]},
        title=trend_title,
        lang=lang,
        width=960,
        height=300,
        show_points=False,
    )
    breakdowns = []
    for dim, key in (
        ("family", "top_families"),
        ("province", "top_provinces"),
        ("asn", "top_isps"),
        ("sector", "top_sectors"),
        ("org", "top_orgs"),
    ):
        rows = [dict(r, shown=_label(t, dim, r)) for r in figures[key]]
        if dim == "org":
            found = orgs.by_ids(session, (int(r["key"]) for r in rows if r["key"].isdigit()))
            for r in rows:
                o = found.get(int(r["key"])) if r["key"].isdigit() else None
                r["code"] = o.code if o is not None and principal.can_see(o) else ""
        # unknown / unattributed last, as everywhere else
        rows.sort(key=lambda r: (not r["key"], -r["ips"]))
        chart = charts.bar_chart(
            [r["shown"] for r in rows],
            [float(r["ips"]) for r in rows],
            title=t(f"botnet.by_{dim}"),
            lang=lang,
            horizontal=True,
            width=460,
            height=max(120, 30 * len(rows) + 40),
        )
        breakdowns.append(
            {"dim": dim, "title": t(f"botnet.by_{dim}"), "rows": rows, "chart": chart}
        )
    latest = date.fromisoformat(figures["latest_day"]) if figures["latest_day"] else None
    month_start = date.fromisoformat(figures["start"])
    ips, total = botnet.org_ips(
        session, under, subtree=True, since=month_start, limit=500, latest=latest
    )
    suffix = "month" if period == "month" else period
    return render(
        request,
        "pages/botnet.html",
        principal=principal,
        nav_active="botnet",
        f=figures,
        under=under,
        national=under.parent_id is None,
        latest=latest,
        month_start=month_start,
        month_label=period_label(period, month_start, lang),
        period=period,
        trend_period=trend_period,
        periods=botnet.PERIODS,
        day_value=wanted_day.isoformat() if wanted_day else figures["start"],
        this_key=f"botnet.this_{suffix}",
        last_key=f"botnet.last_{suffix}",
        vs_key=f"botnet.vs_last_{suffix}",
        arrow=_arrow,
        trend=trend,
        breakdowns=breakdowns,
        ips=ips,
        ips_total=total,
    )


def org_panel(session: Session, principal: Principal, org: Organisation) -> dict[str, Any]:
    """What the organisation page shows about botnet IPs: its own IPs of the last 30 days with
    status, and (for those who may change it) the digest settings."""
    latest = botnet.latest_day(session)
    rows, total = botnet.org_ips(session, org, limit=200, latest=latest)
    return {
        "rows": rows,
        "total": total,
        "latest": latest,
        "digest": botnet.digest_settings(session, org),
        "can_change": principal.can_change(org),
    }


@router.post("/orgs/{code}/botnet-digest")
def digest_settings(
    code: str,
    request: Request,
    session: SessionDep,
    principal: PageUser,
    threshold: Annotated[int, Form(ge=1, le=1_000_000)] = 1,
    email_enabled: Annotated[str, Form(max_length=5)] = "",
    webhook_enabled: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    org = find_org(session, principal, code)
    if not principal.can_change(org):
        raise forbidden()
    with service_errors():
        botnet.set_digest_settings(
            session,
            principal,
            org,
            email_enabled=bool(email_enabled),
            webhook_enabled=bool(webhook_enabled),
            threshold=threshold,
        )
    session.commit()
    return redirect(f"/orgs/{quote(org.code)}?flash=saved#botnet")


@router.get("/lookup")
def lookup(
    request: Request,
    session: SessionDep,
    ip: Annotated[str, Query(max_length=100)] = "",
) -> HTMLResponse:
    """Public: no sign-in, no principal, nothing but yes/no, the day and generic advice."""
    client = request.client.host if request.client else ""
    wait = botnet.limiter(request.app.state).hit(client or "?")
    if wait:
        seconds = max(1, round(wait + 0.5))
        response = render(request, "pages/lookup.html", status_code=429, ip=ip, seconds=seconds)
        response.headers["Retry-After"] = str(seconds)
        return response
    asked = ip.strip() or client
    result = None
    bad = False
    try:
        result = botnet.lookup(session, asked) if asked else None
    except InputError:
        bad = True
    return render(
        request,
        "pages/lookup.html",
        status_code=400 if bad else 200,
        ip=ip.strip(),
        yours=client,
        own=not ip.strip(),
        result=result,
        bad=bad,
        seconds=0,
    )
