"""HTML and PDF renderers: one Jinja2 template per document, shown as a web page (a fragment or a
whole page) and printed to PDF by WeasyPrint with the same look as the DOCX. No network access at
render time: fonts come from fontconfig and the URL fetcher refuses everything but data: URLs."""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

import jinja2
from markupsafe import Markup

from quet.reports import charts
from quet.reports.dates import (
    short_date,
    short_datetime,
    vn_change,
    vn_date_line,
    vn_month,
    vn_number,
    vn_value,
)
from quet.reports.document import CampaignReport, MonthlyTechnicalReport
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

TEMPLATES = Path(__file__).parent / "templates"
WIDE_ANNEX_COLUMNS = 7  # as in the DOCX: wider annexes are printed on landscape pages

Target = str | os.PathLike[str] | IO[bytes]


# Times New Roman or a metric-compatible face, first that has the Vietnamese letters. Liberation Serif
# 1.x (Debian's fonts-liberation) lacks them; 2.x (fonts-liberation2) and Tinos have them.
TIMES_LIKE = ("Times New Roman", "Liberation Serif", "Tinos")
# Without one, a single face that has every letter beats per-glyph fallback (mixed shapes in a word).
FALLBACK = ("DejaVu Serif Condensed", "DejaVu Serif")
VIETNAMESE_PROBE = "1ea1 1ec7 1b0 1a1 1edd"  # ạ ệ ư ơ ờ


def _has_vietnamese(family: str) -> bool:
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return family in TIMES_LIKE  # cannot ask fontconfig: trust the declared face
    try:
        found = subprocess.run(
            [fc_list, f":family={family}:charset={VIETNAMESE_PROBE}", "family"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return bool(found.strip())


@lru_cache(maxsize=1)
def pdf_font_family() -> str:
    """The CSS font-family the PDF prints with: the first Times-compatible face that has the
    Vietnamese letters, else one fallback face for the whole document."""
    for family in TIMES_LIKE:
        if _has_vietnamese(family):
            return ", ".join(f'"{f}"' for f in (family, *FALLBACK)) + ", serif"
    return ", ".join(f'"{f}"' for f in FALLBACK) + ", serif"


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        date_line=vn_date_line,
        short_date=short_date,
        short_datetime=short_datetime,
        vn_number=vn_number,
        vn_value=vn_value,
        vn_change=vn_change,
        vn_month=vn_month,
        status_label=status_label,
        annex_note=annex_note,
        ranked_label=ranked_label,
        attached_line=attached_line,
        figure_note=figure_note,
        monthly_summary=monthly_summary,
        number_line=number_line,
        change=MonthlyTechnicalReport.change,
        line_svg=charts.line_svg,
        bar_svg=charts.bar_svg,
    )
    return env


@lru_cache(maxsize=2)
def _css(name: str) -> str:
    return (TEMPLATES / name).read_text(encoding="utf-8")


def _render(
    template: str, title: str, lang: str, standalone: bool, for_pdf: bool = False, **context: Any
) -> str:
    env = _env()
    t = lambda key: text(key, lang)  # noqa: E731
    article = env.get_template(template).render(lang=lang, t=t, **context)
    if not standalone:
        return str(
            Markup("<style>{}</style>\n").format(Markup(_css("report.css"))) + Markup(article)
        )
    return env.get_template("page.html").render(
        lang=lang,
        title=title,
        css=Markup(_css("report.css")),
        page_css=Markup(_css("page.css")),
        font_css=Markup(_pdf_font_css()) if for_pdf else "",
        article=Markup(article),
    )


def campaign_title(doc: CampaignReport) -> str:
    return f"{doc.org_name} — {doc.campaign_name} {doc.campaign_year}"


def render_campaign_html(
    doc: CampaignReport, *, standalone: bool = True, lang: str = "vi", for_pdf: bool = False
) -> str:
    """The campaign return as HTML: a whole page (what the PDF prints), or with
    `standalone=False` a `<style>` + `<article class="vn-doc">` fragment for a web page."""
    wide = any(4 + len(a.keys) > WIDE_ANNEX_COLUMNS for a in doc.annexes)
    return _render(
        "campaign.html", campaign_title(doc), lang, standalone, for_pdf, doc=doc, wide=wide
    )


def render_monthly_html(
    doc: MonthlyTechnicalReport, *, standalone: bool = True, lang: str = "vi", for_pdf: bool = False
) -> str:
    """The monthly technical report as HTML (charts as inline SVG)."""
    title = f"{text('tech_title', lang)} — {vn_month(doc.month, lang)}"
    font = pdf_font_family().replace('"', "'") if for_pdf else charts.FONT
    return _render("monthly.html", title, lang, standalone, for_pdf, doc=doc, chart_font=font)


class OfflineFetcher:
    """WeasyPrint URL fetcher that refuses every scheme but data: (no network, no files)."""

    def __new__(cls) -> Any:  # built lazily: importing WeasyPrint costs ~0.5 s
        from weasyprint.urls import URLFetcher

        return URLFetcher(allowed_protocols={"data"}, fail_on_errors=False, timeout=1)


def _pdf_font_css() -> str:
    family = pdf_font_family()
    return f".vn-doc {{ font-family: {family}; }}\n@page {{ @top-center {{ font-family: {family}; }} }}"


def _write_pdf(html: str, target: Target) -> None:
    from weasyprint import HTML

    document = HTML(string=html, base_url=str(TEMPLATES), url_fetcher=OfflineFetcher())
    document.write_pdf(target)


def render_campaign_pdf(doc: CampaignReport, target: Target, *, lang: str = "vi") -> None:
    """Print the campaign return to PDF (A4, the decree's margins, page numbers from page 2)."""
    _write_pdf(render_campaign_html(doc, lang=lang, for_pdf=True), target)


def render_monthly_pdf(doc: MonthlyTechnicalReport, target: Target, *, lang: str = "vi") -> None:
    """Print the monthly technical report to PDF."""
    _write_pdf(render_monthly_html(doc, lang=lang, for_pdf=True), target)
