"""The botnet pages in headless Chromium against a live server (uvicorn in a thread) on SQLite and
PostgreSQL: /botnet shows the month's figures, the two-year trend and the units' IPs; an
organisation's page lists its IPs and takes digest settings; the public /lookup says yes or no.

QUET_UPDATE_SCREENSHOTS=1 writes docs/screenshots/web-botnet*.png (see test_web_browser.py)."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pyarrow as pa
import pytest
import uvicorn

from conftest import require
from conftest_db import BACKENDS, database_url
from quet.server.app import create_app
from quet.server.services import botnet, orgs, users
from quet.server.settings import Settings
from quet.store.models.botnet import BotnetDigest
from test_web_browser import Browser, free_port

pytestmark = pytest.mark.slow

PASSWORD = "mat-khau-thu-nghiem-1"
LATEST = date(2026, 11, 20)


def _ips(rows: list[dict[str, Any]]) -> pa.Table:
    base = {"days": 1, "asn": 7552, "isp": "Viettel", "province": "Hà Nội", "country": "VN"}
    return pa.Table.from_pylist([dict(base, **r) for r in rows])


def _stats(org_ids: dict[str, int]) -> pa.Table:
    """Two years of daily figures falling from ~2.0 M to ~1.05 M (the 2020 campaign's shape),
    with months for this month, last month and a year ago, and breakdowns."""
    rows: list[dict[str, Any]] = []
    first = LATEST - timedelta(days=729)
    for i in range(730):
        d = first + timedelta(days=i)
        rows.append({"period": "day", "start": d, "dim": "all", "key": "", "label": "",
                     "ips": 2_014_512 - (2_014_512 - 1_052_479) * i // 729})  # fmt: skip
        for code, n in (("HN", 40), ("SOYT", 12)):
            rows.append({"period": "day", "start": d, "dim": "org", "key": str(org_ids[code]),
                         "label": code, "ips": n + i % 5})  # fmt: skip
    months = {date(2026, 11, 1): 1_052_479, date(2026, 10, 1): 1_210_000,
              date(2025, 11, 1): 2_014_512}  # fmt: skip
    for start, total in months.items():
        rows.append({"period": "month", "start": start, "dim": "all", "key": "", "label": "",
                     "ips": total})  # fmt: skip
        for dim, key, label, share in (
            ("family", "mirai", "mirai", 0.5),
            ("family", "avalanche-andromeda", "avalanche-andromeda", 0.2),
            ("province", "Hà Nội", "Hà Nội", 0.3),
            ("province", "TP. Hồ Chí Minh", "TP. Hồ Chí Minh", 0.35),
            ("asn", "7552", "Viettel Group", 0.4),
            ("asn", "45899", "VNPT Corp", 0.3),
            ("sector", "health", "health", 0.01),
            ("sector", "", "", 0.9),
            ("org", str(org_ids["HN"]), "Thành phố Hà Nội", 0.002),
            ("org", str(org_ids["SOYT"]), "Sở Y tế Hà Nội", 0.001),
            ("org", "", "", 0.99),
        ):
            rows.append({"period": "month", "start": start, "dim": dim, "key": key,
                         "label": label, "ips": int(total * share)})  # fmt: skip
    return pa.Table.from_pylist(rows)


@pytest.fixture(scope="module", params=BACKENDS)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Any]]:
    home = tmp_path_factory.mktemp("quet-web-botnet")
    os.environ["QUET_HOME"] = str(home)
    with database_url(request.param, home) as url:
        app = create_app(Settings(database_url=url, secret_key="browser-botnet-secret-0123456789"))
        with app.state.db.sessions() as session:
            root = orgs.root(session)
            assert root is not None
            hn = orgs.create(session, "HN", "Thành phố Hà Nội", "province", root)
            soyt = orgs.create(session, "SOYT", "Sở Y tế Hà Nội", "department", hn,
                               sector="health", ip_ranges=["10.1.2.0/24"])  # fmt: skip
            users.create_user(session, "quantri", PASSWORD, "admin", root)
            users.create_user(session, "canbo.soyt", PASSWORD, "officer", soyt)
            session.flush()
            ids = {"HN": hn.id, "SOYT": soyt.id}
            botnet.apply_stats(session, _stats(ids))
            botnet.apply_ips(
                session,
                _ips(
                    [
                        {"ip": "10.1.2.7", "family": "mirai", "first_day": LATEST,
                         "last_day": LATEST, "org_id": soyt.id},
                        {"ip": "10.1.2.8", "family": "avalanche-andromeda",
                         "first_day": LATEST - timedelta(days=9), "last_day": LATEST,
                         "org_id": soyt.id, "days": 6},
                        {"ip": "10.1.2.9", "family": "gozi", "first_day": LATEST - timedelta(days=8),
                         "last_day": LATEST - timedelta(days=2), "org_id": soyt.id},
                    ]
                ),
            )  # fmt: skip
            session.commit()
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started
        try:
            yield f"http://127.0.0.1:{port}", app
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            app.state.db.dispose()


@pytest.fixture
def browser(tmp_path: Any) -> Iterator[Browser]:
    chromium = shutil.which("chromium")
    require("chromium (Debian package)", chromium is not None)
    assert chromium is not None
    b = Browser(chromium, tmp_path / "profile")
    try:
        yield b
    finally:
        b.close()


def sign_in(b: Browser, base: str, username: str, next_path: str) -> None:
    b.goto(f"{base}/login?next={next_path}")
    b.submit(
        f"document.querySelector('#f-username').value = {json.dumps(username)};"
        f"document.querySelector('#f-password').value = {json.dumps(PASSWORD)};"
        "document.querySelector('form[action=\"/login\"]').submit()"
    )


def test_botnet_page_shows_the_figures(live: tuple[str, Any], browser: Browser) -> None:
    base, _ = live
    b = browser
    sign_in(b, base, "quantri", "/botnet")
    text = b.text()
    assert "IP nhiễm mã độc botnet" in text and "Toàn quốc" in text
    month = b.js("document.querySelector('#fig-month').innerText")
    assert "1.052.479" in month  # Vietnamese grouping
    assert "▼ 13% so với tháng trước" in month, month  # 1,210,000 → 1,052,479
    assert "▼ 47,8% so với cùng kỳ" in month, month  # 2,014,512 → 1,052,479
    # The trend: one line over two years of daily rows, drawn as SVG.
    assert b.js("document.querySelectorAll('#botnet-trend svg polyline, #botnet-trend svg path').length") >= 1  # fmt: skip
    for panel, expected in (
        ("by-family", "mirai"),
        ("by-province", "TP. Hồ Chí Minh"),
        ("by-asn", "AS7552 Viettel Group"),
        ("by-sector", "Y tế"),
        ("by-org", "Sở Y tế Hà Nội"),
    ):
        assert expected in b.js(f"document.querySelector('#{panel}').innerText"), panel
        assert b.js(f"document.querySelectorAll('#{panel} svg rect').length") >= 2, panel
    statuses = b.js(
        "[...document.querySelectorAll('#unit-ips tr[data-ip]')]"
        ".map(r => r.dataset.ip + ' ' + r.dataset.status)"
    )
    assert statuses == ["10.1.2.7 new", "10.1.2.8 active", "10.1.2.9 gone"]
    b.screenshot("botnet")
    text = b.goto(f"{base}/botnet?lang=en")
    assert "Botnet IPs" in text and "vs last month" in text and "1,052,479" in text
    b.goto(f"{base}/lang/vi?next=/botnet")


def test_botnet_page_periods_and_months_without_data(
    live: tuple[str, Any], browser: Browser
) -> None:
    base, _ = live
    b = browser
    sign_in(b, base, "quantri", "/botnet?month=2019-01")
    month = b.js("document.querySelector('#fig-month').innerText")
    assert "chưa có dữ liệu" in month, month
    assert b.js("document.querySelector('#fig-month .card-value').innerText") == "—"
    cards = b.js("document.querySelector('#botnet-figures').innerText")
    assert cards.count("chưa có dữ liệu") >= 3, cards  # this month, last month, a year ago
    # the switch: a week (the seeded data has day and month rows only)
    text = b.submit(
        "document.querySelector('#f-period').value = 'day';"
        "document.querySelector('#f-day').value = '2026-11-20';"
        "document.querySelector('form[action=\"/botnet\"]').submit()"
    )
    assert b.js("document.querySelector('#fig-month').dataset.period") == "day"
    assert b.js("document.querySelector('#botnet-trend h2').dataset.trend") == "day"
    day = b.js("document.querySelector('#fig-month').textContent")
    assert "IP botnet ngày 20/11/2026" in day and "1.052.479" in day, day
    assert "so với ngày trước" in day, day
    text = b.goto(f"{base}/botnet?period=week&day=2026-11-18")
    assert b.js("document.querySelector('#fig-month').dataset.period") == "week"
    assert "Số IP botnet theo tuần" in text
    title = b.js("document.querySelector('#fig-month .card-title').textContent")
    assert title == "IP botnet tuần 16/11/2026 – 22/11/2026", title
    assert "chưa có dữ liệu" in b.js("document.querySelector('#fig-month').innerText")


def test_org_page_lists_ips_and_saves_digest_settings(
    live: tuple[str, Any], browser: Browser
) -> None:
    base, app = live
    b = browser
    sign_in(b, base, "canbo.soyt", "/orgs/SOYT")
    text = b.text()
    assert "IP nhiễm mã độc botnet" in text and "Bản tin hằng ngày" in text
    pills = b.js("[...document.querySelectorAll('#botnet .pill')].map(p => p.innerText)")
    assert pills == ["Mới", "Còn hoạt động", "Đã hết"]
    b.js("document.querySelector('#botnet').scrollIntoView()")
    b.screenshot("botnet-org")
    text = b.submit(
        "document.querySelector('#botnet-digest input[name=email_enabled]').checked = false;"
        "document.querySelector('#botnet-digest input[name=threshold]').value = '3';"
        "document.querySelector('#botnet-digest form').submit()"
    )
    assert "Đã lưu" in text or "saved" in text
    assert b.js("document.querySelector('#botnet-digest input[name=email_enabled]').checked") is False  # fmt: skip
    with app.state.db.sessions() as session:
        soyt = orgs.by_code(session, "SOYT")
        assert soyt is not None
        row = session.get(BotnetDigest, soyt.id)
        assert row is not None and (row.email_enabled, row.threshold) == (False, 3)
        session.delete(row)
        session.commit()


def test_public_lookup_says_yes_or_no(live: tuple[str, Any], browser: Browser) -> None:
    base, _ = live
    b = browser
    text = b.goto(f"{base}/lookup")  # nobody signed in
    assert "Kiểm tra IP botnet" in text and "127.0.0.1" in text
    assert b.js("document.querySelector('#lookup-result').dataset.listed") == "no"
    text = b.submit(
        "document.querySelector('#f-ip').value = '10.1.2.8';"
        "document.querySelector('form[action=\"/lookup\"]').submit()"
    )
    assert b.js("document.querySelector('#lookup-result').dataset.listed") == "yes"
    assert "CÓ trong danh sách IP botnet ngày 20/11/2026" in text
    # yes or no, the day and generic advice: no family, nothing about the owner or the ISP
    for secret in ("avalanche-andromeda", "Họ mã độc", "Sở Y tế", "Viettel", "7552"):
        assert secret not in text, secret
    b.screenshot("lookup")
    text = b.goto(f"{base}/lookup?ip=10.1.2.9&lang=en")
    assert "is not listed" in text  # gone two days before the newest feed day
