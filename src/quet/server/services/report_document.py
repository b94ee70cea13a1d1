"""The `CampaignReport` the renderers draw, from a report's view: the letter in the layout of
Nghị định 30/2020/NĐ-CP (issuer, number, place, addressee, body, signer) and the appendix form with
its annex tables; and the files (DOCX, XLSX, PDF) made from it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy.orm import Session

from quet.errors import InputError
from quet.reports.document import (
    Annex,
    AnnexRow,
    CampaignReport,
    FigureRow,
    MonthlyTechnicalReport,
)
from quet.reports.render import MEDIA_TYPES as MEDIA_TYPES  # re-exported for the API
from quet.server.services import orgs, reports
from quet.server.services import report_figures as rf
from quet.server.services.reports import COUNTED, View, view
from quet.store.models import Campaign, Organisation

VN_TZ = timezone(timedelta(hours=7), "ICT")  # the letter's date is Vietnam's


def abbreviation(name: str) -> str:
    """ "Sở Thông tin và Truyền thông" → "STTTT": initials, upper-case words kept whole."""
    # The place is not part of it: "Sở Y tế tỉnh Cao Bằng" → "SYT".
    cut = re.split(r"\s(?:tỉnh|thành phố|huyện|quận|thị xã|TP\.?)\s", name, maxsplit=1)[0]
    out = []
    for word in cut.replace("-", " ").split():
        if word.lower() in ("và", "của", "&"):
            continue
        out.append(word if word.isupper() and len(word) > 1 else word[0].upper())
    return "".join(out)


_PLACE = re.compile(r"(?:^|\s)(?:[Tt]ỉnh|[Tt]hành phố|TP\.?)\s*(.+)$")
# Places named after a person keep "Thành phố" in the date line (Nghị định 30/2020/NĐ-CP,
# Phụ lục I: "Thành phố Hồ Chí Minh, ngày …"); others take the short name ("Cao Bằng").
NAMED_AFTER_A_PERSON = {"hồ chí minh": "Thành phố Hồ Chí Minh", "hcm": "Thành phố Hồ Chí Minh"}


def place_name(name: str) -> str:
    """The date line's place from a province or its body's name: "Tỉnh Cao Bằng" → "Cao Bằng",
    "Sở … thành phố Đà Nẵng" → "Đà Nẵng", "TP. Hồ Chí Minh" → "Thành phố Hồ Chí Minh"."""
    m = _PLACE.search(name.strip())
    short = m.group(1).strip() if m else name.strip()
    full = NAMED_AFTER_A_PERSON.get(short.lower().replace(".", ""))
    return full or short


def default_place(session: Session, org: Organisation) -> str:
    """The province's name for the date line ("Cao Bằng" from "Tỉnh Cao Bằng" or "Sở … tỉnh Cao
    Bằng"; "Thành phố Hồ Chí Minh" in full); "Hà Nội" for national bodies and ministries."""
    ids = [int(i) for i in org.path.strip("/").split("/") if i]
    chain = orgs.by_ids(session, ids)
    for oid in reversed(ids):
        o = chain.get(oid)
        if o is not None and o.kind == "province":
            return place_name(o.name)
    return "Hà Nội"


def _num(value: int | float | None) -> str:
    from quet.server.web.i18n import format_number

    if value is None:
        return "—"
    return format_number(value, "vi", 1 if isinstance(value, float) else 0)


def _phase_label(v: View) -> str:
    """ "Đợt 1" (the phase the report answers to; frozen once submitted), or "" for a campaign
    of one phase."""
    if len(v.campaign.phases) <= 1:
        return ""
    phase = v.phase or reports.deadline_for(v.campaign, None, datetime.now(UTC).date())[0]
    return phase.label


def _body(v: View) -> list[str]:
    c, x = v.campaign, v.values
    label = _phase_label(v)
    phase_text = f" ({label})" if label else ""
    body = [
        f"Thực hiện {c.name}{phase_text}, {v.org.name} báo cáo kết quả triển khai trên địa bàn, "
        "phạm vi quản lý như sau:",
        f"Có {_num(x.get('received'))} cơ quan, tổ chức, doanh nghiệp nhận được thông tin về "
        f"chiến dịch; {_num(x.get('deployed'))} cơ quan, tổ chức triển khai chiến dịch. "
        f"Đã rà quét {_num(x.get('scanned'))} trên tổng số {_num(x.get('devices'))} máy tính, "
        f"thiết bị; phát hiện {_num(x.get('infected'))} thiết bị nhiễm mã độc, đã xử lý, bóc gỡ "
        f"{_num(x.get('cleaned'))} thiết bị.",
    ]
    if v.missing:
        body.append(
            f"Số liệu chưa bao gồm {len(v.missing)} đơn vị chưa báo cáo: {', '.join(v.missing)}."
        )
    if v.missing_below:
        body.append(
            f"Ở các cấp dưới còn {len(v.missing_below)} đơn vị chưa báo cáo: "
            f"{', '.join(v.missing_below)}."
        )
    body.append("Chi tiết tại Phụ lục kèm theo.")
    body.append(f"{v.org.name} trân trọng báo cáo./.")
    return body


def document(
    session: Session,
    v: View,
    *,
    now: datetime | None = None,
) -> CampaignReport:
    """The CampaignReport of a view: the letter (Nghị định 30/2020 layout) and the form."""
    now = now or datetime.now(UTC)
    row, org, campaign = v.report, v.org, v.campaign
    parent = orgs.parent(session, org)
    submitted = row.submitted_at if row is not None and v.status in COUNTED else None
    addressee = [a.strip() for a in (row.addressee if row else "").splitlines() if a.strip()]
    figures = [
        FigureRow(
            key=spec.key,
            number=str(i),
            label=spec.label,
            label_en=spec.label_en,
            value=v.values.get(spec.key),
            unit=spec.unit,
            note=v.notes.get(spec.key, ""),
            overridden=spec.key in v.overrides,
            measured=v.measured.get(spec.key),
        )
        for i, spec in enumerate(rf.ROWS, start=1)
    ]
    titles = ("Các đơn vị trực thuộc", "Các đơn vị cấp 2", "Các đơn vị cấp 3")
    annexes = [
        Annex(
            title=f"{titles[min(n, len(titles) - 1)]} của {org.name}",
            keys=list(rf.KEYS),
            headers=[s.short for s in rf.ROWS],
            rows=[
                AnnexRow(
                    code=line.org.code,
                    name=line.org.name,
                    status=line.status if line.status in COUNTED else _uncounted(line.status),
                    late=line.late,
                    submitted_at=line.submitted_at,
                    values={
                        k: (line.values or {}).get(k) if line.values else None for k in rf.KEYS
                    },
                )
                for line in level
            ],
        )
        for n, level in enumerate(v.levels)
    ]
    return CampaignReport(
        parent_body=parent.name.upper() if parent is not None else "",
        issuer=org.name.upper(),
        issuer_short=abbreviation(org.name),
        number=row.number if row else "",
        place=(row.place if row and row.place else default_place(session, org)),
        day=(submitted or now).astimezone(VN_TZ).date(),
        subject=f"V/v báo cáo kết quả triển khai {campaign.name}",
        recipients_to=addressee or ([parent.name] if parent is not None else ["Lãnh đạo đơn vị"]),
        body=_body(v),
        recipients=["- Như trên;", "- Lưu: VT."],
        signer_title=(row.signer_title if row and row.signer_title else "THỦ TRƯỞNG ĐƠN VỊ"),
        signer_name=row.signer_name if row else "",
        org_code=org.code,
        org_name=org.name,
        campaign_name=campaign.name,
        campaign_year=campaign.year,
        phase=_phase_label(v),
        deadline=v.deadline,
        status=v.status,
        submitted_at=submitted,
        evaluation=row.evaluation if row else "",
        proposals=row.proposals if row else "",
        figures=figures,
        annexes=annexes,
        missing=list(v.missing),
        late=list(v.late_children),
        generated_at=now,
    )


def _uncounted(status: str) -> str:
    # A draft or returned report is not counted either: the annex shows it as not reported.
    return "missing" if status in ("missing", "draft", "returned") else status


def build_campaign_report(
    session: Session, campaign: Campaign, org: Organisation, *, now: datetime | None = None
) -> CampaignReport:
    """`org`'s report for `campaign`, ready for the renderers (no permission check: callers
    check who may see it)."""
    return document(session, view(session, campaign, org, now=now), now=now)


# -- files ----------------------------------------------------------------------------------------
def render_bytes(
    doc: CampaignReport | MonthlyTechnicalReport, fmt: str, *, lang: str = "vi"
) -> bytes:
    """`doc` as DOCX, XLSX or PDF (quet.reports' renderers, loaded only when asked: WeasyPrint
    is slow to import)."""
    if fmt not in MEDIA_TYPES:
        raise InputError(f"unknown format {fmt!r}: use docx, xlsx or pdf")
    from quet.reports.render import render_bytes as render

    return render(doc, fmt, lang=lang)


def filename(doc: CampaignReport | MonthlyTechnicalReport, fmt: str) -> str:
    """An ASCII file name: "bao-cao-2026-CB-A.docx", "bao-cao-ky-thuat-2026-10.pdf"."""
    if isinstance(doc, CampaignReport):
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", doc.org_code).strip("-") or "org"
        return f"bao-cao-{doc.campaign_year}-{safe}.{fmt}"
    return f"bao-cao-ky-thuat-{doc.month:%Y-%m}.{fmt}"
