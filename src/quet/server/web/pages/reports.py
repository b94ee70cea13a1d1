"""Official reports: /reports (the person's campaign reports and their children's status: who
submitted, who is late, who is missing), one report's page (Part 1, Part 2 with measured values,
overrides with reasons, submit / accept / return, downloads, the annex) and its print preview."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from quet.errors import InputError, QuetError
from quet.server.deps import Principal, SessionDep, find_org, service_errors
from quet.server.services import campaigns, report_document, reports
from quet.server.services import report_figures as rf
from quet.server.services.errors import Forbidden, NotFound
from quet.server.web import i18n
from quet.server.web.render import PageRoute, PageUser, lang_of, not_found, redirect, render
from quet.store.models import Campaign, Organisation

router = APIRouter(route_class=PageRoute, include_in_schema=False)

i18n.add(
    {
        "nav.reports": ("Báo cáo", "Reports"),
        "report.title": ("Báo cáo kết quả triển khai", "Campaign reports"),
        "report.intro": (
            "Báo cáo theo mẫu của chiến dịch: số liệu lấy từ dữ liệu của hệ thống, phần đánh giá "
            "do đơn vị viết; đơn vị gửi lên, cấp trên tiếp nhận hoặc trả lại.",
            "The campaign's official form: figures from the system's data, the evaluation written "
            "by the unit; the unit submits, the level above accepts or returns it.",
        ),
        "report.own": ("Báo cáo của đơn vị", "Your unit's report"),
        "report.children": ("Các đơn vị trực thuộc", "Units below"),
        "report.level": ("Các đơn vị cấp {level}", "Units at level {level}"),
        "report.open": ("Mở báo cáo", "Open the report"),
        "report.deadline": ("Hạn báo cáo", "Report deadline"),
        "report.submitted_at": ("Ngày gửi", "Submitted"),
        "report.missing": ("Chưa báo cáo", "Not reported"),
        "report.missing_count": ("{count} đơn vị chưa báo cáo", "{count} units have not reported"),
        "report.late_count": ("{count} đơn vị báo cáo quá hạn", "{count} units reported late"),
        "report.none": ("Chưa có chiến dịch nào.", "There is no campaign yet."),
        "report.status.draft": ("Nháp", "Draft"),
        "report.status.submitted": ("Đã gửi", "Submitted"),
        "report.status.accepted": ("Đã chấp nhận", "Accepted"),
        "report.status.returned": ("Bị trả lại", "Returned"),
        "report.status.missing": ("Chưa báo cáo", "Not reported"),
        "report.late": ("Quá hạn", "Late"),
        "report.part1": ("1. Thông tin chung", "1. General information"),
        "report.part2": ("2. Thông tin số liệu", "2. Figures"),
        "report.unit_name": ("Tên đơn vị", "Unit"),
        "report.evaluation": (
            "Đánh giá kết quả thực hiện chiến dịch trên địa bàn/phạm vi quản lý",
            "Evaluation of the campaign's results in your area",
        ),
        "report.proposals": ("Đề xuất, kiến nghị (nếu có)", "Proposals (if any)"),
        "report.letter": ("Thông tin văn bản", "The letter"),
        "report.number": ("Số văn bản", "Document number"),
        "report.place": ("Địa danh", "Place"),
        "report.addressee": ("Kính gửi (mỗi dòng một nơi)", "To (one per line)"),
        "report.signer_title": ("Chức vụ người ký", "Signer's title"),
        "report.signer_name": ("Họ tên người ký", "Signer's name"),
        "report.col.stt": ("STT", "No."),
        "report.col.content": ("Nội dung", "Item"),
        "report.col.value": ("Số lượng", "Value"),
        "report.col.measured": ("Số liệu hệ thống", "Measured"),
        "report.col.note": ("Ghi chú", "Note"),
        "report.override": ("Điều chỉnh số liệu", "Override a figure"),
        "report.override_hint": (
            "Chỉ điều chỉnh khi số liệu hệ thống chưa đầy đủ; lý do được lưu, in ở cột Ghi chú "
            "và ghi nhật ký. Để trống giá trị để quay về số liệu hệ thống.",
            "Override only when the measured figure is incomplete; the reason is kept, printed "
            "in the note column and audit-logged. Leave the value empty to go back to the "
            "measured figure.",
        ),
        "report.figure": ("Chỉ tiêu", "Figure"),
        "report.value": ("Giá trị mới", "New value"),
        "report.reason": ("Lý do", "Reason"),
        "report.submit": ("Gửi báo cáo lên cấp trên", "Submit to the level above"),
        "report.submit_hint": (
            "Sau khi gửi, số liệu được chốt và báo cáo bị khoá cho đến khi cấp trên trả lại.",
            "Once submitted the figures are frozen and the report is locked until the level "
            "above returns it.",
        ),
        "report.accept": ("Chấp nhận báo cáo", "Accept the report"),
        "report.return": ("Trả lại để chỉnh sửa", "Return for changes"),
        "report.return_reason": ("Lý do trả lại", "Why it is returned"),
        "report.returned_because": ("Báo cáo bị trả lại: {reason}", "Returned: {reason}"),
        "report.locked": (
            "Báo cáo đã gửi lúc {when}; số liệu đã chốt.",
            "Submitted on {when}; the figures are frozen.",
        ),
        "report.download": ("Tải về", "Download"),
        "report.preview": ("Xem bản in", "Print preview"),
        "report.annex": ("Phụ lục: kết quả của các đơn vị", "Annex: the units' results"),
        "report.no_annex": ("Đơn vị không có đơn vị trực thuộc.", "No units below."),
        "report.this_campaign": ("Báo cáo của chiến dịch", "Reports of this campaign"),
        "report.monthly": ("Báo cáo kỹ thuật hằng tháng", "Monthly technical report"),
        "report.monthly_hint": (
            "Xu hướng IP botnet so với tháng trước và cùng kỳ năm trước, IP của cơ quan nhà "
            "nước theo đơn vị, tình hình tham gia và chia sẻ dữ liệu của các tỉnh, bộ, ngành.",
            "Botnet IPs against last month and the same month last year, state agencies' IPs "
            "by unit, participation and data sharing by province and ministry.",
        ),
        "report.month": ("Tháng {month}", "{month}"),
        "report.error.value": ("Giá trị không hợp lệ: {value}", "Not a valid value: {value}"),
        "report.error.reason": (
            "Phải ghi lý do khi điều chỉnh số liệu.",
            "Give a reason for changing a measured figure.",
        ),
        "report.error.locked": (
            "Báo cáo đã gửi nên không sửa được; cấp trên cần trả lại trước.",
            "The report is submitted and cannot change until the level above returns it.",
        ),
    }
)

Fmt = Literal["docx", "xlsx", "pdf"]
STATUS_PILL = {
    "draft": "pending",
    "submitted": "received",
    "accepted": "reported",
    "returned": "overdue",
    "missing": "overdue",
}


def _campaign(session: SessionDep, principal: Principal, campaign_id: int) -> Campaign:
    with service_errors():
        return campaigns.get_visible(session, principal, campaign_id)


def _target(
    session: SessionDep, principal: Principal, campaign_id: int, code: str
) -> tuple[Campaign, Organisation]:
    campaign = _campaign(session, principal, campaign_id)
    org = find_org(session, principal, code)
    with service_errors():
        reports.check_in_campaign(session, campaign, org)
    return campaign, org


@router.get("/reports")
def listing(request: Request, session: SessionDep, principal: PageUser) -> HTMLResponse:
    rows = []
    for c in campaigns.visible(session, principal):
        org = reports.home_org(session, principal, c)
        rows.append((c, org, reports.view(session, c, org)))
    this = rf.month_start(datetime.now(UTC).date())
    months = [rf.shift_months(this, -n) for n in range(3)]
    return render(
        request,
        "pages/reports.html",
        principal=principal,
        nav_active="reports",
        rows=rows,
        pill=STATUS_PILL,
        months=months,
    )


@router.get("/reports/latest/{code}.{fmt}", response_model=None)
def latest_file(
    code: str, fmt: Fmt, request: Request, session: SessionDep, principal: PageUser
) -> Response:
    """The organisation page's download buttons: the newest campaign's report."""
    org = find_org(session, principal, code)
    campaign = reports.latest_campaign(session, org)
    if campaign is None:
        raise not_found()
    return redirect(f"/api/v1/reports/{campaign.id}/{org.code}.{fmt}")


@router.get("/reports/latest/{code}", response_model=None)
def latest(code: str, request: Request, session: SessionDep, principal: PageUser) -> Response:
    org = find_org(session, principal, code)
    campaign = reports.latest_campaign(session, org)
    if campaign is None:
        raise not_found()
    return redirect(f"/reports/{campaign.id}/{org.code}")


def _page(
    request: Request,
    session: SessionDep,
    principal: Principal,
    campaign: Campaign,
    org: Organisation,
    *,
    error: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    v = reports.view(session, campaign, org)
    doc = report_document.document(session, v)
    parent = v.org.parent_id
    return render(
        request,
        "pages/report.html",
        status_code=status_code,
        principal=principal,
        nav_active="reports",
        v=v,
        doc=doc,
        campaign=campaign,
        org=org,
        can_edit=reports.can_edit(principal, org) and not v.locked,
        can_decide=reports.can_decide(principal, org) and v.status in reports.COUNTED,
        can_accept=reports.can_decide(principal, org) and v.status == "submitted",
        has_parent=parent is not None,
        figure_options=[
            (f.key, f"{f.number}. {f.label_en if lang_of(request) == 'en' else f.label}")
            for f in doc.figures
        ],
        pill=STATUS_PILL,
        today=datetime.now(UTC).date(),
        error=error,
        flashes=[("error", error)] if error else [],
    )


@router.get("/reports/{campaign_id}/{code}")
def detail(
    campaign_id: int, code: str, request: Request, session: SessionDep, principal: PageUser
) -> HTMLResponse:
    campaign, org = _target(session, principal, campaign_id, code)
    return _page(request, session, principal, campaign, org)


@router.get("/reports/{campaign_id}/{code}/preview")
def preview(
    campaign_id: int, code: str, request: Request, session: SessionDep, principal: PageUser
) -> HTMLResponse:
    """The document as it prints (the PDF's own HTML template)."""
    from quet.reports.pdf import render_campaign_html

    campaign, org = _target(session, principal, campaign_id, code)
    doc = report_document.build_campaign_report(session, campaign, org)
    return HTMLResponse(render_campaign_html(doc, standalone=True, lang=lang_of(request)))


def _act(
    request: Request,
    session: SessionDep,
    principal: Principal,
    campaign: Campaign,
    org: Organisation,
    action: str,
    *args: object,
) -> Response:
    """Run one workflow step; a refusal the person can fix shows on the page itself."""
    try:
        getattr(reports, action)(session, principal, campaign, org, *args)
    except (NotFound, Forbidden):
        with service_errors():
            raise
    except QuetError as exc:  # InputError, Locked: say it on the page
        session.rollback()
        message = str(exc)
        if isinstance(exc, reports.Locked):
            message = i18n.translator(lang_of(request))("report.error.locked")
        return _page(request, session, principal, campaign, org, error=message, status_code=422)
    session.commit()
    flash = "saved" if action in ("edit", "override") else "status_changed"
    return redirect(f"/reports/{campaign.id}/{org.code}", flash)


Text = Annotated[str | None, Form(max_length=20000)]


@router.post("/reports/{campaign_id}/{code}", response_model=None)
def save(
    campaign_id: int,
    code: str,
    request: Request,
    session: SessionDep,
    principal: PageUser,
    number: Text = None,
    place: Text = None,
    addressee: Text = None,
    signer_title: Text = None,
    signer_name: Text = None,
    evaluation: Text = None,
    proposals: Text = None,
) -> Response:
    campaign, org = _target(session, principal, campaign_id, code)
    fields = {
        "number": number,
        "place": place,
        "addressee": addressee,
        "signer_title": signer_title,
        "signer_name": signer_name,
        "evaluation": evaluation,
        "proposals": proposals,
    }
    return _act(request, session, principal, campaign, org, "edit", fields)


def parse_value(key: str, text: str) -> float | None:
    """A figure as people type it: "1.234" or "1 234" (a count), "87,5" (a percentage); empty
    means "back to the measured value"."""
    raw = text.strip().replace(" ", "").replace("\u00a0", "").rstrip("%")
    if not raw:
        return None
    if rf.BY_KEY[key].unit == "%":
        raw = raw.replace(",", ".")
    else:
        raw = raw.replace(".", "").replace(",", "")
    try:
        return float(raw)
    except ValueError:
        raise InputError(f"{key}: not a number: {text!r}") from None


@router.post("/reports/{campaign_id}/{code}/override", response_model=None)
def override(
    campaign_id: int,
    code: str,
    request: Request,
    session: SessionDep,
    principal: PageUser,
    key: Annotated[str, Form(max_length=32)],
    value: Annotated[str, Form(max_length=40)] = "",
    reason: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    campaign, org = _target(session, principal, campaign_id, code)
    if key not in rf.BY_KEY:
        raise not_found()
    t = i18n.translator(lang_of(request))
    error = ""
    try:
        number = parse_value(key, value)
    except QuetError:
        error = t("report.error.value", value=value)
    if not error and not " ".join(reason.split()):
        error = t("report.error.reason")
    if error:
        return _page(request, session, principal, campaign, org, error=error, status_code=422)
    return _act(request, session, principal, campaign, org, "override", key, number, reason)


@router.post("/reports/{campaign_id}/{code}/submit", response_model=None)
def submit(
    campaign_id: int, code: str, request: Request, session: SessionDep, principal: PageUser
) -> Response:
    campaign, org = _target(session, principal, campaign_id, code)
    return _act(request, session, principal, campaign, org, "submit")


@router.post("/reports/{campaign_id}/{code}/accept", response_model=None)
def accept(
    campaign_id: int, code: str, request: Request, session: SessionDep, principal: PageUser
) -> Response:
    campaign, org = _target(session, principal, campaign_id, code)
    return _act(request, session, principal, campaign, org, "accept")


@router.post("/reports/{campaign_id}/{code}/return", response_model=None)
def return_report(
    campaign_id: int,
    code: str,
    request: Request,
    session: SessionDep,
    principal: PageUser,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    campaign, org = _target(session, principal, campaign_id, code)
    return _act(request, session, principal, campaign, org, "return_report", reason)
