"""DOCX renderers: the campaign return (letter + the seeds' appendix form + annex tables) and the
centre's monthly technical report, laid out by Nghị định 30/2020/NĐ-CP, Phụ lục I."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from datetime import date
from typing import IO

import docx
from docx.document import Document as DocxDocument
from docx.enum.section import WD_SECTION
from docx.shared import Mm

from quet.reports import charts
from quet.reports.dates import (
    DASH,
    short_date,
    short_datetime,
    vn_change,
    vn_date_line,
    vn_month,
    vn_number,
    vn_value,
)
from quet.reports.document import (
    Annex,
    CampaignReport,
    FigureRow,
    MonthlyTechnicalReport,
    Ranked,
)
from quet.reports.docxkit import (
    BODY_PT,
    CENTER,
    FIRST_LINE_INDENT_CM,
    JUSTIFY,
    LEFT,
    RIGHT,
    TEXT_W_LANDSCAPE_MM,
    TEXT_W_MM,
    add_run,
    cell_text,
    fixed_table,
    header_row,
    page_break,
    page_setup,
    para,
    rule_paragraph,
    setup_document,
    text_width_mm,
    underline_to_text,
)
from quet.reports.labels import (
    annex_note,
    attached_line,
    figure_note,
    monthly_summary,
    number_line,
    ranked_label,
    status_label,
    text,
)

Target = str | os.PathLike[str] | IO[bytes]

HEAD_LEFT_MM = 62.0  # issuing body; the right column holds the national title
HEAD_RIGHT_MM = TEXT_W_MM - HEAD_LEFT_MM
NATION_PT = 12  # "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM": 12–13, bold
MOTTO_PT = 13  # "Độc lập - Tự do - Hạnh phúc": 13–14, bold, ruled
ORG_PT = 12.5  # parent body and issuer: 12–13
TABLE_PT = 13
ANNEX_PT = 12
WIDE_ANNEX_COLUMNS = 7  # more columns than this: the annex goes on landscape pages


def _header_block(
    doc: DocxDocument,
    parent_body: str,
    issuer: str,
    number_line: str,
    subject: str,
    place: str,
    day: date,
    lang: str,
) -> None:
    """The borderless two-column header: issuing body | national title; Số + V/v | date."""
    table = fixed_table(doc, 2, (HEAD_LEFT_MM, HEAD_RIGHT_MM), borders=False)
    left, right = table.rows[0].cells
    if parent_body:
        para(left, parent_body.upper(), ORG_PT, align=CENTER, first=True)
    issuer_up = issuer.upper()
    para(left, issuer_up, ORG_PT, bold=True, align=CENTER, first=True)
    # the rule under the issuer: 1/3 to 1/2 of the issuer's line
    longest = max((text_width_mm(line, ORG_PT, True) for line in issuer_up.split("\n")), default=0)
    usable = HEAD_LEFT_MM - 4
    rule_paragraph(left, min(max(longest, usable) * 0.4, usable * 0.5), HEAD_LEFT_MM)

    para(right, text("nation", lang), NATION_PT, bold=True, align=CENTER, first=True)
    motto = text("motto", lang)
    p = para(right, motto, MOTTO_PT, bold=True, align=CENTER)
    underline_to_text(p, motto, MOTTO_PT, True, HEAD_RIGHT_MM)

    number_cell, date_cell = table.rows[1].cells
    para(number_cell, number_line, 13, align=CENTER, first=True, before=6)
    if subject:
        para(number_cell, subject, 12, align=CENTER, before=2)
    para(
        date_cell,
        vn_date_line(place, day, lang),
        14,
        italic=True,
        align=CENTER,
        first=True,
        before=6,
    )


def _recipients_to(doc: DocxDocument, lines: Sequence[str], lang: str) -> None:
    label = text("to", lang)
    lines = [line.strip() for line in lines if line.strip()]
    if not lines:
        return
    if len(lines) == 1:
        para(doc, f"{label}: {lines[0]}", 14, align=CENTER, before=12, after=6)
        return
    para(doc, f"{label}:", 14, align=LEFT, left_indent_cm=2.5, before=12)
    for line in lines:
        para(doc, line, 14, align=LEFT, left_indent_cm=5.0)
    doc.paragraphs[-1].paragraph_format.space_after = Mm(2)


def _body(doc: DocxDocument, paragraphs: Sequence[str]) -> None:
    for text_ in paragraphs:
        for chunk in text_.split("\n"):
            if chunk.strip():
                para(
                    doc,
                    chunk.strip(),
                    BODY_PT,
                    align=JUSTIFY,
                    first_indent_cm=FIRST_LINE_INDENT_CM,
                    before=6,
                )


def _signature(
    doc: DocxDocument, recipients: Sequence[str], title: str, name: str, lang: str
) -> None:
    """Nơi nhận (bold italic 12, lines in 11) on the left; the signer on the right."""
    para(doc, "", 6)
    table = fixed_table(doc, 1, (TEXT_W_MM / 2, TEXT_W_MM / 2), borders=False)
    left, right = table.rows[0].cells
    para(left, f"{text('recipients', lang)}:", 12, bold=True, italic=True, first=True, before=6)
    for line in recipients or ["- Lưu: VT."]:
        para(left, line, 11)
    if title.strip():
        para(right, title.strip().upper(), 14, bold=True, align=CENTER, first=True, before=6)
        for _ in range(4):  # room for the signature and seal
            para(right, "", 14)
        para(right, name.strip(), 14, bold=True, align=CENTER)


def _figures_table(doc: DocxDocument, figures: Sequence[FigureRow], lang: str) -> None:
    widths = (13.0, 87.0, 28.0, TEXT_W_MM - 128.0)
    table = fixed_table(doc, 1 + len(figures), widths, borders=True)
    header_row(
        table.rows[0].cells,
        [text(k, lang) for k in ("stt", "content", "quantity", "note")],
        TABLE_PT,
    )
    for row, fig in zip(table.rows[1:], figures, strict=True):
        cells = row.cells
        cell_text(cells[0], fig.number, TABLE_PT, CENTER)
        cell_text(
            cells[1],
            fig.label_en if lang == "en" and fig.label_en else fig.label,
            TABLE_PT,
            JUSTIFY,
        )
        cell_text(cells[2], vn_value(fig.value, fig.unit, lang), TABLE_PT, CENTER)
        cell_text(cells[3], figure_note(fig, lang), 12, LEFT, italic=fig.overridden)


def annex_columns(annex: Annex) -> int:
    return 4 + len(annex.keys)  # STT, unit, status, figures…, note


def _annex_table(doc: DocxDocument, annex: Annex, width_mm: float, lang: str) -> None:
    para(doc, annex.title, 13, bold=True, align=CENTER, before=6, after=6, keep_next=True)
    n = len(annex.keys)
    fixed = 10.0 + 48.0 + 24.0 + 30.0
    figure_w = max((width_mm - fixed) / max(n, 1), 16.0)
    widths = (10.0, 48.0, 24.0, *([figure_w] * n), 30.0)
    scale = width_mm / sum(widths)
    widths = tuple(w * scale for w in widths)
    table = fixed_table(doc, 1 + len(annex.rows), widths, borders=True)
    labels = [
        text("stt", lang),
        text("unit", lang),
        text("status", lang),
        *annex.headers,
        text("note", lang),
    ]
    header_row(table.rows[0].cells, labels, ANNEX_PT)
    units = _annex_units(annex)
    for i, (row, item) in enumerate(zip(table.rows[1:], annex.rows, strict=True), start=1):
        cells = row.cells
        cell_text(cells[0], str(i), ANNEX_PT, CENTER)
        cell_text(cells[1], item.name, ANNEX_PT, LEFT)
        cell_text(
            cells[2],
            status_label(item.status, lang),
            ANNEX_PT,
            CENTER,
            italic=item.status == "missing",
        )
        for j, key in enumerate(annex.keys):
            value = item.values.get(key) if item.status != "missing" else None
            cell_text(cells[3 + j], vn_value(value, units.get(key, ""), lang), ANNEX_PT, RIGHT)
        cell_text(cells[-1], annex_note(item, lang), ANNEX_PT, LEFT, italic=True)


def _annex_units(annex: Annex) -> dict[str, str]:
    # coverage is the one percentage among the form's figures
    return {key: "%" for key in annex.keys if key == "coverage"}


def render_campaign_docx(doc: CampaignReport, target: Target, *, lang: str = "vi") -> None:
    """Write the campaign return as a .docx to a path or a binary file object."""
    out = docx.Document()
    setup_document(out)
    numbered = number_line(doc.number, "BC", doc.issuer_short, lang)
    _header_block(out, doc.parent_body, doc.issuer, numbered, doc.subject, doc.place, doc.day, lang)
    _recipients_to(out, doc.recipients_to, lang)
    _body(out, doc.body)
    _signature(out, doc.recipients, doc.signer_title, doc.signer_name, lang)

    page_break(out)
    _appendix_form(out, doc, lang)

    if doc.annexes:
        wide = any(annex_columns(a) > WIDE_ANNEX_COLUMNS for a in doc.annexes)
        section = out.add_section(WD_SECTION.NEW_PAGE)
        section.different_first_page_header_footer = False
        page_setup(section, landscape=wide)
        width = TEXT_W_LANDSCAPE_MM if wide else TEXT_W_MM
        for annex in doc.annexes:
            _annex_table(out, annex, width, lang)
    out.save(target)  # type: ignore[arg-type]


def _appendix_form(out: DocxDocument, doc: CampaignReport, lang: str) -> None:
    para(out, text("appendix", lang), 14, bold=True, align=CENTER)
    para(out, text("form", lang), 14, bold=True, align=CENTER)
    attached = attached_line(doc, lang)
    para(out, attached, 13, italic=True, align=CENTER, after=12)

    para(out, text("part1", lang), BODY_PT, bold=True, before=6)
    p = para(
        out,
        f"- {text('unit_name', lang)}: ",
        BODY_PT,
        first_indent_cm=FIRST_LINE_INDENT_CM,
        before=3,
    )
    add_run(p, doc.org_name, BODY_PT, bold=True)
    campaign = doc.campaign_title
    if doc.phase:
        campaign += f", {doc.phase}"
    para(
        out,
        f"- {text('campaign', lang)}: {campaign}; {text('deadline', lang).lower()}: "
        f"{short_date(doc.deadline, lang)}; {text('status', lang).lower()}: "
        f"{status_label(doc.status, lang).lower()}"
        + (f" ({short_datetime(doc.submitted_at, lang)})" if doc.submitted_at else "")
        + ".",
        BODY_PT,
        align=JUSTIFY,
        first_indent_cm=FIRST_LINE_INDENT_CM,
        before=3,
    )
    para(
        out,
        f"- {text('evaluation', lang)}:",
        BODY_PT,
        first_indent_cm=FIRST_LINE_INDENT_CM,
        before=3,
    )
    _free_text(out, doc.evaluation)
    para(
        out,
        f"- {text('proposals', lang)}:",
        BODY_PT,
        first_indent_cm=FIRST_LINE_INDENT_CM,
        before=3,
    )
    _free_text(out, doc.proposals)

    para(out, text("part2", lang), BODY_PT, bold=True, before=9, after=6, keep_next=True)
    _figures_table(out, doc.figures, lang)
    for key, names in (("missing_units", doc.missing), ("late_units", doc.late)):
        if names:
            para(
                out,
                f"{text(key, lang)} ({vn_number(len(names), lang=lang)}): {'; '.join(names)}.",
                13,
                italic=True,
                align=JUSTIFY,
                before=6,
            )


def _free_text(out: DocxDocument, value: str) -> None:
    lines = [line.strip() for line in value.splitlines() if line.strip()]
    if not lines:  # the blank form keeps its dotted lines for a hand-written answer
        lines = ["." * 90, "." * 90]
    for line in lines:
        para(out, line, BODY_PT, align=JUSTIFY, first_indent_cm=FIRST_LINE_INDENT_CM, before=3)


# ------------------------------------------------------------------ the monthly technical report


def _ranked_table(out: DocxDocument, rows: Sequence[Ranked], label: str, lang: str) -> None:
    if not rows:
        para(
            out,
            text("none", lang) + ".",
            BODY_PT,
            italic=True,
            first_indent_cm=FIRST_LINE_INDENT_CM,
        )
        return
    with_previous = any(r.previous is not None for r in rows)
    widths: tuple[float, ...] = (
        (13.0, 82.0, 25.0, 25.0, 20.0) if with_previous else (13.0, 112.0, 40.0)
    )
    table = fixed_table(out, 1 + len(rows), widths, borders=True)
    labels = [text("stt", lang), label, text("ips", lang)]
    if with_previous:
        labels += [text("previous_month", lang), text("change", lang)]
    header_row(table.rows[0].cells, labels, TABLE_PT)
    for i, (row, item) in enumerate(zip(table.rows[1:], rows, strict=True), start=1):
        cells = row.cells
        cell_text(cells[0], str(i), TABLE_PT, CENTER)
        cell_text(cells[1], ranked_label(item.label, lang), TABLE_PT, LEFT)
        cell_text(cells[2], vn_number(item.value, lang=lang), TABLE_PT, RIGHT)
        if with_previous:
            cell_text(cells[3], vn_number(item.previous, lang=lang), TABLE_PT, RIGHT)
            change = MonthlyTechnicalReport.change(item.value, item.previous)
            cell_text(cells[4], vn_change(change, lang), TABLE_PT, RIGHT)


def _trend_table(out: DocxDocument, doc: MonthlyTechnicalReport, lang: str) -> None:
    table = fixed_table(out, 2, (57.0, 36.0, 36.0, 36.0), borders=True)
    header_row(
        table.rows[0].cells,
        [
            text("indicator", lang),
            text("this_month", lang),
            text("previous_month", lang),
            text("last_year", lang),
        ],
        TABLE_PT,
    )
    cells = table.rows[1].cells
    cell_text(cells[0], text("unique_ips", lang), TABLE_PT, LEFT)
    cell_text(cells[1], vn_number(doc.ips_month, lang=lang), TABLE_PT, RIGHT, bold=True)
    for cell, before in (
        (cells[2], doc.ips_previous_month),
        (cells[3], doc.ips_same_month_last_year),
    ):
        change = MonthlyTechnicalReport.change(doc.ips_month, before)
        shown = vn_number(before, lang=lang)
        if change is not None:
            shown += f"\n({vn_change(change, lang)})"
        cell_text(cell, shown, TABLE_PT, RIGHT)


def _participation_table(out: DocxDocument, doc: MonthlyTechnicalReport, lang: str) -> None:
    rows = doc.participation
    if not rows:
        para(
            out,
            text("none", lang) + ".",
            BODY_PT,
            italic=True,
            first_indent_cm=FIRST_LINE_INDENT_CM,
        )
        return
    widths = (11.0, 50.0, 20.0, 20.0, 22.0, 17.0, 25.0)
    table = fixed_table(out, 1 + len(rows), widths, borders=True)
    header_row(
        table.rows[0].cells,
        [
            text(k, lang)
            for k in ("stt", "unit", "kind", "received", "deployed", "reported", "last_shared")
        ],
        ANNEX_PT,
    )
    for i, (row, item) in enumerate(zip(table.rows[1:], rows, strict=True), start=1):
        cells = row.cells
        kind = text("ministry_kind" if item.kind == "ministry" else "province_kind", lang)
        cell_text(cells[0], str(i), ANNEX_PT, CENTER)
        cell_text(cells[1], item.name, ANNEX_PT, LEFT)
        cell_text(cells[2], kind, ANNEX_PT, CENTER)
        cell_text(cells[3], vn_number(item.received, lang=lang), ANNEX_PT, RIGHT)
        cell_text(cells[4], vn_number(item.deployed, lang=lang), ANNEX_PT, RIGHT)
        cell_text(cells[5], text("yes" if item.reported else "no", lang), ANNEX_PT, CENTER)
        cell_text(
            cells[6],
            short_date(item.last_shared, lang) if item.last_shared else DASH,
            ANNEX_PT,
            CENTER,
        )


def render_monthly_docx(doc: MonthlyTechnicalReport, target: Target, *, lang: str = "vi") -> None:
    """Write the centre's monthly technical report as a .docx."""
    out = docx.Document()
    setup_document(out)
    _header_block(
        out,
        doc.parent_body,
        doc.issuer,
        number_line(doc.number, "BC", doc.issuer_short, lang),
        "",
        doc.place,
        doc.day,
        lang,
    )
    para(out, text("tech_title", lang), 14, bold=True, align=CENTER, before=18)
    p = para(
        out,
        f"{text('tech_subject', lang)} {vn_month(doc.month, lang)}",
        14,
        bold=True,
        align=CENTER,
    )
    underline_to_text(p, p.text, 14, True, TEXT_W_MM + 2 * 1.9)
    para(out, "", 6)

    para(out, text("tech_trend", lang), BODY_PT, bold=True, before=6, keep_next=True)
    para(
        out,
        monthly_summary(doc, lang),
        BODY_PT,
        align=JUSTIFY,
        first_indent_cm=FIRST_LINE_INDENT_CM,
        before=3,
        after=6,
    )
    _trend_table(out, doc, lang)
    if doc.daily:
        png = charts.line_png(doc.daily, title=text("daily", lang), lang=lang)
        out.add_paragraph().alignment = CENTER
        out.paragraphs[-1].add_run().add_picture(io.BytesIO(png), width=Mm(TEXT_W_MM - 5))
    sections = (
        ("tech_family", doc.by_family, "family"),
        ("tech_province", doc.by_province, "province"),
        ("tech_isp", doc.by_isp, "isp"),
        ("tech_state", doc.state_agency_ips, "agency"),
    )
    for title, rows, label in sections:
        para(out, text(title, lang), BODY_PT, bold=True, before=12, after=6, keep_next=True)
        _ranked_table(out, rows, text(label, lang), lang)
    para(
        out,
        text("tech_participation", lang),
        BODY_PT,
        bold=True,
        before=12,
        after=6,
        keep_next=True,
    )
    _participation_table(out, doc, lang)
    if doc.notes:
        para(out, text("tech_notes", lang), BODY_PT, bold=True, before=12, keep_next=True)
        _body(out, doc.notes)
    _signature(out, doc.recipients, doc.signer_title, doc.signer_name, lang)
    out.save(target)  # type: ignore[arg-type]
