"""Server-side SVG charts: valid XML, escaped text, the right number of marks, local number formats."""

from __future__ import annotations

import itertools
import math
import re
import xml.etree.ElementTree as ET
from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from markupsafe import Markup

from quet.server.web.charts import bar_chart, donut, line_chart, nice_ticks, sparkline

NS = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>alert("x")</script> & "quoted" \'single\''


def parse(svg: Markup) -> ET.Element:
    assert isinstance(svg, Markup)
    root = ET.fromstring(str(svg))
    assert root.tag == f"{NS}svg"
    return root


def by_class(root: ET.Element, tag: str, cls: str) -> list[ET.Element]:
    return [e for e in root.iter(f"{NS}{tag}") if cls in (e.get("class") or "").split()]


def texts(root: ET.Element) -> list[str]:
    return ["".join(e.itertext()) for e in root.iter(f"{NS}text")]


def assert_accessible(root: ET.Element, title: str) -> None:
    assert root.get("role") == "img"
    assert root.get("aria-label") == title
    first = root[0]
    assert first.tag == f"{NS}title" and first.text == title


# ---------- bar chart ----------


def test_bar_chart_one_bar_per_label_with_vietnamese_numbers() -> None:
    labels = ["Hà Nội", "TP Hồ Chí Minh", "Huế"]
    root = parse(bar_chart(labels, [1234567, 600_000, 3.5], title="Thiết bị theo tỉnh"))
    assert_accessible(root, "Thiết bị theo tỉnh")
    bars = by_class(root, "rect", "bar")
    assert len(bars) == 3
    values = ["".join(e.itertext()) for e in by_class(root, "text", "value")]
    assert values == ["1.234.567", "600.000", "3,5"]
    assert [e.findtext(f"{NS}title") for e in bars] == [
        "Hà Nội: 1.234.567",
        "TP Hồ Chí Minh: 600.000",
        "Huế: 3,5",
    ]
    # Bars grow with their values: the tallest bar is the biggest value.
    heights = [float(b.get("height", "0")) for b in bars]
    assert heights[0] > heights[1] > heights[2] > 0
    assert math.isclose(heights[1] / heights[0], 600_000 / 1_234_567, rel_tol=0.01)
    desc = root.findtext(f"{NS}desc")
    assert desc is not None and "Hà Nội: 1.234.567" in desc


def test_bar_chart_english_numbers_and_axis_ticks() -> None:
    root = parse(bar_chart(["a", "b"], [1_500_000, 250_000], title="t", lang="en"))
    all_text = texts(root)
    assert "1,500,000" in all_text
    assert "500,000" in all_text  # a round y tick
    assert not any(re.fullmatch(r"\d{1,3}(\.\d{3})+", s) for s in all_text)


def test_bar_chart_escapes_hostile_labels_and_title() -> None:
    svg = bar_chart([HOSTILE, "ok"], [1, 2], title=HOSTILE, horizontal=True)
    assert "<script>" not in str(svg)
    root = parse(svg)
    assert root.get("aria-label") == HOSTILE
    assert not list(root.iter("script")) and not list(root.iter(f"{NS}script"))
    bars = by_class(root, "rect", "bar")
    assert bars[0].findtext(f"{NS}title") == f"{HOSTILE}: 1"


def test_bar_chart_horizontal_and_negative_values() -> None:
    root = parse(bar_chart(["tăng", "giảm", "đứng"], [5, -3, 0], title="Δ", horizontal=True))
    bars = by_class(root, "rect", "bar")
    assert len(bars) == 3
    # The negative bar ends where the positive one starts (at zero).
    pos, neg = bars[0], bars[1]
    assert math.isclose(
        float(neg.get("x", "0")) + float(neg.get("width", "0")),
        float(pos.get("x", "0")),
        abs_tol=0.2,
    )


def test_bar_chart_colours_cycle_and_defaults_to_one_colour() -> None:
    one = parse(bar_chart(["a", "b", "c"], [1, 2, 3], title="t"))
    assert {b.get("fill") for b in by_class(one, "rect", "bar")} == {"#a4161a"}
    many = parse(bar_chart(["a", "b", "c"], [1, 2, 3], title="t", colors=["#111", "#222"]))
    assert [b.get("fill") for b in by_class(many, "rect", "bar")] == ["#111", "#222", "#111"]


def test_bar_chart_rejects_bad_input_and_shows_empty_state() -> None:
    with pytest.raises(ValueError, match="2 labels but 1 values"):
        bar_chart(["a", "b"], [1], title="t")
    with pytest.raises(ValueError, match="not a finite number"):
        bar_chart(["a"], [float("nan")], title="t")
    empty = parse(bar_chart([], [], title="Trống"))
    assert "Chưa có dữ liệu" in texts(empty)
    assert "No data yet" in texts(parse(bar_chart([], [], title="Empty", lang="en")))


def test_output_is_deterministic() -> None:
    def make() -> str:
        return str(bar_chart(["x", "y"], [3, 4], title="t")) + str(
            line_chart({"s": [(date(2026, 1, 1), 1), (date(2026, 1, 2), 2)]}, title="l")
        )

    assert make() == make()
    a = parse(bar_chart(["x"], [1], title="one"))
    b = parse(bar_chart(["x"], [1], title="two"))
    assert a.get("aria-describedby") != b.get("aria-describedby")


# ---------- line chart ----------


def test_line_chart_series_points_legend_and_time_spacing() -> None:
    series = {
        "Phát hiện": [(date(2026, 1, 3), 30), (date(2026, 1, 1), 10), (date(2026, 1, 2), 20)],
        "Đã bóc gỡ": [(date(2026, 1, 1), 5), (date(2026, 1, 5), 1_234)],
    }
    root = parse(line_chart(series, title="Diễn biến"))
    assert_accessible(root, "Diễn biến")
    groups = by_class(root, "g", "series")
    assert [g.get("data-series") for g in groups] == ["Phát hiện", "Đã bóc gỡ"]
    assert len(by_class(root, "circle", "point")) == 5
    legend = by_class(root, "g", "legend")[0]
    assert [t.text for t in legend.iter(f"{NS}text")] == ["Phát hiện", "Đã bóc gỡ"]
    first = groups[0].find(f"{NS}polyline")
    assert first is not None
    xs = [float(p.split(",")[0]) for p in first.get("points", "").split()]
    assert xs == sorted(xs)  # given out of order, drawn in date order
    gap1, gap2 = xs[1] - xs[0], xs[2] - xs[1]
    second = groups[1].find(f"{NS}polyline")
    assert second is not None
    xs2 = [float(p.split(",")[0]) for p in second.get("points", "").split()]
    # 1 → 5 January is four times the 1 → 2 January gap.
    assert math.isclose(xs2[1] - xs2[0], 4 * gap1, rel_tol=0.01)
    assert math.isclose(gap1, gap2, rel_tol=0.01)
    tips = [p.findtext(f"{NS}title") for p in by_class(root, "circle", "point")]
    assert "Đã bóc gỡ, 05/01/2026: 1.234" in tips
    assert "1.000" in texts(root)  # a y tick in Vietnamese format
    assert "01/01" in texts(root)  # vi short dates on the x axis


def test_line_chart_english_dates_and_categories() -> None:
    root = parse(
        line_chart({"a": [(date(2026, 1, 5), 1), (date(2026, 2, 5), 2)]}, title="t", lang="en")
    )
    assert "01-05" in texts(root)
    cats = parse(line_chart({"q": [("Q1", 1.5), ("Q2", 3), ("Q3", 2)]}, title="t", lang="en"))
    assert [s for s in texts(cats) if s.startswith("Q")] == ["Q1", "Q2", "Q3"]
    points = by_class(cats, "circle", "point")
    assert [p.findtext(f"{NS}title") for p in points] == ["q, Q1: 1.5", "q, Q2: 3", "q, Q3: 2"]


def test_line_chart_datetimes_escaping_and_empty() -> None:
    root = parse(
        line_chart(
            {HOSTILE: [(datetime(2026, 1, 1, 6), 1), (datetime(2026, 1, 1, 18), 2)]},
            title=HOSTILE,
            show_points=False,
        )
    )
    assert by_class(root, "g", "series")[0].get("data-series") == HOSTILE
    assert not by_class(root, "circle", "point")
    assert "Chưa có dữ liệu" in texts(parse(line_chart({}, title="t")))
    assert "Chưa có dữ liệu" in texts(parse(line_chart({"a": []}, title="t")))


def test_line_chart_thins_x_ticks() -> None:
    days = [(date(2026, 3, 1).replace(day=d), float(d)) for d in range(1, 31)]
    root = parse(line_chart({"d": days}, title="t", max_x_ticks=6))
    assert 4 <= len(by_class(root, "line", "tick")) <= 8


# ---------- donut ----------


def test_donut_slices_percentages_and_total() -> None:
    parts = [("Đã báo cáo", 30.0), ("Chưa", 10.0), ("Bỏ qua", 0.0)]
    root = parse(donut(parts, title="Tiến độ", center_label="đơn vị"))
    assert_accessible(root, "Tiến độ")
    slices = by_class(root, "circle", "slice")
    assert len(slices) == 2  # a zero part has no slice but stays in the legend
    dash = [tuple(map(float, s.get("stroke-dasharray", "").split())) for s in slices]
    circumference = dash[0][0] + dash[0][1]
    assert math.isclose(dash[0][0] / circumference, 0.75, abs_tol=0.001)
    assert math.isclose(sum(d[0] for d in dash), circumference, abs_tol=0.05)
    assert "40" in [e.text for e in by_class(root, "text", "total")]
    legend = " ".join("".join(t.itertext()) for t in by_class(root, "g", "legend")[0])
    assert "75%" in legend and "25%" in legend and "Bỏ qua" in legend
    assert slices[0].findtext(f"{NS}title") == "Đã báo cáo: 30 (75%)"


def test_donut_decimal_percent_formats_and_errors() -> None:
    vi = parse(donut([("a", 1), ("b", 2)], title="t"))
    en = parse(donut([("a", 1), ("b", 2)], title="t", lang="en"))
    assert "33,3%" in (vi.findtext(f"{NS}desc") or "")
    assert "33.3%" in (en.findtext(f"{NS}desc") or "")
    with pytest.raises(ValueError, match="negative"):
        donut([("a", -1)], title="t")
    assert "Chưa có dữ liệu" in texts(parse(donut([("a", 0)], title="t")))
    full = parse(donut([(HOSTILE, 5)], title="t"))
    assert len(by_class(full, "circle", "slice")) == 1


# ---------- sparkline ----------


def test_sparkline_points_and_label() -> None:
    root = parse(sparkline([1, 3, 2, 1500], title="Phát hiện"))
    line = root.find(f"{NS}polyline")
    assert line is not None and len(line.get("points", "").split()) == 4
    assert root.get("aria-label") == "Phát hiện: 1 → 1.500"
    ys = [float(p.split(",")[1]) for p in line.get("points", "").split()]
    assert ys.index(min(ys)) == 3  # the biggest value is highest (smallest y)
    empty = parse(sparkline([]))
    assert empty.find(f"{NS}polyline") is None
    flat = parse(sparkline([2, 2, 2]))
    assert flat.find(f"{NS}polyline") is not None


# ---------- ticks ----------


@given(
    st.floats(min_value=-1e9, max_value=1e9, allow_nan=False),
    st.floats(min_value=0, max_value=1e9, allow_nan=False),
)
def test_nice_ticks_cover_the_range_evenly(lo: float, extent: float) -> None:
    hi = lo + extent
    ticks = nice_ticks(lo, hi)
    assert ticks[0] <= lo + 1e-6 * max(1.0, abs(lo))
    assert ticks[-1] >= hi - 1e-6 * max(1.0, abs(hi))
    assert 2 <= len(ticks) <= 12
    step = ticks[1] - ticks[0]
    assert step > 0
    assert all(math.isclose(b - a, step, rel_tol=1e-6) for a, b in itertools.pairwise(ticks))
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert any(math.isclose(mantissa, m, rel_tol=1e-6) for m in (1, 2, 2.5, 5, 10))


def test_nice_ticks_examples() -> None:
    assert nice_ticks(0, 1_234_567) == [0, 500_000, 1_000_000, 1_500_000]
    assert nice_ticks(0, 0) == [0, 1, 2, 3, 4]
    assert nice_ticks(-5, 3) == [-6, -4, -2, 0, 2, 4]


@given(st.lists(st.text(max_size=30), min_size=1, max_size=6), st.text(max_size=30))
def test_any_text_gives_valid_svg(labels: list[str], title: str) -> None:
    values = [float(i + 1) for i in range(len(labels))]
    bars = parse(bar_chart(labels, values, title=title))
    assert len(by_class(bars, "rect", "bar")) == len(labels)
    parse(bar_chart(labels, values, title=title, horizontal=True))
    parse(donut(list(zip(labels, values, strict=True)), title=title))
    lines = parse(line_chart({lab: [(lab, 1.0)] for lab in labels}, title=title))
    assert len(by_class(lines, "g", "series")) == len(set(labels))
    parse(sparkline(values, title=title))
