"""XLSX renderers (openpyxl): the form's figures on the sheet "Báo cáo", then one sheet per annex
level; the monthly technical report one sheet per table. Numbers are stored as numbers (with a
number format), a value that is not available as an empty cell, never as 0."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import IO, Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from quet.reports.dates import short_date, vn_date_line, vn_month
from quet.reports.document import CampaignReport, MonthlyTechnicalReport, Ranked
from quet.reports.labels import (
    annex_note,
    figure_note,
    monthly_summary,
    ranked_label,
    status_label,
    text,
)

Target = str | os.PathLike[str] | IO[bytes]

FONT = "Times New Roman"
_THIN = Side(style="thin", color="000000")
BOX = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
HEAD_FILL = PatternFill("solid", fgColor="D9E1F2")
HEAD_FONT = Font(name=FONT, size=12, bold=True)
CELL_FONT = Font(name=FONT, size=12)
TITLE_FONT = Font(name=FONT, size=14, bold=True)
NOTE_FONT = Font(name=FONT, size=11, italic=True)
COUNT = "#,##0"
PERCENT = '0.0" %"'  # values are 0–100 as on the form, not Excel fractions
DATETIME = "dd/mm/yyyy hh:mm"
DATE = "dd/mm/yyyy"
_BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")


def sheet_title(name: str, taken: Sequence[str]) -> str:
    """An Excel sheet name: no []:*?/\\, at most 31 characters, unique (case-insensitive)."""
    base = _BAD_SHEET_CHARS.sub(" ", name).strip().strip("'") or "Sheet"
    base = re.sub(r"\s+", " ", base)
    if len(base) > 31:  # cut at a word boundary when that keeps most of the name
        cut = base[:32].rsplit(" ", 1)[0][:31]
        base = cut if len(cut) >= 20 else base[:31]
        base = base.rstrip()
    lower = {t.lower() for t in taken}
    candidate, n = base, 2
    while candidate.lower() in lower:
        suffix = f" ({n})"
        candidate = base[: 31 - len(suffix)].rstrip() + suffix
        n += 1
    return candidate


def _new_sheet(book: Workbook, name: str) -> Worksheet:
    sheet = book.create_sheet(sheet_title(name, book.sheetnames))
    sheet.sheet_view.zoomScale = 100
    return sheet


def _table(
    sheet: Worksheet,
    first_row: int,
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    widths: Sequence[float],
    formats: Sequence[str | None] | None = None,
) -> None:
    """A bordered table with a styled header row that stays frozen on screen."""
    for col, label in enumerate(headers, start=1):
        cell = sheet.cell(row=first_row, column=col, value=label)
        cell.font, cell.fill, cell.border = HEAD_FONT, HEAD_FILL, BOX
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    for r, values in enumerate(rows, start=first_row + 1):
        for col, value in enumerate(values, start=1):
            cell = sheet.cell(row=r, column=col, value=value)
            cell.font, cell.border = CELL_FONT, BOX
            fmt = formats[col - 1] if formats else None
            if fmt and value is not None and not isinstance(value, str | bool):
                cell.number_format = fmt
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            cell.alignment = Alignment(
                horizontal="right" if numeric else "left", vertical="center", wrap_text=True
            )
    for col, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(col)].width = width
    sheet.freeze_panes = sheet.cell(row=first_row + 1, column=1)
    if rows:
        last = get_column_letter(len(headers))
        sheet.auto_filter.ref = f"A{first_row}:{last}{first_row + len(rows)}"


def _title(sheet: Worksheet, lines: Sequence[str]) -> int:
    """Title lines above a table; returns the next free row."""
    for i, line in enumerate(lines, start=1):
        cell = sheet.cell(row=i, column=1, value=line)
        cell.font = TITLE_FONT if i == 1 else Font(name=FONT, size=12, italic=True)
    return len(lines) + 2


def _number(value: float | None) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    return value


def render_campaign_xlsx(doc: CampaignReport, target: Target, *, lang: str = "vi") -> None:
    """The figures ("Báo cáo") and one sheet per annex level, numbers as numbers."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = sheet_title(text("report_sheet", lang), [])
    campaign = doc.campaign_title + (f", {doc.phase}" if doc.phase else "")
    start = _title(
        sheet,
        [
            f"{text('form', lang)} — {doc.org_name}",
            f"{text('campaign', lang)}: {campaign}; {text('deadline', lang).lower()}: "
            f"{short_date(doc.deadline, lang)}; {text('status', lang).lower()}: "
            f"{status_label(doc.status, lang).lower()}",
            vn_date_line(doc.place, doc.day, lang),
        ],
    )
    headers = [
        text("stt", lang),
        text("content", lang),
        text("quantity", lang),
        text("note", lang),
        text("measured", lang),
        text("overridden", lang),
        "key",
    ]
    rows = []
    formats: list[str | None] = [None, None, None, None, None, None, None]
    for fig in doc.figures:
        label = fig.label_en if lang == "en" and fig.label_en else fig.label
        rows.append(
            [
                fig.number,
                label,
                _number(fig.value),
                figure_note(fig, lang),
                _number(fig.measured if fig.overridden else fig.value),
                text("yes" if fig.overridden else "no", lang),
                fig.key,
            ]
        )
    _table(sheet, start, headers, rows, [7, 62, 16, 42, 16, 12, 12], formats)
    # the number format depends on the row (a count or a percentage)
    for offset, fig in enumerate(doc.figures, start=1):
        fmt = PERCENT if fig.unit == "%" else COUNT
        for col in (3, 5):
            sheet.cell(row=start + offset, column=col).number_format = fmt
    row = start + len(rows) + 2
    for key, names in (("missing_units", doc.missing), ("late_units", doc.late)):
        if names:
            sheet.cell(
                row=row, column=2, value=f"{text(key, lang)}: {'; '.join(names)}"
            ).font = NOTE_FONT
            row += 1

    for annex in doc.annexes:
        annex_sheet = _new_sheet(book, annex.title)
        first = _title(annex_sheet, [annex.title, f"{text('unit_name', lang)}: {doc.org_name}"])
        heads = [
            text("stt", lang),
            text("code", lang),
            text("unit", lang),
            text("status", lang),
            text("late", lang),
            text("submitted_at", lang),
            *annex.headers,
            text("note", lang),
        ]
        body = []
        for i, item in enumerate(annex.rows, start=1):
            missing = item.status == "missing"
            submitted = item.submitted_at.replace(tzinfo=None) if item.submitted_at else None
            body.append(
                [
                    i,
                    item.code,
                    item.name,
                    status_label(item.status, lang),
                    text("yes" if item.late else "no", lang),
                    submitted,
                    *[None if missing else _number(item.values.get(k)) for k in annex.keys],
                    annex_note(item, lang),
                ]
            )
        fmts: list[str | None] = [
            "0",
            None,
            None,
            None,
            None,
            DATETIME,
            *[PERCENT if k == "coverage" else COUNT for k in annex.keys],
            None,
        ]
        widths = [6, 12, 32, 16, 10, 17, *[13] * len(annex.keys), 24]
        _table(annex_sheet, first, heads, body, widths, fmts)
    book.save(target)


def _ranked_sheet(book: Workbook, name: str, label: str, rows: Sequence[Ranked], lang: str) -> None:
    sheet = _new_sheet(book, name)
    first = _title(sheet, [name])
    heads = [
        text("stt", lang),
        label,
        text("ips", lang),
        text("previous_month", lang),
        f"{text('change', lang)} (%)",
    ]
    body = []
    for i, row in enumerate(rows, start=1):
        change = MonthlyTechnicalReport.change(row.value, row.previous)
        body.append(
            [
                i,
                ranked_label(row.label, lang),
                row.value,
                row.previous,
                None if change is None else round(change, 2),
            ]
        )
    _table(sheet, first, heads, body, [6, 48, 14, 14, 12], ["0", None, COUNT, COUNT, "+0.0;-0.0;0"])


def render_monthly_xlsx(doc: MonthlyTechnicalReport, target: Target, *, lang: str = "vi") -> None:
    """The monthly technical report: an overview sheet, the daily series and one sheet per table."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = sheet_title(text("overview", lang), [])
    title = f"{text('tech_title', lang)} — {text('tech_subject', lang)} {vn_month(doc.month, lang)}"
    first = _title(sheet, [title, f"{doc.issuer} — {vn_date_line(doc.place, doc.day, lang)}"])
    rows: list[list[Any]] = [
        [text("this_month", lang), doc.ips_month, None],
        [
            text("previous_month", lang),
            doc.ips_previous_month,
            _round(MonthlyTechnicalReport.change(doc.ips_month, doc.ips_previous_month)),
        ],
        [
            text("last_year", lang),
            doc.ips_same_month_last_year,
            _round(MonthlyTechnicalReport.change(doc.ips_month, doc.ips_same_month_last_year)),
        ],
    ]
    _table(
        sheet,
        first,
        [text("indicator", lang), text("unique_ips", lang), f"{text('change', lang)} (%)"],
        rows,
        [28, 30, 14],
        [None, COUNT, "+0.0;-0.0;0"],
    )
    note_row = first + len(rows) + 2
    # The trend sentence: says "chưa có dữ liệu" where a month has no statistics (empty cells).
    sheet.cell(row=note_row, column=1, value=monthly_summary(doc, lang)).font = NOTE_FONT
    note_row += 2
    for line in doc.notes:
        sheet.cell(row=note_row, column=1, value=line).font = NOTE_FONT
        note_row += 1

    daily = _new_sheet(book, text("daily", lang))
    first = _title(daily, [text("daily", lang)])
    _table(
        daily,
        first,
        [text("day", lang), text("ips", lang)],
        [[p.day, p.ips] for p in doc.daily],
        [14, 14],
        [DATE, COUNT],
    )

    for key, label, rows_ in (
        ("tech_family", "family", doc.by_family),
        ("tech_province", "province", doc.by_province),
        ("tech_isp", "isp", doc.by_isp),
        ("tech_state", "agency", doc.state_agency_ips),
    ):
        _ranked_sheet(book, _strip_number(text(key, lang)), text(label, lang), rows_, lang)

    part = _new_sheet(book, text("participation_sheet", lang))
    first = _title(part, [_strip_number(text("tech_participation", lang))])
    body = [
        [
            i,
            p.code,
            p.name,
            text("ministry_kind" if p.kind == "ministry" else "province_kind", lang),
            p.received,
            p.deployed,
            text("yes" if p.reported else "no", lang),
            p.last_shared.replace(tzinfo=None) if p.last_shared else None,
        ]
        for i, p in enumerate(doc.participation, start=1)
    ]
    _table(
        part,
        first,
        [
            text("stt", lang),
            text("code", lang),
            text("unit", lang),
            text("kind", lang),
            text("received", lang),
            text("deployed", lang),
            text("reported", lang),
            text("last_shared", lang),
        ],
        body,
        [6, 10, 32, 12, 14, 14, 12, 18],
        ["0", None, None, None, COUNT, COUNT, None, DATETIME],
    )
    book.save(target)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _strip_number(title: str) -> str:
    """ "2. Theo họ mã độc" -> "Theo họ mã độc" (a sheet name needs no section number)."""
    return re.sub(r"^\d+\.\s*", "", title)
