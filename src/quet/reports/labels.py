"""The fixed wording every renderer prints, Vietnamese first with English where the contract allows
(`lang="en"`). One table, so DOCX, XLSX and PDF say the same words."""

from __future__ import annotations

from quet.reports.dates import doc_number, short_date, vn_change, vn_month, vn_number, vn_value
from quet.reports.document import AnnexRow, CampaignReport, FigureRow, MonthlyTechnicalReport

_TEXT: dict[str, tuple[str, str]] = {
    "nation": ("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "SOCIALIST REPUBLIC OF VIETNAM"),
    "motto": ("Độc lập - Tự do - Hạnh phúc", "Independence - Freedom - Happiness"),
    "number": ("Số", "No."),
    "to": ("Kính gửi", "To"),
    "recipients": ("Nơi nhận", "Recipients"),
    "appendix": ("PHỤ LỤC", "APPENDIX"),
    "form": ("Mẫu thống kê, báo cáo kết quả triển khai", "Statistics and results report form"),
    "attached": ("Kèm theo Báo cáo số", "Attached to report no."),
    "of": ("của", "of"),
    "part1": ("1. Thông tin chung", "1. General information"),
    "unit_name": ("Tên đơn vị", "Unit"),
    "evaluation": (
        "Đánh giá kết quả thực hiện chiến dịch trên địa bàn/phạm vi quản lý",
        "Evaluation of the campaign's results in the unit's scope",
    ),
    "proposals": ("Đề xuất, kiến nghị (nếu có)", "Proposals (if any)"),
    "part2": ("2. Thông tin số liệu", "2. Figures"),
    "stt": ("STT", "No."),
    "content": ("Nội dung", "Item"),
    "quantity": ("Số lượng", "Quantity"),
    "note": ("Ghi chú", "Notes"),
    "measured": ("Số liệu đo được", "Measured"),
    "overridden": ("Đã điều chỉnh", "Overridden"),
    "unit": ("Đơn vị", "Unit"),
    "code": ("Mã", "Code"),
    "status": ("Trạng thái", "Status"),
    "late": ("Nộp muộn", "Late"),
    "submitted_at": ("Thời điểm gửi", "Submitted at"),
    "campaign": ("Chiến dịch", "Campaign"),
    "phase": ("Đợt", "Phase"),
    "deadline": ("Hạn báo cáo", "Deadline"),
    "generated": ("Lập lúc", "Generated"),
    "missing_units": ("Đơn vị chưa báo cáo", "Units that have not reported"),
    "late_units": ("Đơn vị báo cáo muộn", "Units that reported late"),
    "not_reported": ("chưa báo cáo", "not reported"),
    "reported_late": ("nộp muộn", "late"),
    "overdue": ("quá hạn", "overdue"),
    "unknown": ("Không rõ", "Unknown"),
    "no_data": ("chưa có dữ liệu", "no data"),
    "none": ("Không có", "None"),
    "yes": ("Có", "Yes"),
    "no": ("Không", "No"),
    "report_sheet": ("Báo cáo", "Report"),
    # the monthly technical report
    "tech_title": ("BÁO CÁO KỸ THUẬT", "TECHNICAL REPORT"),
    "tech_subject": ("Tình hình địa chỉ IP botnet", "Botnet IP addresses"),
    "tech_trend": ("1. Xu hướng địa chỉ IP botnet", "1. Botnet IP trend"),
    "tech_family": ("2. Theo họ mã độc", "2. By malware family"),
    "tech_province": ("3. Theo tỉnh, thành phố", "3. By province"),
    "tech_isp": ("4. Theo nhà cung cấp dịch vụ", "4. By network operator"),
    "tech_state": (
        "5. Địa chỉ IP của cơ quan nhà nước theo đơn vị",
        "5. State-agency IP addresses by unit",
    ),
    "tech_participation": (
        "6. Tình hình tham gia chiến dịch và chia sẻ dữ liệu",
        "6. Campaign participation and data sharing",
    ),
    "tech_notes": ("7. Nhận xét, đề xuất", "7. Remarks and proposals"),
    "indicator": ("Chỉ số", "Measure"),
    "this_month": ("Tháng này", "This month"),
    "previous_month": ("Tháng trước", "Previous month"),
    "last_year": ("Cùng kỳ năm trước", "Same month last year"),
    "change": ("Thay đổi", "Change"),
    "unique_ips": ("Số địa chỉ IP botnet (duy nhất)", "Unique botnet IP addresses"),
    "ips": ("Số IP", "IPs"),
    "family": ("Họ mã độc", "Family"),
    "province": ("Tỉnh, thành phố", "Province"),
    "isp": ("Nhà cung cấp dịch vụ", "Operator"),
    "agency": ("Cơ quan, đơn vị", "Agency"),
    "kind": ("Loại", "Kind"),
    "received": ("Nhận thông tin", "Received"),
    "deployed": ("Triển khai", "Deployed"),
    "reported": ("Đã báo cáo", "Reported"),
    "last_shared": ("Chia sẻ gần nhất", "Last shared"),
    "daily": ("Số IP botnet theo ngày", "Botnet IPs per day"),
    "day": ("Ngày", "Day"),
    "province_kind": ("Tỉnh", "Province"),
    "ministry_kind": ("Bộ, ngành", "Ministry"),
    "overview": ("Tổng quan", "Overview"),
    "participation_sheet": ("Tham gia", "Participation"),
}

_STATUS: dict[str, tuple[str, str]] = {
    "draft": ("Đang soạn", "Draft"),
    "submitted": ("Đã gửi", "Submitted"),
    "accepted": ("Đã chấp nhận", "Accepted"),
    "returned": ("Bị trả lại", "Returned"),
    "missing": ("Chưa báo cáo", "Not reported"),
}


def text(key: str, lang: str = "vi") -> str:
    vi, en = _TEXT[key]
    return en if lang == "en" else vi


def status_label(status: str, lang: str = "vi") -> str:
    vi, en = _STATUS.get(status, (status, status))
    return en if lang == "en" else vi


def annex_note(row: AnnexRow, lang: str = "vi") -> str:
    """Ghi chú of an annex row: "chưa báo cáo" for a missing unit ("chưa báo cáo; quá hạn" once
    the deadline has passed), "nộp muộn" for a report that came after it."""
    notes = []
    if row.status == "missing":
        notes.append(text("not_reported", lang))
    elif row.status in ("draft", "returned"):
        notes.append(status_label(row.status, lang).lower())
    if row.late:
        # Late without a report is overdue; only a report that came can be "nộp muộn".
        submitted = row.status in ("submitted", "accepted") and row.submitted_at is not None
        notes.append(text("reported_late" if submitted else "overdue", lang))
    return "; ".join(notes)


def ranked_label(label: str, lang: str = "vi") -> str:
    """A "by …" table's label; a blank one (no province, no operator known) is "Không rõ"."""
    return label.strip() or text("unknown", lang)


def number_line(number: str, kind: str, short: str, lang: str) -> str:
    """ "Số: 05/BC-STTTT", or "Số:      /BC-STTTT" for a number to be filled in by hand."""
    label = text("number", lang)
    if number.strip():
        return f"{label}: {doc_number(number.strip())}"
    tail = f"/{kind}-{short}" if short else f"/{kind}"
    return f"{label}:      {tail}"


def figure_note(row: FigureRow, lang: str) -> str:
    """Ghi chú of a figure; an overridden one also shows the measured value."""
    note = row.note.strip()
    if row.overridden and row.measured is not None:
        measured = f"{text('measured', lang)}: {vn_value(row.measured, row.unit, lang)}"
        if measured not in note:
            note = f"{note}\n{measured}" if note else measured
    return note


def attached_line(doc: CampaignReport, lang: str = "vi") -> str:
    """ "(Kèm theo Báo cáo số 05/BC-STTTT ngày 05/01/2026 của …)" under the appendix title."""
    if doc.number.strip():
        number = doc_number(doc.number)
    else:
        number = f"      /BC-{doc.issuer_short}" if doc.issuer_short else "      /BC"
    if lang == "en":
        return f"(Attached to report no. {number}, {short_date(doc.day, lang)}, {doc.org_name})"
    return f"(Kèm theo Báo cáo số {number} ngày {short_date(doc.day)} của {doc.org_name})"


def monthly_summary(doc: MonthlyTechnicalReport, lang: str = "vi") -> str:
    """The trend sentence both the DOCX and the HTML print under section 1; a month without
    statistics says "chưa có dữ liệu", never 0."""
    month = vn_month(doc.month, lang)
    parts = []
    if doc.ips_month is None:
        if lang == "en":
            return f"There is no botnet data for {month} yet."
        return f"Chưa có dữ liệu về địa chỉ IP botnet trong {month}."
    if lang == "en":
        parts.append(
            f"In {month} {vn_number(doc.ips_month, lang=lang)} unique botnet IP "
            "addresses were seen in Vietnam"
        )
        for label, before in (
            ("the previous month", doc.ips_previous_month),
            ("the same month last year", doc.ips_same_month_last_year),
        ):
            change = MonthlyTechnicalReport.change(doc.ips_month, before)
            if before is None:
                parts.append(f"no data for {label}")
            elif change is not None:
                parts.append(
                    f"{vn_change(change, lang)} against {label} ({vn_number(before, lang=lang)})"
                )
        return "; ".join(parts) + "."
    parts.append(f"Trong {month} ghi nhận {vn_number(doc.ips_month)} địa chỉ IP botnet (duy nhất)")
    for label, before in (
        ("so với tháng trước", doc.ips_previous_month),
        ("so với cùng kỳ năm trước", doc.ips_same_month_last_year),
    ):
        change = MonthlyTechnicalReport.change(doc.ips_month, before)
        if before is None:
            parts.append(f"{label.replace('so với ', '')} chưa có dữ liệu")
        elif change is not None:
            word = "tăng" if change > 0 else "giảm" if change < 0 else "không đổi"
            amount = "" if change == 0 else " " + vn_change(abs(change)).lstrip("+")
            parts.append(f"{word}{amount} {label} ({vn_number(before)})")
    return "; ".join(parts) + "."
