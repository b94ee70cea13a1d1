"""The documents the renderers draw, as plain data: the services fill them from the database, the
renderers (docx, xlsx, pdf) never touch the database. Text is Vietnamese (the official language of
the form); `lang="en"` renders the same structure with English labels where a renderer has them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime


@dataclass
class FigureRow:
    """One row of Part 2 ("Thông tin số liệu"): STT | Nội dung | Số lượng | Ghi chú."""

    key: str  # stable id: "received", "deployed", "devices", "scanned", ...
    number: str  # STT as printed: "1", "2", ...
    label: str  # Nội dung, Vietnamese, exactly as the form words it
    label_en: str
    value: int | float | None  # None: not available (shown as "—", never as 0)
    unit: str = ""  # "" for counts, "%" for a percentage
    note: str = ""  # Ghi chú: e.g. the override's reason, "3 đơn vị chưa báo cáo"
    overridden: bool = False  # a person replaced the measured value (note holds the reason)
    measured: int | float | None = None  # the value from data, kept when overridden


@dataclass
class AnnexRow:
    """One child organisation in a parent's annex table."""

    code: str
    name: str
    status: str  # "draft" | "submitted" | "accepted" | "returned" | "missing" (never reported)
    late: bool
    submitted_at: datetime | None
    values: dict[str, int | float | None]  # FigureRow.key -> value (None when missing)


@dataclass
class Annex:
    """A table per level: the children of the reporting organisation (title names the level)."""

    title: str
    keys: list[str]  # FigureRow keys shown as columns, in order
    headers: list[str]  # their short Vietnamese column headers
    rows: list[AnnexRow] = field(default_factory=list)


@dataclass
class CampaignReport:
    """An organisation's return for one campaign: the letter and the appendix form."""

    # header block (Nghị định 30/2020/NĐ-CP, Phụ lục I)
    parent_body: str  # "UBND TỈNH BẮC KẠN" (the issuing body's parent, upper case), may be ""
    issuer: str  # "SỞ THÔNG TIN VÀ TRUYỀN THÔNG" (upper case)
    issuer_short: str  # abbreviation used in "Số: 12/BC-STTTT"
    number: str  # "12/BC-STTTT" or "" (printed "Số:      /BC-…")
    place: str  # "Bắc Kạn"
    day: date
    subject: str  # "V/v báo cáo kết quả triển khai Chiến dịch …"
    recipients_to: list[str]  # "Kính gửi:" lines
    body: list[str]  # paragraphs of the letter (justified, first-line indent)
    recipients: list[str]  # "Nơi nhận:" lines ("- Như trên;", "- Lưu: VT.")
    signer_title: str  # "GIÁM ĐỐC" / "KT. GIÁM ĐỐC\nPHÓ GIÁM ĐỐC"
    signer_name: str
    # the appendix form
    org_code: str
    org_name: str  # Part 1: Tên đơn vị
    campaign_name: str
    campaign_year: int
    phase: str  # "Đợt 1" or ""
    deadline: date | None
    status: str  # draft | submitted | accepted | returned
    submitted_at: datetime | None
    evaluation: str  # Part 1: Đánh giá kết quả thực hiện chiến dịch …
    proposals: str  # Part 1: Đề xuất, kiến nghị
    figures: list[FigureRow]  # Part 2
    annexes: list[Annex] = field(default_factory=list)  # one per level below (children, …)
    missing: list[str] = field(default_factory=list)  # children that have not reported (names)
    late: list[str] = field(default_factory=list)  # children that reported after the deadline
    generated_at: datetime | None = None

    @property
    def campaign_title(self) -> str:
        """The campaign's name, with its year unless the name already says it."""
        year = str(self.campaign_year)
        return (
            self.campaign_name if year in self.campaign_name else f"{self.campaign_name} ({year})"
        )


@dataclass
class TrendPoint:
    day: date
    ips: int


@dataclass
class Ranked:
    """One line of a "by …" table: a label and its count, with the change when known."""

    label: str
    value: int
    previous: int | None = None  # last month's, for the change column


@dataclass
class ProvinceStatus:
    """Participation and data-sharing status of one province or ministry."""

    code: str
    name: str
    kind: str  # "province" | "ministry"
    received: int
    deployed: int
    reported: bool
    last_shared: datetime | None  # the last signed report its server sent up (sharing)


@dataclass
class MonthlyTechnicalReport:
    """The centre's báo cáo kỹ thuật for one month."""

    issuer: str
    parent_body: str
    number: str
    place: str
    day: date
    month: date  # the 1st of the month reported on
    ips_month: int | None  # unique botnet IPs in the month; None: no statistics for the month
    ips_previous_month: int | None  # None: no statistics for that month ("chưa có dữ liệu")
    ips_same_month_last_year: int | None
    daily: list[TrendPoint]  # the month's days (and, for the chart, the months before if given)
    by_family: list[Ranked]
    by_province: list[Ranked]
    by_isp: list[Ranked]
    state_agency_ips: list[Ranked]  # by unit (organisation name, its IPs this month)
    participation: list[ProvinceStatus]
    notes: list[str] = field(default_factory=list)  # paragraphs written by people, optional
    generated_at: datetime | None = None
    # optional letter parts (added for the renderers; defaults keep older callers working)
    recipients: list[str] = field(default_factory=list)  # "Nơi nhận:" lines; none: "- Lưu: VT."
    signer_title: str = ""  # "GIÁM ĐỐC"; "" prints no signature block
    signer_name: str = ""
    issuer_short: str = ""  # abbreviation used in "Số: 12/BC-TTGSATKGMQG" ("" prints "/BC")

    @staticmethod
    def change(now: int | None, before: int | None) -> float | None:
        """Percentage change, None when there is nothing to compare with."""
        if now is None or before is None or before == 0:
            return None
        return (now - before) * 100.0 / before
