"""Charts as inline SVG built on the server: no JavaScript, no network, the same bytes every time.

Every chart is an accessible image (role="img", <title>, <desc> listing the data) whose text is
escaped, and whose numbers follow the page's language (1.234.567 in Vietnamese).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from datetime import date, datetime

from markupsafe import Markup
from markupsafe import escape as _escape

from quet.server.web.i18n import format_date, format_number, format_pct, translator

# Deep red and gold first (the product's accents), then colours that stay apart for colour-blind
# readers and in greyscale print.
PALETTE: tuple[str, ...] = (
    "#a4161a",
    "#c98a00",
    "#1f4e79",
    "#2e7d32",
    "#6a4c93",
    "#d9622b",
    "#00838f",
    "#6d4c41",
)
AXIS = "#8a8f98"
GRID = "#e3e5e8"
INK = "#3b3f45"
MUTED = "#6b7079"
CHAR_W = 6.6  # average width of an 11 px digit/letter in the UI fonts, for margins


# Characters XML 1.0 forbids; a label from an uploaded report may hold them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def escape(text: object) -> Markup:
    """HTML-escape and drop characters that would make the SVG invalid XML."""
    return _escape(_NOT_XML.sub("", str(text)))


def _f(x: float) -> str:
    """A coordinate with at most one decimal, so output is stable and short."""
    text = f"{x:.1f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _num(v: float, lang: str) -> str:
    decimals = 0 if float(v).is_integer() or abs(v) >= 100 else 1
    return format_number(v, lang, decimals)


def _check(values: Sequence[float], what: str) -> list[float]:
    out = []
    for i, v in enumerate(values):
        x = float(v)
        if not math.isfinite(x):
            raise ValueError(f"{what}: value #{i + 1} is not a finite number ({v!r})")
        out.append(x)
    return out


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2, 2.5 or 5 × 10^k steps) covering [lo, hi], about `count` of them."""
    if hi < lo:
        lo, hi = hi, lo
    if hi - lo <= max(1e-9 * max(abs(lo), abs(hi)), 1e-12):
        # All values equal (often all zero): show a small whole-number range, not 0,25 steps.
        hi = lo + max(abs(lo), 4.0)
    raw = (hi - lo) / max(count - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    # Rounding to the step's own precision removes float noise (0.30000000000000004) without
    # merging ticks of very small ranges.
    digits = max(0, 2 - math.floor(math.log10(step)))
    first = math.floor(lo / step)
    ticks = [round((first + k) * step, digits) for k in range(50)]
    last = next((i for i, v in enumerate(ticks) if v >= hi), len(ticks) - 1)
    return ticks[: max(last + 1, 2)]


def _tick_labels(ticks: list[float], lang: str) -> list[str]:
    """Labels with as many decimals as the step needs (0,25 steps keep two), no more."""
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    frac = f"{step:.6f}".rstrip("0").split(".")[1]
    return [format_number(t, lang, len(frac)) for t in ticks]


def _trim(label: str, limit: int) -> str:
    return label if len(label) <= limit else label[: max(limit - 1, 1)] + "…"


def _chart_id(kind: str, *payload: object) -> str:
    # Derived from the data, not a counter, so two renders of the same chart are identical.
    return f"qc-{kind}-" + hashlib.sha1(repr(payload).encode()).hexdigest()[:10]


def _open(kind: str, width: float, height: float, title: str, desc: str, cid: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-{kind}" '
        f'viewBox="0 0 {_f(width)} {_f(height)}" width="{_f(width)}" height="{_f(height)}" '
        f'role="img" aria-label="{escape(title)}" aria-describedby="{cid}-desc" '
        f'font-size="11" fill="{INK}">',
        f'<title id="{cid}-title">{escape(title)}</title>',
        f'<desc id="{cid}-desc">{escape(desc)}</desc>',
    ]


def _no_data(kind: str, width: float, height: float, title: str, lang: str) -> Markup:
    text = translator(lang)("chart.no_data")
    cid = _chart_id(kind, title, "empty")
    parts = _open(kind, width, height, title, text, cid)
    parts.append(
        f'<text class="no-data" x="{_f(width / 2)}" y="{_f(height / 2)}" text-anchor="middle" '
        f'fill="{MUTED}">{escape(text)}</text>'
    )
    parts.append("</svg>")
    return Markup("".join(parts))


def _heading(parts: list[str], title: str, show: bool) -> float:
    if not show:
        return 0.0
    parts.append(
        f'<text class="chart-title" x="0" y="14" font-size="13" font-weight="600">'
        f"{escape(title)}</text>"
    )
    return 22.0


def _colour(colors: Sequence[str] | None, i: int) -> str:
    pool = colors if colors else PALETTE
    return str(escape(pool[i % len(pool)]))


def bar_chart(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    title: str,
    width: int = 640,
    height: int = 280,
    colors: Sequence[str] | None = None,
    lang: str = "vi",
    horizontal: bool = False,
    show_title: bool = False,
) -> Markup:
    """One bar per label with its value written on it; `horizontal` suits long names (provinces).

    Without `colors` every bar is the accent red; with them, bars take the colours in turn.
    """
    if len(labels) != len(values):
        raise ValueError(f"bar_chart: {len(labels)} labels but {len(values)} values")
    nums = _check(values, "bar_chart")
    if not nums:
        return _no_data("bar", width, height, title, lang)
    one = [colors[0]] if colors else [PALETTE[0]]
    pool = colors if colors else one
    desc = "; ".join(f"{lab}: {_num(v, lang)}" for lab, v in zip(labels, nums, strict=True))
    cid = _chart_id("bar", title, list(labels), nums, width, height, horizontal)
    parts = _open("bar", width, height, title, desc, cid)
    top = _heading(parts, title, show_title) + 8
    ticks = nice_ticks(min(0.0, *nums), max(0.0, *nums))
    lo, hi = ticks[0], ticks[-1]
    if horizontal:
        _bars_horizontal(parts, labels, nums, pool, lang, width, height, top, lo, hi, ticks)
    else:
        _bars_vertical(parts, labels, nums, pool, lang, width, height, top, lo, hi, ticks)
    parts.append("</svg>")
    return Markup("".join(parts))


def _bars_vertical(
    parts: list[str],
    labels: Sequence[str],
    nums: list[float],
    pool: Sequence[str],
    lang: str,
    width: float,
    height: float,
    top: float,
    lo: float,
    hi: float,
    ticks: list[float],
) -> None:
    tick_text = _tick_labels(ticks, lang)
    left = 10 + CHAR_W * max(len(s) for s in tick_text)
    slot = (width - left - 8) / len(nums)
    rotate = slot < 64
    bottom = 70.0 if rotate else 30.0
    plot_h = height - top - bottom - 14  # room for value labels above the tallest bar
    y0 = top + 14

    def y(v: float) -> float:
        return y0 + plot_h * (hi - v) / (hi - lo)

    parts.append('<g class="grid">')
    for t, s in zip(ticks, tick_text, strict=True):
        parts.append(
            f'<line x1="{_f(left)}" x2="{_f(width - 8)}" y1="{_f(y(t))}" y2="{_f(y(t))}" '
            f'stroke="{GRID if t else AXIS}"/>'
            f'<text x="{_f(left - 6)}" y="{_f(y(t) + 4)}" text-anchor="end" fill="{MUTED}">{s}</text>'
        )
    parts.append('</g><g class="bars">')
    bar_w = slot * 0.64
    base = y(0.0)
    for i, (lab, v) in enumerate(zip(labels, nums, strict=True)):
        x = left + slot * i + (slot - bar_w) / 2
        yv = y(v)
        y_top, h = (yv, base - yv) if v >= 0 else (base, yv - base)
        colour = _colour(pool, i)
        shown = _num(v, lang)
        parts.append(
            f'<rect class="bar" x="{_f(x)}" y="{_f(y_top)}" width="{_f(bar_w)}" '
            f'height="{_f(max(h, 0.5))}" rx="2" fill="{colour}">'
            f"<title>{escape(lab)}: {shown}</title></rect>"
        )
        vy = y_top - 4 if v >= 0 else y_top + h + 12
        parts.append(
            f'<text class="value" x="{_f(x + bar_w / 2)}" y="{_f(vy)}" text-anchor="middle">'
            f"{shown}</text>"
        )
        cx = x + bar_w / 2
        ly = height - bottom + 16
        if rotate:
            parts.append(
                f'<text class="label" x="{_f(cx)}" y="{_f(ly)}" text-anchor="end" '
                f'transform="rotate(-40 {_f(cx)} {_f(ly)})">{escape(_trim(lab, 14))}</text>'
            )
        else:
            limit = max(int(slot / CHAR_W), 3)
            parts.append(
                f'<text class="label" x="{_f(cx)}" y="{_f(ly)}" text-anchor="middle">'
                f"{escape(_trim(lab, limit))}</text>"
            )
    parts.append("</g>")


def _bars_horizontal(
    parts: list[str],
    labels: Sequence[str],
    nums: list[float],
    pool: Sequence[str],
    lang: str,
    width: float,
    height: float,
    top: float,
    lo: float,
    hi: float,
    ticks: list[float],
) -> None:
    shown = [_num(v, lang) for v in nums]
    # Category labels are drawn larger and bold: about 8 px a character.
    label_w = min(12 + 8.0 * max(len(s) for s in labels), width * 0.42)
    value_w = 8 + CHAR_W * max(len(s) for s in shown)
    plot_w = width - label_w - value_w - 8
    row = (height - top - 20) / len(nums)
    bar_h = min(row * 0.7, 22)

    def x(v: float) -> float:
        return label_w + plot_w * (v - lo) / (hi - lo)

    parts.append('<g class="grid">')
    for t, s in zip(ticks, _tick_labels(ticks, lang), strict=True):
        parts.append(
            f'<line x1="{_f(x(t))}" x2="{_f(x(t))}" y1="{_f(top)}" y2="{_f(height - 20)}" '
            f'stroke="{GRID if t else AXIS}"/>'
            f'<text x="{_f(x(t))}" y="{_f(height - 6)}" text-anchor="middle" fill="{MUTED}">'
            f"{s}</text>"
        )
    parts.append('</g><g class="bars">')
    base = x(0.0)
    for i, (lab, v) in enumerate(zip(labels, nums, strict=True)):
        cy = top + row * i + row / 2
        xv = x(v)
        x0, w = (base, xv - base) if v >= 0 else (xv, base - xv)
        limit = max(int((label_w - 10) / CHAR_W), 3)
        parts.append(
            f'<text class="label" x="{_f(label_w - 8)}" y="{_f(cy + 4)}" text-anchor="end">'
            f"{escape(_trim(lab, limit))}</text>"
            f'<rect class="bar" x="{_f(x0)}" y="{_f(cy - bar_h / 2)}" width="{_f(max(w, 0.5))}" '
            f'height="{_f(bar_h)}" rx="2" fill="{_colour(pool, i)}">'
            f"<title>{escape(lab)}: {shown[i]}</title></rect>"
            f'<text class="value" x="{_f(x0 + w + 6)}" y="{_f(cy + 4)}">{shown[i]}</text>'
        )
    parts.append("</g>")


XValue = date | str


def _x_positions(series: dict[str, list[tuple[XValue, float]]]) -> tuple[list[XValue], bool]:
    seen: dict[XValue, None] = {}
    for points in series.values():
        for xv, _ in points:
            seen.setdefault(xv, None)
    xs = list(seen)
    dated = bool(xs) and all(isinstance(v, date) for v in xs)
    if dated:
        xs.sort(key=_ordinal)
    return xs, dated


def _ordinal(v: XValue) -> float:
    if isinstance(v, datetime):
        return v.toordinal() + (v.hour * 3600 + v.minute * 60 + v.second) / 86400
    if isinstance(v, date):
        return float(v.toordinal())
    raise TypeError(v)


def _x_label(v: XValue, lang: str, same_year: bool) -> str:
    if not isinstance(v, date):
        return v
    if same_year:
        return f"{v.day:02d}/{v.month:02d}" if lang != "en" else f"{v.month:02d}-{v.day:02d}"
    return format_date(v, lang)


def line_chart(
    series: dict[str, list[tuple[XValue, float]]],
    *,
    title: str,
    width: int = 640,
    height: int = 280,
    colors: Sequence[str] | None = None,
    lang: str = "vi",
    max_x_ticks: int = 7,
    show_points: bool = True,
    show_title: bool = False,
) -> Markup:
    """Trend lines with axes, ticks and a legend; x is dates (spaced by time) or labels (in order)."""
    if not any(series.values()):
        return _no_data("line", width, height, title, lang)
    clean = {name: list(zip([x for x, _ in pts], _check([v for _, v in pts], name), strict=True))
             for name, pts in series.items()}  # fmt: skip
    xs, dated = _x_positions(clean)
    all_v = [v for pts in clean.values() for _, v in pts]
    ticks = nice_ticks(min(0.0, *all_v), max(all_v))
    lo, hi = ticks[0], ticks[-1]
    tick_text = _tick_labels(ticks, lang)
    desc = "; ".join(
        f"{name}: " + ", ".join(f"{_x_label(x, lang, False)} = {_num(v, lang)}" for x, v in pts)
        for name, pts in clean.items()
    )
    cid = _chart_id("line", title, sorted((k, repr(v)) for k, v in clean.items()), width, height)
    parts = _open("line", width, height, title, desc, cid)
    top = _heading(parts, title, show_title)
    # Legend first, on one row, so it reads before the lines.
    lx = 0.0
    parts.append('<g class="legend">')
    for i, name in enumerate(clean):
        parts.append(
            f'<rect x="{_f(lx)}" y="{_f(top + 2)}" width="12" height="4" rx="1" '
            f'fill="{_colour(colors, i)}"/>'
            f'<text x="{_f(lx + 16)}" y="{_f(top + 8)}">{escape(name)}</text>'
        )
        lx += 28 + CHAR_W * len(name)
    parts.append("</g>")
    left = 10 + CHAR_W * max(len(s) for s in tick_text)
    right = width - 12
    y_top = top + 26
    y_bot = height - 26
    if dated:
        o0, o1 = _ordinal(xs[0]), _ordinal(xs[-1])
        span = (o1 - o0) or 1.0
        xpos = {x: left + (right - left) * ((_ordinal(x) - o0) / span if o1 > o0 else 0.5)
                for x in xs}  # fmt: skip
    else:
        step = (right - left) / max(len(xs) - 1, 1)
        xpos = {x: left + step * i if len(xs) > 1 else (left + right) / 2 for i, x in enumerate(xs)}

    def y(v: float) -> float:
        return y_bot - (y_bot - y_top) * (v - lo) / (hi - lo)

    parts.append('<g class="axes">')
    for t, s in zip(ticks, tick_text, strict=True):
        parts.append(
            f'<line x1="{_f(left)}" x2="{_f(right)}" y1="{_f(y(t))}" y2="{_f(y(t))}" '
            f'stroke="{GRID if t != lo else AXIS}"/>'
            f'<text x="{_f(left - 6)}" y="{_f(y(t) + 4)}" text-anchor="end" fill="{MUTED}">{s}</text>'
        )
    same_year = dated and len({x.year for x in xs if isinstance(x, date)}) == 1
    every = max(1, math.ceil(len(xs) / max(max_x_ticks, 1)))
    shown_x = xs[::every]
    if xs[-1] not in shown_x and (len(xs) - 1) % every > every / 2:
        shown_x.append(xs[-1])
    for x in shown_x:
        px = xpos[x]
        parts.append(
            f'<line class="tick" x1="{_f(px)}" x2="{_f(px)}" y1="{_f(y_bot)}" y2="{_f(y_bot + 4)}" '
            f'stroke="{AXIS}"/>'
            f'<text x="{_f(px)}" y="{_f(y_bot + 16)}" text-anchor="middle" fill="{MUTED}">'
            f"{escape(_x_label(x, lang, same_year))}</text>"
        )
    parts.append("</g>")
    order = {x: i for i, x in enumerate(xs)}
    for i, (name, pts) in enumerate(clean.items()):
        colour = _colour(colors, i)
        ordered = sorted(pts, key=lambda p: order[p[0]])
        coords = " ".join(f"{_f(xpos[x])},{_f(y(v))}" for x, v in ordered)
        parts.append(
            f'<g class="series" data-series="{escape(name)}">'
            f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2" '
            f'stroke-linejoin="round" stroke-linecap="round"/>'
        )
        if show_points:
            for x, v in ordered:
                parts.append(
                    f'<circle class="point" cx="{_f(xpos[x])}" cy="{_f(y(v))}" r="3" '
                    f'fill="#fff" stroke="{colour}" stroke-width="1.5">'
                    f"<title>{escape(name)}, {escape(_x_label(x, lang, False))}: "
                    f"{_num(v, lang)}</title></circle>"
                )
        parts.append("</g>")
    parts.append("</svg>")
    return Markup("".join(parts))


def donut(
    parts: Sequence[tuple[str, float]],
    *,
    title: str,
    size: int = 180,
    colors: Sequence[str] | None = None,
    lang: str = "vi",
    center_label: str | None = None,
    legend: bool = True,
) -> Markup:
    """Shares of a whole as a ring, the total in the middle, a legend with values and percents."""
    values = _check([v for _, v in parts], "donut")
    if any(v < 0 for v in values):
        raise ValueError("donut: negative parts cannot be shares of a whole")
    legend_w = 0.0
    if legend and parts:
        longest = max(
            len(lab) + len(_num(v, lang)) + 9 for (lab, _), v in zip(parts, values, strict=True)
        )
        legend_w = 24 + CHAR_W * longest
    width = size + legend_w
    height = max(size, 22 * len(parts) + 8)
    total = sum(values)
    if total <= 0:
        return _no_data("donut", width, height, title, lang)
    pcts = [100 * v / total for v in values]
    desc = "; ".join(
        f"{lab}: {_num(v, lang)} ({format_pct(p, lang)})"
        for (lab, _), v, p in zip(parts, values, pcts, strict=True)
    )
    cid = _chart_id("donut", title, [lab for lab, _ in parts], values, size)
    out = _open("donut", width, height, title, desc, cid)
    c = size / 2
    r = size / 2 - 14
    circ = 2 * math.pi * r
    out.append(
        f'<g class="ring" transform="rotate(-90 {_f(c)} {_f(c)})">'
        f'<circle cx="{_f(c)}" cy="{_f(c)}" r="{_f(r)}" fill="none" stroke="{GRID}" '
        f'stroke-width="22"/>'
    )
    start = 0.0
    for i, ((lab, _), v, p) in enumerate(zip(parts, values, pcts, strict=True)):
        if v == 0:
            continue
        length = circ * v / total
        out.append(
            f'<circle class="slice" cx="{_f(c)}" cy="{_f(c)}" r="{_f(r)}" fill="none" '
            f'stroke="{_colour(colors, i)}" stroke-width="22" '
            f'stroke-dasharray="{length:.2f} {circ - length:.2f}" stroke-dashoffset="{-start:.2f}">'
            f"<title>{escape(lab)}: {_num(v, lang)} ({format_pct(p, lang)})</title></circle>"
        )
        start += length
    out.append("</g>")
    out.append(
        f'<text class="total" x="{_f(c)}" y="{_f(c + (2 if center_label else 7))}" '
        f'text-anchor="middle" font-size="20" font-weight="700">{_num(total, lang)}</text>'
    )
    if center_label:
        out.append(
            f'<text x="{_f(c)}" y="{_f(c + 18)}" text-anchor="middle" fill="{MUTED}">'
            f"{escape(center_label)}</text>"
        )
    if legend:
        out.append('<g class="legend">')
        for i, ((lab, _), v, p) in enumerate(zip(parts, values, pcts, strict=True)):
            ly = 14 + 22 * i
            out.append(
                f'<rect x="{_f(size + 8)}" y="{_f(ly - 9)}" width="10" height="10" rx="2" '
                f'fill="{_colour(colors, i)}"/>'
                f'<text x="{_f(size + 24)}" y="{_f(ly)}">{escape(lab)} '
                f'<tspan fill="{MUTED}">{_num(v, lang)} · {format_pct(p, lang)}</tspan></text>'
            )
        out.append("</g>")
    out.append("</svg>")
    return Markup("".join(out))


def sparkline(
    values: Sequence[float],
    *,
    width: int = 120,
    height: int = 28,
    color: str = PALETTE[0],
    title: str = "",
    lang: str = "vi",
) -> Markup:
    """A word-sized trend line for table cells and cards; the last point is marked."""
    nums = _check(values, "sparkline")
    label = title or translator(lang)("chart.trend")
    if nums:
        label += f": {_num(nums[0], lang)} → {_num(nums[-1], lang)}"
    cid = _chart_id("spark", label, nums, width, height)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-spark" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(label)}">',
        f'<title id="{cid}-title">{escape(label)}</title>',
    ]
    if nums:
        lo, hi = min(nums), max(nums)
        span = (hi - lo) or 1.0
        step = (width - 6) / max(len(nums) - 1, 1)
        pts = [
            (3 + step * i if len(nums) > 1 else width / 2,
             height - 3 - (height - 6) * ((v - lo) / span if hi > lo else 0.5))
            for i, v in enumerate(nums)
        ]  # fmt: skip
        colour = escape(color)
        out.append(
            f'<polyline points="{" ".join(f"{_f(x)},{_f(y)}" for x, y in pts)}" fill="none" '
            f'stroke="{colour}" stroke-width="1.5" stroke-linejoin="round"/>'
            f'<circle cx="{_f(pts[-1][0])}" cy="{_f(pts[-1][1])}" r="2.2" fill="{colour}"/>'
        )
    out.append("</svg>")
    return Markup("".join(out))
