"""The monthly report's charts, drawn without a server or network: inline SVG for the HTML/PDF
and a PNG (Pillow) for the DOCX. Both show the same series with the same nice axis ticks."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from markupsafe import Markup, escape

from quet.reports.dates import vn_number
from quet.reports.document import Ranked, TrendPoint

INK = "#222222"
GRID = "#d0d0d0"
LINE = "#a4161a"
BAR = "#1f4e79"
FONT = "'Times New Roman', 'Liberation Serif', 'Tinos', serif"


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """0 and round steps (1, 2, 2.5, 5 × 10^k) up to at least `top`."""
    if not math.isfinite(top) or top <= 0:
        return [0.0, 1.0]
    raw = top / max(count - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    ticks = [0.0]
    while ticks[-1] < top:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _label(value: float, lang: str) -> str:
    return vn_number(value if not float(value).is_integer() else int(value), lang=lang)


def line_svg(
    points: Sequence[TrendPoint],
    title: str,
    lang: str = "vi",
    width: int = 620,
    height: int = 230,
    font: str = FONT,
) -> Markup:
    """A daily line chart as an accessible inline SVG (role="img", a <title> and a <desc>)."""
    left, right, top, bottom = 58, 22, 26, 30
    pw, ph = width - left - right, height - top - bottom
    values = [p.ips for p in points]
    ticks = nice_ticks(max(values, default=0))
    ymax = ticks[-1]
    desc = "; ".join(f"{p.day.isoformat()}: {p.ips}" for p in points)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'font-family="{escape(font)}">',
        f"<title>{escape(title)}</title><desc>{escape(desc)}</desc>",
        f'<text x="{left}" y="15" font-size="12" font-weight="bold" fill="{INK}">'
        f"{escape(title)}</text>",
    ]
    for tick in ticks:
        y = top + ph - ph * tick / ymax
        out.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{GRID}" stroke-width="0.6"/>'
        )
        out.append(
            f'<text x="{left - 5}" y="{y + 4:.1f}" font-size="10" text-anchor="end" '
            f'fill="{INK}">{escape(_label(tick, lang))}</text>'
        )
    n = len(points)
    coords = []
    for i, point in enumerate(points):
        x = left + (pw * i / (n - 1) if n > 1 else pw / 2)
        y = top + ph - ph * point.ips / ymax
        coords.append((x, y))
        if n <= 12 or i % max(n // 8, 1) == 0 or i == n - 1:
            out.append(
                f'<text x="{x:.1f}" y="{top + ph + 16}" font-size="10" '
                f'text-anchor="middle" fill="{INK}">{point.day.day:02d}/'
                f"{point.day.month:02d}</text>"
            )
    if coords:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        out.append(f'<polyline points="{path}" fill="none" stroke="{LINE}" stroke-width="2"/>')
    out.append(
        f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" '
        f'stroke="{INK}" stroke-width="0.8"/></svg>'
    )
    return Markup("".join(out))


def bar_svg(
    rows: Sequence[Ranked],
    title: str,
    lang: str = "vi",
    width: int = 620,
    limit: int = 10,
    font: str = FONT,
) -> Markup:
    """Horizontal bars of the largest `limit` rows."""
    rows = list(rows)[:limit]
    left, right, top, bar_h, gap = 170, 70, 26, 16, 6
    height = top + len(rows) * (bar_h + gap) + 6
    pw = width - left - right
    vmax = max((r.value for r in rows), default=0) or 1
    desc = "; ".join(f"{r.label}: {r.value}" for r in rows)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'font-family="{escape(font)}">',
        f"<title>{escape(title)}</title><desc>{escape(desc)}</desc>",
        f'<text x="0" y="15" font-size="12" font-weight="bold" fill="{INK}">{escape(title)}</text>',
    ]
    for i, row in enumerate(rows):
        y = top + i * (bar_h + gap)
        w = pw * row.value / vmax
        label = row.label if len(row.label) <= 28 else row.label[:27] + "…"
        out.append(
            f'<text x="{left - 6}" y="{y + 12}" font-size="11" text-anchor="end" '
            f'fill="{INK}">{escape(label)}</text>'
        )
        out.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{BAR}"/>')
        out.append(
            f'<text x="{left + w + 4:.1f}" y="{y + 12}" font-size="11" fill="{INK}">'
            f"{escape(vn_number(row.value, lang=lang))}</text>"
        )
    out.append("</svg>")
    return Markup("".join(out))


_FONT_FILES = (
    # Times-compatible faces first; Liberation Serif 1.x lacks Vietnamese letters and is skipped
    (
        "/usr/share/fonts/truetype/liberation2",
        "LiberationSerif-Regular.ttf",
        "LiberationSerif-Bold.ttf",
    ),
    (
        "/usr/share/fonts/truetype/liberation",
        "LiberationSerif-Regular.ttf",
        "LiberationSerif-Bold.ttf",
    ),
    ("/usr/share/fonts/truetype/croscore", "Tinos-Regular.ttf", "Tinos-Bold.ttf"),
    (
        "/usr/share/fonts/truetype/dejavu",
        "DejaVuSerifCondensed.ttf",
        "DejaVuSerifCondensed-Bold.ttf",
    ),
    ("/usr/share/fonts/truetype/dejavu", "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf"),
)
_VIETNAMESE = (0x1ED1, 0x1B0, 0x1A1, 0x1EA1, 0x1EC7)  # ố ư ơ ạ ệ


def _covers_vietnamese(path: Path) -> bool:
    try:
        from fontTools.ttLib import TTFont
    except ImportError:  # pragma: no cover - fontTools comes with WeasyPrint
        return True
    try:
        cmap = TTFont(str(path), lazy=True).getBestCmap() or {}
    except Exception:  # a broken font file: try the next one
        return False
    return all(code in cmap for code in _VIETNAMESE)


@lru_cache(maxsize=2)
def _font_file(bold: bool) -> Path | None:
    for folder, regular, heavy in _FONT_FILES:
        path = Path(folder) / (heavy if bold else regular)
        if path.exists() and _covers_vietnamese(path):
            return path
    return None


def _pil_font(size: int, bold: bool = False) -> Any:
    from PIL import ImageFont

    path = _font_file(bold)
    if path is not None:
        return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size)


def line_png(
    points: Sequence[TrendPoint], title: str, lang: str = "vi", width: int = 1800, height: int = 660
) -> bytes:
    """The same daily line chart as a PNG (about 280 dpi at 16 cm wide) for the DOCX."""
    from PIL import Image, ImageDraw

    s = width / 620  # the SVG's geometry, scaled
    left, right, top, bottom = 58 * s, 22 * s, 26 * s, 30 * s
    pw, ph = width - left - right, height - top - bottom
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    small, bold = _pil_font(int(10 * s)), _pil_font(int(12 * s), bold=True)
    draw.text((left, 4 * s), title, fill=INK, font=bold)
    ticks = nice_ticks(max((p.ips for p in points), default=0))
    ymax = ticks[-1]
    for tick in ticks:
        y = top + ph - ph * tick / ymax
        draw.line([(left, y), (left + pw, y)], fill=GRID, width=max(int(s * 0.6), 1))
        draw.text(
            (left - 5 * s, y),
            _label(tick, lang),
            fill=INK,
            font=small,
            anchor="rm",
        )
    n = len(points)
    coords = []
    for i, point in enumerate(points):
        x = left + (pw * i / (n - 1) if n > 1 else pw / 2)
        coords.append((x, top + ph - ph * point.ips / ymax))
        if n <= 12 or i % max(n // 8, 1) == 0 or i == n - 1:
            draw.text(
                (x, top + ph + 6 * s),
                f"{point.day.day:02d}/{point.day.month:02d}",
                fill=INK,
                font=small,
                anchor="mt",
            )
    if len(coords) > 1:
        draw.line(coords, fill=LINE, width=int(2 * s), joint="curve")
    draw.line([(left, top + ph), (left + pw, top + ph)], fill=INK, width=max(int(s * 0.8), 1))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
