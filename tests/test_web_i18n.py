"""The web UI's strings and formats, and the page frame and macros rendered (and seen in Chromium)."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import unicodedata
import zlib
from datetime import date, datetime
from pathlib import Path
from string import Formatter
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jinja2 import ChoiceLoader, DictLoader, Environment, FileSystemLoader, select_autoescape

import quet.server.web as web
from conftest import require
from quet.server.web import charts
from quet.server.web.i18n import (
    CATALOG,
    format_date,
    format_datetime,
    format_number,
    format_pct,
    normalise_lang,
    template_context,
    translator,
)

WEB = Path(web.__file__).parent
TEMPLATES = WEB / "templates"
STATIC = WEB / "static"
DOCS_SHOT = Path(__file__).resolve().parents[1] / "docs" / "screenshots" / "base.png"

# ---------- catalog ----------


def test_every_entry_has_both_languages_with_the_same_placeholders() -> None:
    for key, (vi, en) in CATALOG.items():
        assert vi.strip() and en.strip(), key
        fields = [{f for _, f, _, _ in Formatter().parse(s) if f} for s in (vi, en)]
        assert fields[0] == fields[1], key
        # Decomposed diacritics (e + combining marks) render badly in some fonts.
        assert unicodedata.is_normalized("NFC", vi), key


def test_vietnamese_text_has_its_diacritics() -> None:
    t = translator("vi")
    assert [
        t(f"nav.{k}") for k in ("overview", "orgs", "campaigns", "devices", "findings", "audit")
    ] == [
        "Tổng quan",
        "Đơn vị",
        "Chiến dịch",
        "Thiết bị",
        "Phát hiện",
        "Nhật ký",
    ]
    assert t("status.received") == "Đã nhận"
    assert t("status.deployed") == "Đã triển khai"
    assert t("status.reported") == "Đã báo cáo"
    assert t("status.overdue") == "Quá hạn"
    assert translator("en")("status.overdue") == "Overdue"


def test_translator_unknown_keys_placeholders_and_language_names() -> None:
    vi, en = translator("vi"), translator("EN")
    assert vi("no.such.key") == "no.such.key"
    assert en("page.of", page=2, pages=9) == "Page 2 of 9"
    assert vi("page.of", page=2, pages=9) == "Trang 2 / 9"
    assert vi("page.of", wrong=1) == "Trang {page} / {pages}"  # never an exception in a page
    assert normalise_lang("en-US") == "en"
    assert normalise_lang("vi_VN") == "vi"
    assert normalise_lang("fr") == "vi"
    assert normalise_lang(None) == "vi"
    assert translator("de")("nav.overview") == "Tổng quan"


# ---------- formats ----------


def test_number_formats() -> None:
    assert format_number(1234567, "vi") == "1.234.567"
    assert format_number(1234567, "en") == "1,234,567"
    assert format_number(999, "vi") == "999"
    assert format_number(1000, "vi") == "1.000"
    assert format_number(0, "en") == "0"
    assert format_number(-1234.5, "vi", 1) == "-1.234,5"
    assert format_number(-1234.5, "en", 2) == "-1,234.50"
    assert format_number(-0.01, "vi") == "0"
    assert format_number(None, "vi") == "—"
    assert format_number(float("inf"), "en") == "—"


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_number_grouping_round_trips(n: int) -> None:
    vi, en = format_number(n, "vi"), format_number(n, "en")
    assert int(vi.replace(".", "")) == n
    assert int(en.replace(",", "")) == n
    assert vi.replace(".", ",") == en
    assert all(len(g) == 3 for g in vi.lstrip("-").split(".")[1:])


def test_date_and_percent_formats() -> None:
    assert format_date(date(2026, 1, 5), "vi") == "05/01/2026"
    assert format_date(date(2026, 1, 5), "en") == "2026-01-05"
    assert format_date(datetime(2026, 12, 31, 23, 59), "vi") == "31/12/2026"
    assert format_datetime(datetime(2026, 1, 5, 14, 3), "vi") == "05/01/2026 14:03"
    assert format_datetime(datetime(2026, 1, 5, 14, 3), "en") == "2026-01-05 14:03"
    assert format_date(None, "vi") == "—"
    assert format_pct(87.5, "vi") == "87,5%"
    assert format_pct(87.5, "en") == "87.5%"
    assert format_pct(100.0, "vi") == "100%"
    assert format_pct(12.346, "en", 2) == "12.35%"
    assert format_pct(None, "en") == "—"


# ---------- templates ----------

KEY_CALL = re.compile(r"""\b_?t\(\s*["']([a-z_]+\.[a-z_.]+)["']""")


def template_keys() -> set[str]:
    keys: set[str] = set()
    for path in TEMPLATES.glob("*.html"):
        keys |= set(KEY_CALL.findall(path.read_text(encoding="utf-8")))
    return keys


def test_every_key_used_by_the_templates_exists_in_both_languages() -> None:
    keys = template_keys()
    assert {"app.name", "user.logout", "page.prev", "table.empty"} <= keys  # the regex works
    base = (TEMPLATES / "base.html").read_text(encoding="utf-8")
    nav = re.search(r"for key in \(([^)]*)\)", base)
    assert nav is not None
    keys |= {f"nav.{k}" for k in re.findall(r'"(\w+)"', nav.group(1))}
    keys |= {f"lang.{c}" for c in ("vi", "en")}
    keys |= {f"role.{r}" for r in ("admin", "officer", "viewer")}
    keys |= {f"kind.{k}" for k in ("national", "province", "department", "district", "unit")}
    # Every pill colour in the stylesheet is a status the macro can name.
    css = (STATIC / "quet.css").read_text(encoding="utf-8")
    keys |= {f"status.{s}" for s in re.findall(r"\.pill--(\w+)", css)}
    missing = sorted(k for k in keys if k not in CATALOG)
    assert not missing, missing


@pytest.fixture
def env() -> Environment:
    return Environment(
        loader=ChoiceLoader([DictLoader(CHILDREN), FileSystemLoader(TEMPLATES)]),
        autoescape=select_autoescape(["html"]),
    )


CHILDREN = {
    "plain.html": """{% extends "base.html" %}{% block title %}Thử{% endblock %}
{% block content %}<p id="body">Nội dung</p>{% endblock %}""",
    "macros.html": """{% import "_macros.html" as m with context %}
<div id="card">{{ m.card("Thiết bị", 1234567, "phụ", tone="danger") }}</div>
<div id="pill">{{ m.status_pill("overdue") }}{{ m.status_pill(None) }}</div>
<div id="bar">{{ m.progress_bar(150) }}{{ m.progress_bar(42.5) }}</div>
<div id="pages">{{ m.pagination(6, 20, "/orgs?q=a", total=1234) }}</div>
<div id="one">{{ m.pagination(1, 1) }}</div>
<div id="tree">{{ m.tree(roots) }}</div>
<div id="table">{{ m.table(["Tên", "Số"], [["<b>x</b>", 1500]], numeric=[1]) }}</div>
<div id="empty">{{ m.table(["Tên"], []) }}</div>
<div id="form">{{ m.field("code", "Mã", required=True, error="Sai", attrs={"autocomplete": "off"}) }}</div>
<div id="flash">{{ m.flashes([("error", "<script>x</script>")]) }}</div>""",
}

USER = {"username": "an", "display_name": "Nguyễn Văn An", "role": "officer", "org_name": "Huế"}


def context(lang: str = "vi", **extra: Any) -> dict[str, Any]:
    ctx = template_context(lang)
    ctx.update(
        user=USER,
        nav_active="campaigns",
        csrf_token='t"<o>k',
        static_url=lambda p: f"/static/{p}",
    )
    ctx.update(extra)
    return ctx


def test_base_frame_signed_in(env: Environment) -> None:
    html = env.get_template("plain.html").render(**context())
    assert html.startswith("<!doctype html>")
    assert '<html lang="vi">' in html
    assert "<title>Thử · Quét</title>" in html
    assert 'href="/static/quet.css"' in html and 'src="/static/htmx.min.js"' in html
    assert '<p id="body">Nội dung</p>' in html
    assert 'href="/campaigns" aria-current="page"' in html
    assert html.count('aria-current="page"') == 1
    for label in ("Tổng quan", "Đơn vị", "Chiến dịch", "Thiết bị", "Phát hiện", "Nhật ký"):
        assert f"<span>{label}</span>" in html
    assert "Nguyễn Văn An" in html and "Cán bộ" in html
    # The CSRF token is escaped everywhere it appears, never raw.
    assert 't"<o>k' not in html
    assert 'name="csrf_token" value="t&#34;&lt;o&gt;k"' in html
    assert 'hx-headers=\'{"X-CSRF-Token": "t\\"\\u003co\\u003ek"}\'' in html
    assert 'href="?lang=en"' in html and ">EN</a>" in html


def test_base_frame_signed_out_english_with_overrides(env: Environment) -> None:
    html = env.get_template("plain.html").render(
        **context(
            "en",
            user=None,
            lang_url=lambda c: f"/lang/{c}",
            nav_urls={"orgs": "/o"},
            flashes=[("success", "Saved <ok>")],
            version="1.2",
        )
    )
    assert '<html lang="en">' in html
    assert "sidenav" not in html  # no navigation before signing in
    assert 'href="/login"' in html and "Sign in" in html
    assert 'href="/lang/vi"' in html
    assert "Saved &lt;ok&gt;" in html and 'class="flash flash--success"' in html
    assert "Version 1.2" in html
    signed_in = env.get_template("plain.html").render(**context("en", nav_urls={"orgs": "/o"}))
    assert 'href="/o"' in signed_in and "Organisations" in signed_in


def test_macros(env: Environment) -> None:
    roots = [
        {
            "name": "Trung ương",
            "code": "TW",
            "kind": "national",
            "state": "active",
            "devices": 1234567,
            "children": [
                {
                    "name": "Huế",
                    "code": "46",
                    "received": True,
                    "deployed": True,
                    "reported": False,
                    "late": True,
                    "coverage": 81.5,
                    "children": [{"name": "<Sở>", "code": "46-1", "infected": 3}],
                },
                {"name": "Quảng Trị", "code": "45", "children_url": "/orgs/45/children"},
            ],
        }
    ]
    html = env.get_template("macros.html").render(**context(roots=roots))
    card = section(html, "card")
    assert "1.234.567" in card and "card--danger" in card
    pill = section(html, "pill")
    assert 'class="pill pill--overdue"' in pill and "Quá hạn" in pill and "Không rõ" in pill
    bar = section(html, "bar")
    assert 'aria-valuenow="100.0"' in bar and "150%" in bar and "42,5%" in bar
    pages = section(html, "pages")
    assert '<span aria-current="page">6</span>' in pages
    assert 'href="/orgs?q=a&amp;page=5"' in pages and 'href="/orgs?q=a&amp;page=20"' in pages
    assert 'href="/orgs?q=a&amp;page=2"' not in pages and "…" in pages
    assert "Tổng cộng 1.234 dòng" in pages
    assert section(html, "one").strip() == ""
    tree = section(html, "tree")
    assert tree.count("<li data-depth") == 4
    assert 'data-depth="2" data-code="46-1"' in tree and "&lt;Sở&gt;" in tree
    assert tree.count("<details") == 3  # two parents, and one loaded on demand by htmx
    assert 'hx-get="/orgs/45/children" hx-trigger="toggle once"' in tree
    assert "Đã nhận" in tree and "Quá hạn" in tree and "81,5%" in tree
    table = section(html, "table")
    assert "&lt;b&gt;x&lt;/b&gt;" in table and '<td class="num">1.500</td>' in table
    assert "Không có dữ liệu" in section(html, "empty")
    form = section(html, "form")
    assert 'aria-invalid="true"' in form and 'autocomplete="off"' in form and "bắt buộc" in form
    flash = section(html, "flash")
    assert "&lt;script&gt;" in flash and 'role="alert"' in flash


def section(html: str, ident: str) -> str:
    found = re.search(rf'<div id="{ident}">(.*?)</div>\n(?=<div id=|$)', html + "\n", re.S)
    assert found, ident
    return found.group(1)


def test_assets_ship_in_the_package_and_nothing_loads_from_a_cdn() -> None:
    js = (STATIC / "htmx.min.js").read_text(encoding="utf-8")
    assert js.startswith("/*! htmx 2.") and "Zero-Clause BSD" in js.splitlines()[0]
    assert 'version:"2.' in js
    assert "Zero-Clause BSD" in (STATIC / "htmx.LICENSE").read_text(encoding="utf-8")
    for path in [*TEMPLATES.glob("*.html"), STATIC / "quet.css"]:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text), path
        assert "@import" not in text and "@font-face" not in text, path


# ---------- in a real browser ----------

DEMO = """{% extends "base.html" %}{% import "_macros.html" as m with context %}
{% block title %}{{ t("page.overview") }}{% endblock %}
{% block content %}
<div class="page-head"><div><h1>{{ t("page.overview") }}</h1>
<p class="sub">Chiến dịch rà quét mã độc năm 2026 — đợt 1 · {{ t("col.deadline") }}: {{ format_date(deadline) }}</p></div>
<div class="actions"><a class="btn" href="#">{{ t("btn.export") }}</a>
<button class="btn btn-primary" type="button">{{ t("btn.remind") }}</button></div></div>
<div class="cards">
{{ m.card(t("fig.orgs"), 1234, t("fig.of_total", total=format_number(1300))) }}
{{ m.card(t("fig.devices"), 1234567, format_pct(98.2) ~ " " ~ t("status.protected")|lower, tone="blue", spark=spark) }}
{{ m.card(t("fig.reported"), 812, format_pct(65.8), tone="green") }}
{{ m.card(t("fig.late"), 47, t("fig.days_late", days=3), tone="danger") }}
</div>
<div class="grid grid-2">
<section class="panel"><div class="panel-head"><h2>{{ t("chart.findings_by_day") }}</h2></div><div class="panel-body">{{ line }}</div></section>
<section class="panel"><div class="panel-head"><h2>{{ t("chart.status") }}</h2></div><div class="panel-body">{{ ring }}</div></section>
</div>
<section class="panel"><div class="panel-head"><h2>{{ t("page.orgs") }}</h2></div><div class="panel-body">{{ m.tree(roots) }}</div></section>
<section class="panel"><div class="panel-head"><h2>{{ t("page.late") }}</h2></div><div class="panel-body flush">
<div class="table-wrap"><table class="table"><thead><tr>{{ m.sort_header(t("col.org"), "name", "name", "asc") }}
<th>{{ t("col.status") }}</th>{{ m.sort_header(t("col.devices"), "devices", numeric=True) }}<th>{{ t("col.coverage") }}</th><th>{{ t("col.deadline") }}</th></tr></thead><tbody>
{% for r in late %}<tr{% if r.late %} class="is-late"{% endif %}><td>{{ r.name }}</td><td>{{ m.campaign_pills(r.received, r.deployed, r.reported, r.late) }}</td>
<td class="num">{{ format_number(r.devices) }}</td><td>{{ m.progress_bar(r.coverage) }}</td>
<td class="deadline{% if r.late %} late{% endif %}">{{ format_date(deadline) }}</td></tr>{% endfor %}
</tbody></table></div>{{ m.pagination(2, 9, "?", total=171) }}</div></section>
<script>
// htmx is deferred: it has run by DOMContentLoaded.
addEventListener("DOMContentLoaded", () => { document.documentElement.dataset.htmx = typeof htmx; });
</script>
{% endblock %}"""


def demo_page(lang: str) -> str:
    """The frame filled with every building block, as a page would use them."""
    env = Environment(
        loader=ChoiceLoader([DictLoader({"demo.html": DEMO}), FileSystemLoader(TEMPLATES)]),
        autoescape=select_autoescape(["html"]),
    )
    t = translator(lang)
    days = [date(2026, 1, d) for d in range(1, 15)]
    line = charts.line_chart(
        {
            t("fig.findings"): [(d, (i * 37) % 120 + 20) for i, d in enumerate(days)],
            t("status.cleaned"): [(d, (i * 29) % 90 + 5) for i, d in enumerate(days)],
        },
        title=t("chart.findings_by_day"),
        lang=lang,
        width=450,
        height=240,
    )
    ring = charts.donut(
        [
            (t(f"status.{s}"), n)
            for s, n in (("reported", 812), ("deployed", 230), ("received", 145), ("pending", 47))
        ],
        title=t("chart.status"),
        lang=lang,
        colors=["#2e7d32", "#0f6b6b", "#1f4e79", "#a4161a"],
        center_label=t("fig.orgs").lower(),
    )
    org = {"kind": "department", "devices": 230, "infected": 3}
    roots = [
        {"name": "Trung tâm quốc gia", "code": "TW", "kind": "national", "state": "active",
         "devices": 1234567, "infected": 312, "coverage": 96.4, "children": [
            {"name": "Thành phố Huế", "code": "46", "kind": "province", "open": True,
             "received": True, "deployed": True, "reported": True, "devices": 4120,
             "infected": 12, "coverage": 99.1, "children": [
                {**org, "name": "Sở Khoa học và Công nghệ", "code": "46-KHCN", "received": True,
                 "deployed": True, "reported": False, "late": True, "coverage": 81.5},
                {**org, "name": "Phường Thuận Hoá", "code": "46-TH", "kind": "commune",
                 "received": False, "late": True, "devices": 41, "infected": 0, "coverage": 12.0},
            ]},
            {"name": "Tỉnh Quảng Trị", "code": "45", "kind": "province", "received": True,
             "deployed": False, "devices": 2890, "infected": 40, "coverage": 64.0,
             "children_url": "/orgs/45/children"},
        ]},
    ]  # fmt: skip
    late = [
        {"name": "Sở Khoa học và Công nghệ", "received": True, "deployed": True, "reported": False,
         "late": True, "devices": 230, "coverage": 81.5},
        {"name": "Phường Thuận Hoá", "received": False, "late": True, "devices": 41, "coverage": 12},
        {"name": "Sở Y tế", "received": True, "deployed": False, "reported": False, "late": False,
         "devices": 1520, "coverage": 55},
    ]  # fmt: skip
    ctx = context(
        lang,
        static_url=lambda p: (STATIC / p).as_uri(),
        nav_active="overview",
        flashes=[("success", t("flash.notified", count=format_number(1187, lang)))],
        line=line,
        ring=ring,
        spark=charts.sparkline([3, 5, 4, 8, 9, 12], lang=lang),
        roots=roots,
        late=late,
        deadline=date(2026, 1, 5),
    )
    return env.get_template("demo.html").render(**ctx)


FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
]


def png_rows(png: bytes, rows: int) -> tuple[int, int, list[bytes]]:
    """Width, height and the first `rows` unfiltered scanlines of an 8-bit RGB(A) PNG."""
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height, depth, colour = struct.unpack(">IIBB", png[16:26])
    assert depth == 8 and colour in (2, 6)
    bpp = 4 if colour == 6 else 3
    data, pos = b"", 8
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind = png[pos + 4 : pos + 8]
        if kind == b"IDAT":
            data += png[pos + 8 : pos + 8 + length]
        pos += 12 + length
    raw = zlib.decompress(data)
    stride = width * bpp
    out: list[bytes] = []
    prev = bytearray(stride)
    for r in range(rows):
        ftype = raw[r * (stride + 1)]
        line = bytearray(raw[r * (stride + 1) + 1 : (r + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 255
            elif ftype == 2:
                line[i] = (line[i] + b) & 255
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out.append(bytes(line))
        prev = line
    return width, height, out


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["vi", "en"])
def test_frame_in_chromium(tmp_path: Path, lang: str) -> None:
    chromium = shutil.which("chromium")
    require("chromium (Debian package)", chromium is not None)
    assert chromium is not None
    page = tmp_path / "page.html"
    page.write_text(demo_page(lang), encoding="utf-8")
    profile = f"--user-data-dir={tmp_path / 'profile'}"
    dom = subprocess.run(
        [chromium, *FLAGS, profile, "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert 'data-htmx="object"' in dom  # the vendored htmx loaded through static_url
    assert ("Tổng quan" if lang == "vi" else "Overview") in dom
    assert ("1.234.567" if lang == "vi" else "1,234,567") in dom
    shot = tmp_path / "shot.png"
    subprocess.run(
        [chromium, *FLAGS, profile, f"--screenshot={shot}", "--window-size=1280,1500",
         page.as_uri()],
        capture_output=True,
        timeout=120,
    )  # fmt: skip
    png = shot.read_bytes()
    assert len(png) > 60_000
    width, height, rows = png_rows(png, 30)
    assert (width, height) == (1280, 1500)
    bpp = len(rows[0]) // width
    r, g, b = rows[20][640 * bpp : 640 * bpp + 3]
    assert r > 100 and g < 60 and b < 60, (r, g, b)  # the deep-red top bar: the CSS loaded
    if lang == "vi" and os.environ.get("QUET_UPDATE_SCREENSHOTS") == "1":
        DOCS_SHOT.parent.mkdir(parents=True, exist_ok=True)
        DOCS_SHOT.write_bytes(png)
