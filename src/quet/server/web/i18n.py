"""UI strings and number/date formats of the web pages, Vietnamese first and English.

The language is chosen per request (a cookie or `?lang=`), not per process, so this catalog is
separate from `quet.i18n` (the CLI's, which follows QUET_LANG).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, datetime
from typing import Protocol

LANGS: tuple[str, ...] = ("vi", "en")
DEFAULT_LANG = "vi"

# key -> (Vietnamese, English). Keys are grouped by prefix so pages can find what exists.
CATALOG: dict[str, tuple[str, str]] = {
    # product and frame
    "app.name": ("Quét", "Quét"),
    "app.tagline": ("Hệ thống rà quét, bóc gỡ mã độc", "Malware scanning and clean-up system"),
    "app.skip": ("Bỏ qua, đến nội dung chính", "Skip to main content"),
    "app.footer": (
        "Quét — phần mềm rà quét mã độc dùng cho cơ quan, tổ chức",
        "Quét — malware scanning for public agencies",
    ),
    "app.version": ("Phiên bản {version}", "Version {version}"),
    "lang.label": ("Ngôn ngữ", "Language"),
    "lang.vi": ("Tiếng Việt", "Vietnamese"),
    "lang.en": ("Tiếng Anh", "English"),
    "user.menu": ("Tài khoản", "Account"),
    "user.profile": ("Hồ sơ cá nhân", "Profile"),
    "user.tokens": ("Khoá API", "API tokens"),
    "user.logout": ("Đăng xuất", "Sign out"),
    "user.login": ("Đăng nhập", "Sign in"),
    "user.anonymous": ("Chưa đăng nhập", "Not signed in"),
    # navigation
    "nav.label": ("Điều hướng chính", "Main navigation"),
    "nav.overview": ("Tổng quan", "Overview"),
    "nav.orgs": ("Đơn vị", "Organisations"),
    "nav.campaigns": ("Chiến dịch", "Campaigns"),
    "nav.devices": ("Thiết bị", "Devices"),
    "nav.findings": ("Phát hiện", "Findings"),
    "nav.audit": ("Nhật ký", "Audit log"),
    "nav.users": ("Người dùng", "Users"),
    "nav.upload": ("Tải kết quả quét", "Upload a scan"),
    # roles and organisation kinds
    "role.admin": ("Quản trị", "Administrator"),
    "role.officer": ("Cán bộ", "Officer"),
    "role.viewer": ("Xem", "Viewer"),
    "kind.national": ("Trung ương", "National"),
    "kind.province": ("Tỉnh, thành phố", "Province"),
    "kind.department": ("Sở, ban, ngành", "Department"),
    "kind.district": ("Quận, huyện", "District"),
    "kind.commune": ("Xã, phường, đặc khu", "Commune"),
    "kind.unit": ("Đơn vị", "Unit"),
    # statuses (status_pill)
    "status.received": ("Đã nhận", "Received"),
    "status.deployed": ("Đã triển khai", "Deployed"),
    "status.reported": ("Đã báo cáo", "Reported"),
    "status.pending": ("Chưa", "Not yet"),
    "status.overdue": ("Quá hạn", "Overdue"),
    "status.active": ("Đang hoạt động", "Active"),
    "status.inactive": ("Ngừng hoạt động", "Inactive"),
    "status.draft": ("Nháp", "Draft"),
    "status.closed": ("Đã kết thúc", "Closed"),
    "status.online": ("Trực tuyến", "Online"),
    "status.offline": ("Mất kết nối", "Offline"),
    "status.stale": ("Mẫu nhận diện cũ", "Outdated signatures"),
    "status.protected": ("Được bảo vệ", "Protected"),
    "status.unprotected": ("Chưa được bảo vệ", "Unprotected"),
    "status.clean": ("Sạch", "Clean"),
    "status.infected": ("Nhiễm mã độc", "Infected"),
    "status.open": ("Chưa xử lý", "Open"),
    "status.quarantined": ("Đã cách ly", "Quarantined"),
    "status.cleaned": ("Đã bóc gỡ", "Cleaned"),
    "status.ignored": ("Bỏ qua", "Ignored"),
    "status.false_positive": ("Nhận diện nhầm", "False positive"),
    "status.unknown": ("Không rõ", "Unknown"),
    # page titles and headings
    "page.overview": ("Tổng quan", "Overview"),
    "page.orgs": ("Cây đơn vị", "Organisation tree"),
    "page.campaigns": ("Chiến dịch rà quét", "Scanning campaigns"),
    "page.campaign": ("Chiến dịch", "Campaign"),
    "page.devices": ("Thiết bị", "Devices"),
    "page.findings": ("Phát hiện mã độc", "Malware findings"),
    "page.audit": ("Nhật ký thay đổi", "Audit log"),
    "page.login": ("Đăng nhập hệ thống", "Sign in"),
    "page.late": ("Đơn vị chưa báo cáo", "Organisations that have not reported"),
    "page.not_acknowledged": ("Đơn vị chưa xác nhận", "Organisations that have not acknowledged"),
    # figures on cards
    "fig.orgs": ("Đơn vị", "Organisations"),
    "fig.devices": ("Thiết bị", "Devices"),
    "fig.protected": ("Thiết bị được bảo vệ", "Protected devices"),
    "fig.infected": ("Thiết bị nhiễm", "Infected devices"),
    "fig.findings": ("Phát hiện", "Findings"),
    "fig.open_findings": ("Phát hiện chưa xử lý", "Open findings"),
    "fig.coverage": ("Tỷ lệ bao phủ", "Coverage"),
    "fig.received": ("Đã nhận", "Received"),
    "fig.deployed": ("Đã triển khai", "Deployed"),
    "fig.reported": ("Đã báo cáo", "Reported"),
    "fig.late": ("Quá hạn", "Late"),
    "fig.of_total": ("trên tổng số {total}", "of {total}"),
    "fig.days_left": ("còn {days} ngày", "{days} days left"),
    "fig.days_late": ("quá hạn {days} ngày", "{days} days late"),
    # charts
    "chart.trend": ("Diễn biến theo thời gian", "Trend over time"),
    "chart.findings_by_day": ("Phát hiện theo ngày", "Findings per day"),
    "chart.by_province": ("Theo tỉnh, thành phố", "By province"),
    "chart.status": ("Tình trạng thực hiện", "Progress"),
    "chart.no_data": ("Chưa có dữ liệu", "No data yet"),
    # table headers
    "col.code": ("Mã", "Code"),
    "col.name": ("Tên", "Name"),
    "col.org": ("Đơn vị", "Organisation"),
    "col.kind": ("Loại", "Kind"),
    "col.parent": ("Đơn vị cấp trên", "Parent"),
    "col.status": ("Trạng thái", "Status"),
    "col.received": ("Đã nhận", "Received"),
    "col.deployed": ("Đã triển khai", "Deployed"),
    "col.reported": ("Đã báo cáo", "Reported"),
    "col.devices": ("Thiết bị", "Devices"),
    "col.infected": ("Nhiễm", "Infected"),
    "col.coverage": ("Bao phủ", "Coverage"),
    "col.deadline": ("Hạn báo cáo", "Report deadline"),
    "col.phase": ("Đợt", "Phase"),
    "col.year": ("Năm", "Year"),
    "col.scope": ("Phạm vi", "Scope"),
    "col.bundle": ("Gói mẫu nhận diện", "Content bundle"),
    "col.start": ("Bắt đầu", "Start"),
    "col.end": ("Kết thúc", "End"),
    "col.hostname": ("Tên máy", "Hostname"),
    "col.os": ("Hệ điều hành", "Operating system"),
    "col.ip": ("Địa chỉ IP", "IP address"),
    "col.agent_version": ("Phiên bản tác tử", "Agent version"),
    "col.content_version": ("Phiên bản mẫu", "Content version"),
    "col.content_age": ("Tuổi mẫu", "Content age"),
    "col.antimalware": ("Phần mềm phòng chống mã độc", "Anti-malware"),
    "col.last_scan": ("Lần quét gần nhất", "Last scan"),
    "col.last_seen": ("Liên lạc gần nhất", "Last seen"),
    "col.device": ("Thiết bị", "Device"),
    "col.detection": ("Tên nhận diện", "Detection"),
    "col.path": ("Đường dẫn", "Path"),
    "col.sha256": ("SHA-256", "SHA-256"),
    "col.severity": ("Mức độ", "Severity"),
    "col.remediation": ("Xử lý", "Remediation"),
    "col.time": ("Thời gian", "Time"),
    "col.user": ("Người thực hiện", "User"),
    "col.action": ("Hành động", "Action"),
    "col.object": ("Đối tượng", "Object"),
    "col.details": ("Chi tiết", "Details"),
    "col.contact": ("Liên hệ", "Contact"),
    "col.email": ("Thư điện tử", "Email"),
    "col.role": ("Vai trò", "Role"),
    "col.actions": ("Thao tác", "Actions"),
    # severities
    "severity.high": ("Cao", "High"),
    "severity.medium": ("Trung bình", "Medium"),
    "severity.low": ("Thấp", "Low"),
    # buttons
    "btn.save": ("Lưu", "Save"),
    "btn.cancel": ("Huỷ", "Cancel"),
    "btn.create": ("Tạo mới", "Create"),
    "btn.edit": ("Sửa", "Edit"),
    "btn.delete": ("Xoá", "Delete"),
    "btn.search": ("Tìm kiếm", "Search"),
    "btn.filter": ("Lọc", "Filter"),
    "btn.reset": ("Xoá bộ lọc", "Clear filters"),
    "btn.export": ("Xuất CSV", "Export CSV"),
    "btn.import": ("Nhập từ tệp", "Import from file"),
    "btn.upload": ("Tải lên", "Upload"),
    "btn.acknowledge": ("Xác nhận đã nhận", "Acknowledge"),
    "btn.notify": ("Gửi thông báo", "Send notice"),
    "btn.remind": ("Nhắc các đơn vị chậm", "Remind late organisations"),
    "btn.enroll_token": ("Tạo mã đăng ký tác tử", "Create enrollment token"),
    "btn.print": ("In", "Print"),
    "btn.back": ("Quay lại", "Back"),
    "btn.login": ("Đăng nhập", "Sign in"),
    "btn.expand_all": ("Mở rộng tất cả", "Expand all"),
    "btn.collapse_all": ("Thu gọn tất cả", "Collapse all"),
    "btn.mark_cleaned": ("Đánh dấu đã bóc gỡ", "Mark as cleaned"),
    # forms
    "form.username": ("Tên đăng nhập", "Username"),
    "form.password": ("Mật khẩu", "Password"),
    "form.new_password": ("Mật khẩu mới", "New password"),
    "form.display_name": ("Họ và tên", "Full name"),
    "form.email": ("Thư điện tử", "Email"),
    "form.phone": ("Điện thoại", "Phone"),
    "form.org": ("Đơn vị", "Organisation"),
    "form.parent": ("Đơn vị cấp trên", "Parent organisation"),
    "form.code": ("Mã đơn vị", "Code"),
    "form.name": ("Tên", "Name"),
    "form.kind": ("Loại đơn vị", "Kind"),
    "form.ip_ranges": ("Dải địa chỉ IP", "IP ranges"),
    "form.domains": ("Tên miền", "Domains"),
    "form.asns": ("Số hiệu mạng (ASN)", "ASNs"),
    "form.campaign_name": ("Tên chiến dịch", "Campaign name"),
    "form.year": ("Năm", "Year"),
    "form.phase": ("Đợt", "Phase"),
    "form.start": ("Ngày bắt đầu", "Start date"),
    "form.end": ("Ngày kết thúc", "End date"),
    "form.deadline": ("Hạn báo cáo", "Report deadline"),
    "form.scope": ("Phạm vi (đơn vị và cấp dưới)", "Scope (organisation and below)"),
    "form.bundle": ("Gói mẫu nhận diện", "Content bundle"),
    "form.file": ("Tệp kết quả quét (JSON)", "Scan result file (JSON)"),
    "form.note": ("Ghi chú", "Note"),
    "form.search": ("Tìm theo tên, mã…", "Search by name, code…"),
    "form.required": ("bắt buộc", "required"),
    "form.role": ("Vai trò", "Role"),
    "form.all": ("Tất cả", "All"),
    # pagination and tables
    "table.empty": ("Không có dữ liệu", "Nothing to show"),
    "table.total": ("Tổng cộng {total} dòng", "{total} rows in total"),
    "page.prev": ("Trang trước", "Previous"),
    "page.next": ("Trang sau", "Next"),
    "page.of": ("Trang {page} / {pages}", "Page {page} of {pages}"),
    "page.nav": ("Phân trang", "Pagination"),
    "sort.asc": ("tăng dần", "ascending"),
    "sort.desc": ("giảm dần", "descending"),
    # flash messages
    "flash.saved": ("Đã lưu thay đổi.", "Changes saved."),
    "flash.deleted": ("Đã xoá.", "Deleted."),
    "flash.acknowledged": ("Đã xác nhận nhận chiến dịch.", "Campaign acknowledged."),
    "flash.notified": (
        "Đã gửi thông báo tới {count} đơn vị.",
        "Notice sent to {count} organisations.",
    ),
    "flash.imported": ("Đã nhập {count} dòng.", "{count} rows imported."),
    "flash.uploaded": ("Đã nhận kết quả quét.", "Scan result received."),
    "flash.logged_out": ("Bạn đã đăng xuất.", "You have signed out."),
    "flash.close": ("Đóng", "Dismiss"),
    # errors
    "error.title": ("Đã có lỗi", "Something went wrong"),
    "error.required": ("Vui lòng nhập trường này.", "This field is required."),
    "error.invalid": ("Giá trị không hợp lệ.", "This value is not valid."),
    "error.invalid_date": ("Ngày không hợp lệ (dd/mm/yyyy).", "Not a valid date (yyyy-mm-dd)."),
    "error.invalid_ip": ("Dải IP không hợp lệ.", "Not a valid IP range."),
    "error.duplicate_code": ("Mã đơn vị đã tồn tại.", "This code is already in use."),
    "error.login": ("Sai tên đăng nhập hoặc mật khẩu.", "Wrong username or password."),
    "error.csrf": (
        "Phiên làm việc đã hết hạn, vui lòng tải lại trang và thử lại.",
        "Your session expired; reload the page and try again.",
    ),
    "error.forbidden": (
        "Bạn không có quyền thực hiện thao tác này.",
        "You are not allowed to do this.",
    ),
    "error.not_found": ("Không tìm thấy trang yêu cầu.", "Page not found."),
    "error.server": (
        "Lỗi máy chủ. Vui lòng thử lại sau hoặc liên hệ quản trị viên.",
        "Server error. Try again later or contact the administrator.",
    ),
    "error.upload": (
        "Tệp tải lên không đọc được: {reason}",
        "The uploaded file is unreadable: {reason}",
    ),
    # misc
    "misc.yes": ("Có", "Yes"),
    "misc.no": ("Không", "No"),
    "misc.never": ("Chưa bao giờ", "Never"),
    "misc.none": ("Không có", "None"),
    "misc.today": ("Hôm nay", "Today"),
    "misc.days": ("{days} ngày", "{days} days"),
    "misc.loading": ("Đang tải…", "Loading…"),
    "misc.more": ("Xem thêm", "More"),
    # the pages (web helper): added after the look, append-only
    "kind.ministry": ("Bộ, ngành", "Ministry"),
    "page.ack": ("Xác nhận đã nhận chiến dịch", "Acknowledge a campaign"),
    "page.password": ("Đổi mật khẩu", "Change password"),
    "btn.relay": ("Gửi thông báo xuống đơn vị cấp dưới", "Relay to organisations below"),
    "chart.trend_month": ("Diễn biến 30 ngày qua", "The last 30 days"),
    "chart.findings_per_day": ("Phát hiện mỗi ngày", "Findings per day"),
    "chart.scanned_per_day": ("Thiết bị được quét mỗi ngày", "Devices scanned per day"),
    "chart.devices_by_child": ("Thiết bị theo đơn vị trực thuộc", "Devices by organisation below"),
    "col.created": ("Ngày tạo", "Created"),
    "col.enrolled": ("Ngày đăng ký", "Enrolled"),
    "col.errors": ("Lỗi", "Errors"),
    "col.expires": ("Hết hạn", "Expires"),
    "col.files": ("Số tệp", "Files"),
    "col.notified": ("Đã gửi thông báo", "Notified"),
    "col.scan_id": ("Mã lần quét", "Scan ID"),
    "col.uses": ("Đã dùng", "Used"),
    "device.kind.server": ("Máy chủ", "Server"),
    "device.kind.workstation": ("Máy trạm", "Workstation"),
    "device.kind.endpoint": ("Thiết bị đầu cuối", "Endpoint"),
    "finding.kind.hash": ("Mã băm", "Hash"),
    "finding.kind.yara": ("Luật YARA", "YARA rule"),
    "finding.kind.filename": ("Tên tệp", "File name"),
    "finding.kind.c2": ("Kết nối máy chủ điều khiển (C2)", "Command-and-control (C2)"),
    "finding.kind.heuristic": ("Dấu hiệu bất thường", "Heuristic"),
    "finding.kind.process": ("Tiến trình", "Process"),
    "finding.kind.persistence": ("Cơ chế bám trụ", "Persistence"),
    "finding.status.open": ("Chưa xử lý", "Open"),
    "finding.status.remediated": ("Đã bóc gỡ", "Cleaned"),
    "finding.status.false_positive": ("Nhận diện nhầm", "False positive"),
    "error.ack_link": (
        "Đường dẫn xác nhận không đúng hoặc đã được thay bằng đường dẫn mới.",
        "This acknowledgement link is wrong or has been replaced by a newer one.",
    ),
    "error.password_mismatch": ("Hai mật khẩu mới không khớp.", "The two new passwords differ."),
    "error.password_same": (
        "Mật khẩu mới phải khác mật khẩu hiện tại.",
        "The new password must differ from the current one.",
    ),
    "error.password_short": (
        "Mật khẩu mới cần ít nhất 10 ký tự.",
        "The new password needs at least 10 characters.",
    ),
    "error.password_wrong": ("Mật khẩu hiện tại không đúng.", "The current password is wrong."),
    "fig.orgs_in_scope": ("Đơn vị trong phạm vi", "Organisations in scope"),
    "fig.cleaned": ("Phát hiện đã bóc gỡ", "Findings cleaned"),
    "fig.current_within": (
        "mẫu nhận diện cập nhật trong {days} ngày",
        "signatures updated within {days} days",
    ),
    "fig.late_count": (
        "{count} đơn vị quá hạn báo cáo",
        "{count} organisations late with their report",
    ),
    "fig.protected_count": ("{count} được bảo vệ", "{count} protected"),
    "fig.protected_pct": ("Tỷ lệ được bảo vệ", "Protected, current signatures"),
    "flash.ack_done": (
        "Đã xác nhận lúc {when} (người xác nhận: {who}). Cảm ơn!",
        "Acknowledged at {when} (by {who}). Thank you!",
    ),
    "flash.must_change_password": (
        "Bạn cần đổi mật khẩu được cấp trước khi tiếp tục.",
        "Change the password you were given before going on.",
    ),
    "flash.not_delivered": ("{count} thông báo chưa gửi được:", "{count} notices not delivered:"),
    "flash.token_created": (
        "Mã đăng ký tác tử (chỉ hiển thị một lần, hãy sao chép ngay):",
        "Enrollment token (shown once only, copy it now):",
    ),
    "flash.upload_duplicate": (
        "Kết quả quét này đã được nhận trước đây.",
        "This scan had already been received.",
    ),
    "flash.password_changed": ("Đã đổi mật khẩu.", "Password changed."),
    "flash.status_changed": ("Đã cập nhật trạng thái xử lý.", "Remediation status updated."),
    "form.ack_who": ("Họ tên, chức vụ người xác nhận", "Your name and position"),
    "form.ack_hint": (
        "Xác nhận đơn vị đã nhận văn bản triển khai chiến dịch.",
        "Confirms that your organisation received the campaign notice.",
    ),
    "form.confirm_password": ("Nhập lại mật khẩu mới", "Repeat the new password"),
    "form.current_password": ("Mật khẩu hiện tại", "Current password"),
    "form.family": ("Họ mã độc, tên nhận diện…", "Malware family, detection…"),
    "form.file_hint": (
        "Tệp do lệnh «quet scan --json» tạo ra trên máy chưa cài tác tử.",
        "The file written by `quet scan --json` on a machine without an agent.",
    ),
    "form.label": ("Nhãn", "Label"),
    "form.one_per_line": ("Mỗi dòng một giá trị", "One per line"),
    "form.org_code": ("Mã đơn vị", "Organisation code"),
    "form.password_hint": ("Ít nhất 10 ký tự.", "At least 10 characters."),
    "form.search_host": ("Tìm theo tên máy…", "Search by hostname…"),
    "form.stale_only": ("Mẫu nhận diện cũ hơn {days} ngày", "Signatures older than {days} days"),
    "form.webhook": ("Địa chỉ webhook", "Webhook URL"),
    "misc.breadcrumbs": ("Đường dẫn trang", "Breadcrumbs"),
    "misc.children": ("Đơn vị trực thuộc", "Organisations below"),
    "misc.contacts": ("Thông tin liên hệ", "Contacts"),
    "misc.enrollment_tokens": ("Mã đăng ký tác tử", "Enrollment tokens"),
    "misc.everyone_acknowledged": (
        "Tất cả đơn vị đã xác nhận.",
        "Every organisation has acknowledged.",
    ),
    "misc.interrupted": ("bị ngắt", "interrupted"),
    "misc.network": ("Tài nguyên mạng", "Network"),
    "misc.no_campaign": ("Chưa có chiến dịch nào.", "No campaign yet."),
    "misc.nobody_late": ("Không có đơn vị nào quá hạn.", "No organisation is late."),
    "misc.not_notified": ("Chưa gửi", "Not sent"),
    "misc.phases": ("Các đợt", "Phases"),
    "misc.progress_by_org": ("Tiến độ từng đơn vị", "Progress by organisation"),
    "misc.scans": ("Các lần quét", "Scans"),
    "misc.status_in": ("Tình trạng trong «{name}»", "Status in “{name}”"),
    "misc.upcoming": ("Sắp tới", "Upcoming"),
    "misc.upload_intro": (
        "Dành cho máy không cài tác tử: tải lên tệp kết quả quét để ghi nhận thiết bị và phát hiện.",
        "For a machine without an agent: upload its scan result to record the device and findings.",
    ),
    "misc.uploaded_only": ("tải lên thủ công", "uploaded by hand"),
    "audit.session.start": ("Đăng nhập", "Signed in"),
    "audit.session.end": ("Đăng xuất", "Signed out"),
    "audit.session.failed": ("Đăng nhập thất bại", "Failed sign-in"),
    "audit.org.update": ("Sửa thông tin đơn vị", "Organisation changed"),
    "audit.org.create": ("Tạo đơn vị", "Organisation created"),
    "audit.campaign.create": ("Tạo chiến dịch", "Campaign created"),
    "audit.campaign.relay": ("Gửi thông báo chiến dịch", "Campaign relayed"),
    "audit.campaign.ack": ("Xác nhận đã nhận", "Acknowledged"),
    "audit.campaign.report": ("Gửi báo cáo", "Report sent"),
    "audit.scan.upload": ("Tải lên kết quả quét", "Scan uploaded"),
    "audit.finding.status": ("Đổi trạng thái xử lý", "Remediation status changed"),
    "audit.enrollment_token.create": ("Tạo mã đăng ký tác tử", "Enrollment token created"),
    "audit.device.enroll": ("Đăng ký thiết bị", "Device enrolled"),
    "audit.user.create": ("Tạo người dùng", "User created"),
    "audit.user.password": ("Đổi mật khẩu", "Password changed"),
}


def add(strings: dict[str, tuple[str, str]]) -> None:
    """Register a page module's own strings (key -> (Vietnamese, English)); a key defined twice
    with different texts is a mistake, so it fails at import rather than showing the wrong one."""
    for key, pair in strings.items():
        known = CATALOG.get(key)
        if known is not None and known != pair:
            raise ValueError(f"UI string {key!r} is already defined as {known!r}")
        CATALOG[key] = pair


class Translate(Protocol):
    """A page's `t`: `t("nav.overview")`, `t("page.of", page=2, pages=9)`."""

    def __call__(self, key: str, /, **kwargs: object) -> str: ...


def normalise_lang(value: str | None) -> str:
    """Map a cookie, query or Accept-Language value to "vi" or "en" (Vietnamese by default)."""
    if not value:
        return DEFAULT_LANG
    head = value.strip().lower().replace("_", "-")[:2]
    return head if head in LANGS else DEFAULT_LANG


def translator(lang: str) -> Translate:
    """The `t` function for one language; unknown keys come back unchanged so gaps show."""
    index = 1 if normalise_lang(lang) == "en" else 0

    def t(key: str, /, **kwargs: object) -> str:
        pair = CATALOG.get(key)
        text = pair[index] if pair else key
        if kwargs:
            try:
                return text.format(**kwargs)
            except (KeyError, IndexError, ValueError):
                # A page passing the wrong placeholder must not turn into a 500.
                return text
        return text

    return t


def _group(digits: str, sep: str) -> str:
    head = len(digits) % 3 or 3
    parts = [digits[:head]] + [digits[i : i + 3] for i in range(head, len(digits), 3)]
    return sep.join(parts)


def format_number(n: float | int | None, lang: str, decimals: int = 0) -> str:
    """1.234.567 (vi) or 1,234,567 (en); `decimals` digits after the decimal comma/point."""
    if n is None:
        return "—"
    if isinstance(n, float) and not math.isfinite(n):
        return "—"
    en = normalise_lang(lang) == "en"
    thousands, point = (",", ".") if en else (".", ",")
    text = f"{abs(n):.{decimals}f}" if decimals > 0 else str(round(abs(n)))
    whole, _, frac = text.partition(".")
    out = _group(whole, thousands) + (point + frac if frac else "")
    negative = n < 0 and any(ch not in "0.," for ch in out)
    return ("-" if negative else "") + out


def format_pct(pct: float | None, lang: str, decimals: int = 1) -> str:
    """A percentage given as 0–100: "87,5%" (vi) or "87.5%" (en); whole numbers lose ".0"."""
    if pct is None or not math.isfinite(pct):
        return "—"
    if decimals > 0 and round(pct, decimals) == round(pct):
        decimals = 0
    return format_number(pct, lang, decimals) + "%"


def format_date(d: date | datetime | None, lang: str) -> str:
    """05/01/2026 (vi) or 2026-01-05 (en)."""
    if d is None:
        return "—"
    if normalise_lang(lang) == "en":
        return f"{d.year:04d}-{d.month:02d}-{d.day:02d}"
    return f"{d.day:02d}/{d.month:02d}/{d.year:04d}"


def format_datetime(d: datetime | None, lang: str) -> str:
    """05/01/2026 14:03 (vi) or 2026-01-05 14:03 (en), in the value's own time zone."""
    if d is None:
        return "—"
    return f"{format_date(d, lang)} {d.hour:02d}:{d.minute:02d}"


def template_context(lang: str) -> dict[str, object]:
    """What every page needs from here: `t`, `lang` and the formatters bound to the language."""
    code = normalise_lang(lang)
    num: Callable[..., str] = lambda n, decimals=0: format_number(n, code, decimals)  # noqa: E731
    pct: Callable[..., str] = lambda p, decimals=1: format_pct(p, code, decimals)  # noqa: E731
    return {
        "t": translator(code),
        "lang": code,
        "format_number": num,
        "format_pct": pct,
        "format_date": lambda d: format_date(d, code),
        "format_datetime": lambda d: format_datetime(d, code),
    }
