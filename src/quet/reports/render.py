"""One entry point for callers that want bytes (API downloads, the CLI): a document and a format."""

from __future__ import annotations

import io

from quet.reports.document import CampaignReport, MonthlyTechnicalReport

FORMATS = ("docx", "xlsx", "pdf")
MEDIA_TYPES = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}


def render_bytes(
    doc: CampaignReport | MonthlyTechnicalReport, fmt: str, *, lang: str = "vi"
) -> bytes:
    """The document rendered as `fmt` ("docx", "xlsx" or "pdf"); ValueError for another format."""
    fmt = fmt.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r}: use one of {', '.join(FORMATS)}")
    buffer = io.BytesIO()
    if fmt == "docx":
        from quet.reports import docx

        if isinstance(doc, MonthlyTechnicalReport):
            docx.render_monthly_docx(doc, buffer, lang=lang)
        else:
            docx.render_campaign_docx(doc, buffer, lang=lang)
    elif fmt == "xlsx":
        from quet.reports import xlsx

        if isinstance(doc, MonthlyTechnicalReport):
            xlsx.render_monthly_xlsx(doc, buffer, lang=lang)
        else:
            xlsx.render_campaign_xlsx(doc, buffer, lang=lang)
    else:
        from quet.reports import pdf

        if isinstance(doc, MonthlyTechnicalReport):
            pdf.render_monthly_pdf(doc, buffer, lang=lang)
        else:
            pdf.render_campaign_pdf(doc, buffer, lang=lang)
    return buffer.getvalue()
