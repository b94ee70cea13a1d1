"""The fixed wording every renderer prints, Vietnamese first with English where the contract allows
(`lang="en"`). One table, so DOCX, XLSX and PDF say the same words."""

from __future__ import annotations

from quet.reports.document import AnnexRow

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
    """Ghi chú of an annex row: "chưa báo cáo" for a missing unit, "nộp muộn" for a late one."""
    notes = []
    if row.status == "missing":
        notes.append(text("not_reported", lang))
    elif row.status in ("draft", "returned"):
        notes.append(status_label(row.status, lang).lower())
    if row.late:
        notes.append(text("reported_late", lang))
    return "; ".join(notes)
