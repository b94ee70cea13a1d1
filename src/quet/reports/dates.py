"""Vietnamese dates and numbers as official documents print them (Nghị định 30/2020/NĐ-CP, Phụ lục I):
"Hà Nội, ngày 05 tháng 01 năm 2026", 1.234.567 and 12,5 %. Pure functions, no locale module."""

from __future__ import annotations

import math
from datetime import date, datetime

DASH = "—"  # printed for a value that is not available (never 0)

MONTHS_EN = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def decree_day(day: int) -> str:
    """A day of the month with a leading zero below 10 (01–09), as the decree requires."""
    if not 1 <= day <= 31:
        raise ValueError(f"day of month out of range: {day}")
    return f"{day:02d}"


def decree_month(month: int) -> str:
    """Months 1 and 2 take a leading zero ("01", "02"); 3–12 do not: a 1 or 2 written in front
    of "01"/"02" cannot turn them into 11/12, and there is no month 13–19 to forge."""
    if not 1 <= month <= 12:
        raise ValueError(f"month out of range: {month}")
    return f"{month:02d}" if month < 3 else str(month)


def vn_date(day: date) -> str:
    """ "ngày 05 tháng 01 năm 2026", "ngày 15 tháng 3 năm 2026"."""
    return f"ngày {decree_day(day.day)} tháng {decree_month(day.month)} năm {day.year}"


def vn_date_line(place: str, day: date, lang: str = "vi") -> str:
    """The place-and-date line: "Hà Nội, ngày 05 tháng 01 năm 2026" (English: "Hà Nội, 5 January
    2026"). Without a place the line starts with "Ngày"."""
    place = place.strip()
    if lang == "en":
        text = f"{day.day} {MONTHS_EN[day.month - 1]} {day.year}"
        return f"{place}, {text}" if place else text
    text = vn_date(day)
    return f"{place}, {text}" if place else text[0].upper() + text[1:]


def vn_month(month: date, lang: str = "vi") -> str:
    """A month as a title names it: "tháng 01 năm 2026" / "January 2026"."""
    if lang == "en":
        return f"{MONTHS_EN[month.month - 1]} {month.year}"
    return f"tháng {decree_month(month.month)} năm {month.year}"


def short_date(day: date | datetime | None, lang: str = "vi") -> str:
    """05/01/2026 (vi) or 2026-01-05 (en); "—" for None."""
    if day is None:
        return DASH
    if lang == "en":
        return f"{day.year:04d}-{day.month:02d}-{day.day:02d}"
    return f"{day.day:02d}/{day.month:02d}/{day.year:04d}"


def short_datetime(moment: datetime | None, lang: str = "vi") -> str:
    """05/01/2026 14:03 in the value's own time zone; "—" for None."""
    if moment is None:
        return DASH
    return f"{short_date(moment, lang)} {moment.hour:02d}:{moment.minute:02d}"


def doc_number(number: str) -> str:
    """A document number with the decree's leading zero below 10: "5/BC-STTTT" -> "05/BC-STTTT"."""
    head, sep, tail = number.strip().partition("/")
    if head.isdigit() and len(head) == 1:
        head = "0" + head
    return head + sep + tail


def _group(digits: str, sep: str) -> str:
    head = len(digits) % 3 or 3
    parts = [digits[:head]] + [digits[i : i + 3] for i in range(head, len(digits), 3)]
    return sep.join(parts)


def vn_number(value: float | None, decimals: int | None = None, lang: str = "vi") -> str:
    """1.234.567 and 12,5 (vi) or 1,234,567 and 12.5 (en); "—" for None, NaN or infinity.

    `decimals=None`: whole numbers print without decimals, others with one."""
    if value is None or isinstance(value, bool):
        return DASH
    number = float(value)
    if not math.isfinite(number):
        return DASH
    if decimals is None:
        decimals = 0 if isinstance(value, int) or number.is_integer() else 1
    thousands, point = (",", ".") if lang == "en" else (".", ",")
    if isinstance(value, int) and decimals == 0:
        text = str(abs(value))
    else:
        text = f"{abs(number):.{decimals}f}"
    whole, _, frac = text.partition(".")
    out = _group(whole, thousands) + (point + frac if frac else "")
    negative = number < 0 and any(ch.isdigit() and ch != "0" for ch in out)
    return ("-" if negative else "") + out


def vn_percent(value: float | None, decimals: int = 1, lang: str = "vi") -> str:
    """A percentage given as 0–100: "12,5 %"; whole values drop the decimals ("100 %")."""
    if value is None or isinstance(value, bool) or not math.isfinite(float(value)):
        return DASH
    if decimals > 0 and round(float(value), decimals) == round(float(value)):
        decimals = 0
    return f"{vn_number(float(value), decimals, lang)} %"


def vn_value(value: float | None, unit: str = "", lang: str = "vi") -> str:
    """A figure as the form prints it: a count, or a percentage when `unit` is "%"."""
    if unit == "%":
        return vn_percent(value, lang=lang)
    text = vn_number(value, lang=lang)
    return f"{text} {unit}" if unit and text != DASH else text


def vn_change(percent: float | None, lang: str = "vi") -> str:
    """A change in percent with its sign: "+12,5 %", "-3 %", "—"."""
    if percent is None or not math.isfinite(percent):
        return DASH
    text = vn_percent(percent, lang=lang)
    return text if text.startswith("-") or text.startswith("0 ") else "+" + text
