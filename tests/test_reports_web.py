"""Reports through the API (SQLite and PostgreSQL) and in a real browser: a unit's officer opens
the report page, overrides a figure with a reason, submits; the province's officer accepts; the
download buttons answer DOCX, XLSX and PDF with the right content types."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

import reports_data as rd
from conftest import require
from quet.errors import InputError
from quet.server.app import create_app
from quet.server.services import reports
from quet.server.settings import Settings
from quet.store.models import AuditEntry
from server_fixtures import login
from test_web_browser import PASSWORD, Browser, Text, free_port

pytest_plugins = ["server_fixtures"]

TODAY = datetime.now(UTC).date()
MEDIA = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}


def _world(app: FastAPI) -> int:
    with app.state.db.sessions() as s:
        world = rd.build(s, TODAY)
        rd.add_unit_data(s, world)
        for username, role, code in (
            ("canbo.cba", "officer", "CB-A"),
            ("xem.cba", "viewer", "CB-A"),
            ("canbo.cb", "officer", "CB"),
            ("canbo.dn", "officer", "DN"),
        ):
            rd.principal(s, username, role, code)
        s.commit()
        return world.campaign.id


def _as(client: TestClient, username: str) -> None:
    client.cookies.clear()
    client.headers.pop("X-CSRF-Token", None)
    login(client, username, PASSWORD)


# -- the API --------------------------------------------------------------------------------------
def test_api_workflow_and_downloads(server_app: FastAPI, client: TestClient) -> None:
    cid = _world(server_app)
    url = f"/api/v1/reports/{cid}/CB-A"
    _as(client, "canbo.cba")
    mine = client.get(f"/api/v1/reports/{cid}").json()
    assert mine["org_code"] == "CB-A" and mine["status"] == "draft"
    assert mine["phase"] == "Đợt 1" and not mine["late"]
    figures = {f["key"]: f for f in mine["figures"]}
    assert figures["devices"]["value"] == 5 and figures["coverage"]["value"] == 40.0
    assert figures["received"]["label"].startswith("Tổng số cơ quan, tổ chức, doanh nghiệp")

    r = client.patch(url, json={"evaluation": "Đã rà quét 100% máy trạm.", "place": "Cao Bằng"})
    assert r.status_code == 200 and r.json()["evaluation"] == "Đã rà quét 100% máy trạm."
    assert client.patch(url, json={"bogus": 1}).status_code == 422
    # An override without a reason is refused; with one it is kept and shown in the note.
    assert client.put(f"{url}/overrides/devices", json={"value": 6}).status_code == 422
    r = client.put(f"{url}/overrides/devices", json={"value": 6, "reason": "   "})
    assert r.status_code == 400 and "reason" in r.json()["detail"]
    r = client.put(f"{url}/overrides/devices", json={"value": -1, "reason": "x"})
    assert r.status_code == 400
    # A figure that contradicts the others: 500 scanned of 5 devices.
    r = client.put(f"{url}/overrides/scanned", json={"value": 500, "reason": "x"})
    assert r.status_code == 400 and "mâu thuẫn" in r.json()["detail"]
    r = client.put(f"{url}/overrides/devices", json={"value": 6, "reason": "Thêm 1 máy chủ"})
    assert r.status_code == 200
    row = next(f for f in r.json()["figures"] if f["key"] == "devices")
    assert (row["value"], row["measured"], row["overridden"]) == (6, 5, True)
    assert "Thêm 1 máy chủ" in row["note"]
    assert client.put(f"{url}/overrides/nope", json={"value": 1, "reason": "x"}).status_code == 422

    assert client.post(f"{url}/submit").json()["status"] == "submitted"
    assert client.patch(url, json={"proposals": "x"}).status_code == 409  # locked
    assert client.post(f"{url}/accept").status_code == 403  # not by the unit itself
    for fmt, media in MEDIA.items():
        r = client.get(f"{url}.{fmt}")
        assert r.status_code == 200 and r.headers["content-type"] == media, fmt
        assert r.headers["content-disposition"].endswith(f'-CB-A.{fmt}"')
        assert len(r.content) > 1000
    assert client.get(f"{url}.txt").status_code == 422

    _as(client, "xem.cba")
    assert client.patch(url, json={"evaluation": "x"}).status_code == 403
    _as(client, "canbo.dn")
    assert client.get(url).status_code == 404  # another province's unit
    _as(client, "canbo.cb")
    province = client.get(f"/api/v1/reports/{cid}").json()
    assert province["org_code"] == "CB"
    assert province["missing"] == [
        "Sở Tài chính tỉnh Cao Bằng",
        "Sở Giáo dục và Đào tạo tỉnh Cao Bằng",
    ]
    assert {c["code"]: c["status"] for c in province["children"]}["CB-A"] == "submitted"
    assert client.post(f"{url}/return", json={"reason": ""}).status_code == 422
    r = client.post(f"{url}/accept")
    assert r.status_code == 200 and r.json()["status"] == "accepted"
    assert r.json()["decided_by"] == "user:canbo.cb"
    with server_app.state.db.sessions() as s:
        actions = list(
            s.scalars(sa.select(AuditEntry.action).where(AuditEntry.action.like("report.%")))
        )
    assert actions == ["report.edit", "report.override", "report.submit", "report.accept"]


def test_monthly_download_and_the_report_pages(server_app: FastAPI, client: TestClient) -> None:
    cid = _world(server_app)
    _as(client, "canbo.cb")
    r = client.get("/api/v1/reports/monthly/2026-10.pdf")
    assert r.status_code == 200 and r.headers["content-type"] == MEDIA["pdf"]
    assert client.get("/api/v1/reports/monthly/2026-13.pdf").status_code == 400
    page = client.get("/reports")
    assert page.status_code == 200 and "Sở Y tế tỉnh Cao Bằng" in page.text
    page = client.get(f"/reports/{cid}/CB")
    assert page.status_code == 200
    assert "Tổng số cơ quan, tổ chức, doanh nghiệp nhận được thông tin về chiến dịch" in page.text
    assert client.get(f"/reports/{cid}/DN").status_code == 404
    r = client.get("/reports/latest/CB-A.xlsx", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/api/v1/reports/{cid}/CB-A.xlsx"
    assert client.get(f"/reports/{cid}/CB/preview").text.count("PHỤ LỤC") >= 1
    # Download buttons on the organisation and campaign pages.
    assert 'href="/reports/latest/CB.docx"' in client.get("/orgs/CB").text
    assert f'href="/api/v1/reports/{cid}/CB.pdf"' in client.get(f"/campaigns/{cid}").text


def test_web_form_parses_values_as_people_type_them() -> None:
    from quet.server.web.pages.reports import parse_value

    assert parse_value("devices", "1.234") == 1234
    assert parse_value("devices", "1 234") == 1234
    assert parse_value("coverage", "87,5") == 87.5
    assert parse_value("coverage", "87,5 %") == 87.5
    assert parse_value("devices", "  ") is None


@given(st.sampled_from(["devices", "coverage"]), st.text(max_size=20))
def test_web_value_parser_never_crashes(key: str, text: str) -> None:
    from quet.server.web.pages.reports import parse_value

    try:
        value = parse_value(key, text)
    except InputError:
        return
    assert value is None or isinstance(value, float)


# -- the browser ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, FastAPI, int]]:
    home = tmp_path_factory.mktemp("quet-reports-live")
    old = os.environ.get("QUET_HOME")
    os.environ["QUET_HOME"] = str(home)
    settings = Settings(database_url=f"sqlite:///{home / 'server.sqlite'}",
                        secret_key="browser-test-secret-0123456789")  # fmt: skip
    app = create_app(settings)
    cid = _world(app)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    try:
        yield f"http://127.0.0.1:{port}", app, cid
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        if old is not None:
            os.environ["QUET_HOME"] = old


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    chromium = shutil.which("chromium")
    require("chromium (Debian package)", chromium is not None)
    assert chromium is not None
    b = Browser(chromium, tmp_path / "profile")
    try:
        yield b
    finally:
        b.close()


def _sign_in(b: Browser, base: str, username: str) -> Text:
    b.call("Network.clearBrowserCookies")
    b.goto(f"{base}/login")
    return b.submit(
        f"document.querySelector('#f-username').value = {json.dumps(username)};"
        f"document.querySelector('#f-password').value = {json.dumps(PASSWORD)};"
        "document.querySelector('form[action=\"/login\"]').submit()"
    )


def _fetch_type(b: Browser, href: str) -> str:
    return str(
        b.js(
            f"fetch({json.dumps(href)}, {{credentials: 'same-origin'}})"
            ".then(r => r.status + ' ' + r.headers.get('content-type'))"
        )
    )


@pytest.mark.slow
def test_officer_overrides_submits_and_the_province_accepts(
    live: tuple[str, FastAPI, int], browser: Browser
) -> None:
    base, app, cid = live
    b = browser
    _sign_in(b, base, "canbo.cba")
    text = b.goto(f"{base}/reports")
    assert "Báo cáo kết quả triển khai" in text and "Sở Y tế tỉnh Cao Bằng" in text
    href = b.js("document.querySelector('.own-report a').getAttribute('href')")
    assert href == f"/reports/{cid}/CB-A"
    text = b.goto(f"{base}{href}")
    assert "Tổng số cơ quan, tổ chức, doanh nghiệp nhận được thông tin về chiến dịch" in text
    assert b.js("document.querySelector('#figures tr[data-key=devices] .value').innerText") == "5"
    # The deadline is shown with its phase, the one the late flag is judged by.
    assert b.js("document.querySelector('.phase').innerText") == "Đợt 1"

    # Part 1, then an override with its reason.
    text = b.submit(
        "document.querySelector('#f-evaluation').value = 'Đã rà quét toàn bộ máy trạm của Sở.';"
        "document.querySelector('#save-text').click()"
    )
    assert "Đã lưu" in text or "saved" in text
    text = b.submit(
        "document.querySelector('#f-key').value = 'devices';"
        "document.querySelector('#f-value').value = '1.205';"
        "document.querySelector('#f-reason').value = 'Bổ sung máy trạm chưa cài tác tử';"
        "document.querySelector('#override').click()"
    )
    row = "document.querySelector('#figures tr[data-key=devices]')"
    assert b.js(f"{row}.querySelector('.value').innerText") == "1.205"
    assert b.js(f"{row}.querySelector('.measured').innerText") == "5"
    assert "Bổ sung máy trạm chưa cài tác tử" in b.js(f"{row}.querySelector('.note').innerText")
    # An override without a reason is refused on the page.
    text = b.submit(
        "document.querySelector('#f-key').value = 'scanned';"
        "document.querySelector('#f-value').value = '9';"
        "document.querySelector('#f-reason').removeAttribute('required');"
        "document.querySelector('#f-reason').value = '';"
        "document.querySelector('#override').click()"
    )
    assert "Phải ghi lý do khi điều chỉnh số liệu." in text
    assert b.js("document.querySelector('#figures tr[data-key=scanned] .value').innerText") == "3"
    b.screenshot("report-draft")

    # Downloads answer with the right types.
    for fmt, media in MEDIA.items():
        link = b.js(
            f"document.querySelector('#downloads a[data-format={fmt}]').getAttribute('href')"
        )
        assert _fetch_type(b, link) == f"200 {media}"

    text = b.submit("document.querySelector('#submit').click()")
    assert b.js("document.querySelector('#status').innerText").strip() == "Đã gửi"
    assert b.js("document.querySelector('#submit') === null")  # locked
    assert b.js("document.querySelector('#locked') !== null")

    # The province's officer sees it submitted and accepts it.
    _sign_in(b, base, "canbo.cb")
    text = b.goto(f"{base}/reports")
    state = b.js(
        "document.querySelector('.children-reports tr[data-code=\"CB-A\"]').dataset.status"
    )
    assert state == "submitted"
    assert "2 đơn vị chưa báo cáo" in text
    b.screenshot("reports")
    month = b.js("document.querySelector('#monthly a[data-format=pdf]').getAttribute('href')")
    assert _fetch_type(b, month) == f"200 {MEDIA['pdf']}"
    b.goto(f"{base}/reports/{cid}/CB-A")
    b.submit("document.querySelector('#accept').click()")
    assert b.js("document.querySelector('#status').innerText").strip() == "Đã chấp nhận"
    # The province's own report counts CB-A's submitted figures (1.205 devices).
    b.goto(f"{base}/reports/{cid}/CB")
    assert (
        b.js("document.querySelector('#figures tr[data-key=devices] .value').innerText") == "1.205"
    )
    # Coverage keeps the unit's ratio (40 % of its 1.205 devices), not 2 / 1.205.
    assert (
        b.js("document.querySelector('#figures tr[data-key=coverage] .value').innerText") == "40%"
    )
    b.screenshot("report-province")
    with app.state.db.sessions() as s:
        unit = rd.org(s, "CB-A")
        campaign = reports.latest_campaign(s, unit)
        assert campaign is not None
        row_ = reports.get_report(s, campaign, unit)
        assert row_ is not None and row_.status == "accepted"
        assert row_.evaluation == "Đã rà quét toàn bộ máy trạm của Sở."
        assert row_.overrides["devices"]["value"] == 1205
