"""The web pages in a real browser: a live server (uvicorn in a thread, the demo data) driven by
headless Chromium through the DevTools protocol — sign in with the form, read what a person sees,
open a tree node (htmx), change a finding's status (htmx), take screenshots of each page.

QUET_UPDATE_SCREENSHOTS=1 writes them to docs/screenshots/ for docs/web.md."""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import socket
import struct
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import uvicorn

from conftest import require
from quet.server.app import create_app
from quet.server.services import demo, orgs, users
from quet.server.settings import Settings
from quet.store.models import Campaign, Device, FindingRow

pytestmark = pytest.mark.slow

DOCS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
PASSWORD = "mat-khau-thu-nghiem-1"
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


# -- a minimal WebSocket client (RFC 6455), enough for the DevTools protocol ----------------------
class WebSocket:
    def __init__(self, url: str, timeout: float = 30.0) -> None:
        m = re.match(r"ws://([^:/]+):(\d+)(/.*)", url)
        assert m, url
        self.sock = socket.create_connection((m.group(1), int(m.group(2))), timeout=timeout)
        key = base64.b64encode(secrets.token_bytes(16)).decode()
        self.sock.sendall(
            (
                f"GET {m.group(3)} HTTP/1.1\r\nHost: {m.group(1)}:{m.group(2)}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            assert chunk, "the DevTools endpoint closed the connection"
            head += chunk
        assert head.startswith(b"HTTP/1.1 101"), head

    def _read(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            assert chunk, "connection closed"
            data += chunk
        return data

    def send(self, text: str) -> None:
        payload = text.encode()
        mask = secrets.token_bytes(4)
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", 0x81, 0x80 | n)
        elif n < 65536:
            header = struct.pack("!BBH", 0x81, 0x80 | 126, n)
        else:
            header = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def recv(self) -> str:
        message = b""
        while True:
            b1, b2 = self._read(2)
            n = b2 & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", self._read(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", self._read(8))
            mask = self._read(4) if b2 & 0x80 else b""
            data = self._read(n)
            if mask:
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
            opcode = b1 & 0x0F
            if opcode in (0x8, 0x9, 0xA) and opcode != 0x8:
                continue  # ping/pong: nothing to answer in a short session
            assert opcode != 0x8, "the browser closed the DevTools connection"
            message += data
            if b1 & 0x80:
                return message.decode()

    def close(self) -> None:
        self.sock.close()


class Text(str):
    """What a person reads. `in` ignores case: CSS upper-cases some titles, and innerText
    follows the CSS."""

    def __contains__(self, other: object) -> bool:
        return isinstance(other, str) and other.casefold() in self.casefold()


class Browser:
    """One Chromium page driven through the DevTools protocol."""

    def __init__(self, chromium: str, profile: Path) -> None:
        self.proc = subprocess.Popen(
            [chromium, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
             "--window-size=1280,900", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert self.proc.stderr is not None
        port = 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not port:
            line = self.proc.stderr.readline()
            m = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            if m:
                port = int(m.group(1))
        assert port, "Chromium did not open its DevTools port"
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()  # drain
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as r:
            pages = [p for p in json.load(r) if p["type"] == "page"]
        self.ws = WebSocket(pages[0]["webSocketDebuggerUrl"])
        self.next_id = 0
        self.events: list[dict[str, Any]] = []
        self.call("Page.enable")
        self.call("Runtime.enable")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                assert "error" not in msg, msg
                result: dict[str, Any] = msg.get("result", {})
                return result
            self.events.append(msg)

    def wait_event(self, method: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i, e in enumerate(self.events):
                if e.get("method") == method:
                    del self.events[: i + 1]
                    return
            self.events.append(json.loads(self.ws.recv()))
        raise AssertionError(f"no {method} within {timeout}s")

    def goto(self, url: str) -> Text:
        self.events.clear()
        self.call("Page.navigate", url=url)
        self.wait_event("Page.loadEventFired")
        return self.text()

    def js(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=True)  # fmt: skip
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def text(self) -> Text:
        return Text(self.js("document.body.innerText"))

    def submit(self, expression: str) -> Text:
        """Run `expression` (which submits a form) and wait for the next page."""
        self.events.clear()
        self.js(expression)
        self.wait_event("Page.loadEventFired")
        return self.text()

    def wait_for(self, expression: str, timeout: float = 15.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"never true: {expression}")

    def screenshot(self, name: str) -> bytes:
        height = int(self.js("document.documentElement.scrollHeight"))
        self.call("Emulation.setDeviceMetricsOverride", width=1280, height=min(height, 4000),
                  deviceScaleFactor=1, mobile=False)  # fmt: skip
        data = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        self.call("Emulation.clearDeviceMetricsOverride")
        if os.environ.get("QUET_UPDATE_SCREENSHOTS") == "1":
            DOCS.mkdir(parents=True, exist_ok=True)
            (DOCS / f"web-{name}.png").write_bytes(data)
        return data

    def close(self) -> None:
        self.ws.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# -- the live server ------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("quet-web-live")
    os.environ["QUET_HOME"] = str(home)
    settings = Settings(database_url=f"sqlite:///{home / 'server.sqlite'}",
                        secret_key="browser-test-secret-0123456789")  # fmt: skip
    app = create_app(settings)
    with app.state.db.sessions() as session:
        demo.seed(session)
        root = orgs.root(session)
        cb = orgs.by_code(session, "CB")
        assert root is not None and cb is not None
        users.create_user(session, "quantri", PASSWORD, "admin", root,
                          full_name="Nguyễn Văn Quản")  # fmt: skip
        users.create_user(session, "canbo.caobang", PASSWORD, "officer", cb,
                          full_name="Bế Văn Cán")  # fmt: skip
        session.commit()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    app.state.test_db = app.state.db
    live_app[0] = app
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


live_app: list[Any] = [None]


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


def sign_in(b: Browser, base: str, username: str) -> Text:
    text = b.goto(f"{base}/login")
    assert "Đăng nhập hệ thống" in text
    return b.submit(
        "document.querySelector('#f-username').value = " + json.dumps(username) + ";"
        f"document.querySelector('#f-password').value = {json.dumps(PASSWORD)};"
        "document.querySelector('form[action=\"/login\"]').submit()"
    )


def test_an_administrator_walks_through_every_page(live: str, browser: Browser) -> None:
    b = browser
    text = b.goto(f"{live}/")
    assert "Đăng nhập hệ thống" in text  # not signed in: sent to the login page
    b.screenshot("login")
    text = sign_in(b, live, "quantri")
    # The overview: figures, the campaign, the charts.
    assert "Tổng quan" in text and "Nguyễn Văn Quản" in text
    assert "Đơn vị trong phạm vi" in text and "Tỷ lệ được bảo vệ" in text
    assert "Thiết bị nhiễm" in text and "Phát hiện chưa xử lý" in text
    assert "Chiến dịch rà quét, bóc gỡ mã độc năm 2026" in text
    assert int(b.js("document.querySelectorAll('svg.chart, svg[role=img]').length")) >= 3
    cards = b.js("[...document.querySelectorAll('#figures .card')].map(c => c.innerText)")
    orgs_card = next(c for c in cards if "phạm vi" in c.casefold())
    assert re.search(r"\b17\b", orgs_card), orgs_card  # 3 provinces and 14 agencies
    b.screenshot("overview")

    # The tree: provinces with figures; opening one loads its agencies through htmx.
    text = b.goto(f"{live}/orgs")
    for name in ("Tỉnh Cao Bằng", "Thành phố Đà Nẵng", "Thành phố Hồ Chí Minh"):
        assert name in text
    assert "Sở Y tế tỉnh Cao Bằng" not in text  # not loaded yet
    b.js("document.querySelector('li[data-code=\"CB\"] > details > summary').click()")
    b.wait_for("document.querySelector('li[data-code=\"CB-SYT\"]') !== null")
    text = b.text()
    assert "Sở Y tế tỉnh Cao Bằng" in text and "UBND huyện Hà Quảng" in text
    assert re.search(r"Quá hạn|Đã báo cáo|Đã triển khai", text)
    b.screenshot("orgs")

    # The campaign: phases, countdown, the late organisations in red.
    text = b.goto(f"{live}/campaigns")
    assert "Chiến dịch rà quét, bóc gỡ mã độc năm 2026" in text
    href = b.js("document.querySelector('#campaigns tbody a').getAttribute('href')")
    text = b.goto(f"{live}{href}")
    assert "Đợt 1" in text and "Đợt 2" in text and "còn 30 ngày" in text
    late = b.js(
        "[...document.querySelectorAll('#late tr.is-late td:first-child')].map(td => td.innerText)"
    )
    assert late and all(isinstance(n, str) and n for n in late)
    assert "UBND huyện Hà Quảng" in late or any("Sở" in n or "UBND" in n for n in late)
    colour = b.js("getComputedStyle(document.querySelector('#late .pill--overdue')).color")
    assert colour.startswith("rgb(") and int(colour[4:].split(",")[0]) > 120  # red
    b.screenshot("campaign")

    # Devices and one device.
    text = b.goto(f"{live}/devices?infected=1")
    assert "Nhiễm mã độc" in text and "Thiết bị" in text
    assert "Không có dữ liệu" not in text
    b.screenshot("devices")
    first = b.js("document.querySelector('#devices tbody a').getAttribute('href')")
    text = b.goto(f"{live}{first}")
    assert "Các lần quét" in text and "Phát hiện mã độc" in text

    # Findings: change one status with htmx (the row is swapped in place, no reload).
    text = b.goto(f"{live}/findings?status=open")
    assert "Chưa xử lý" in text
    b.screenshot("findings")
    row_id = b.js("document.querySelector('#findings tbody tr[data-status=\"open\"]').id")
    b.js(f"document.querySelector('#{row_id} select').value = 'remediated';"
         f"document.querySelector('#{row_id} button').click()")  # fmt: skip
    b.wait_for(f"document.querySelector('#{row_id}').dataset.status === 'remediated'")
    assert "Đã bóc gỡ" in b.js(f"document.querySelector('#{row_id}').innerText")
    with live_app[0].state.db.sessions() as session:
        finding = session.get(FindingRow, int(row_id.split("-")[1]))
        assert finding is not None and finding.status == "remediated"

    text = b.goto(f"{live}/audit")
    assert "Đổi trạng thái xử lý" in text and "user:quantri" in text
    b.screenshot("audit")
    text = b.goto(f"{live}/upload")
    assert "Tệp kết quả quét (JSON)" in text
    b.screenshot("upload")

    # English, then sign out.
    text = b.goto(f"{live}/lang/en?next=/")
    assert "Overview" in text and "Organisations in scope" in text
    text = b.goto(f"{live}/lang/vi?next=/")
    assert "Tổng quan" in text
    text = b.submit("document.querySelector('form[action=\"/logout\"]').submit()")
    assert "Bạn đã đăng xuất." in text


def test_a_provincial_officer_sees_only_the_province(live: str, browser: Browser) -> None:
    b = browser
    text = sign_in(b, live, "canbo.caobang")
    assert "Tỉnh Cao Bằng" in text
    text = b.goto(f"{live}/orgs")
    assert "Sở Y tế tỉnh Cao Bằng" in text
    assert "Đà Nẵng" not in text and "Hồ Chí Minh" not in text
    text = b.goto(f"{live}/orgs/DN")
    assert "Không tìm thấy trang yêu cầu." in text
    text = b.goto(f"{live}/devices")
    assert "cb-" in text and "dn-" not in text and "hcm-" not in text
    with live_app[0].state.db.sessions() as session:
        campaign = session.scalars(sa.select(Campaign)).first()
        assert campaign is not None
        other = session.scalars(sa.select(Device).where(Device.hostname.startswith("dn-"))).first()
        assert other is not None
        campaign_id, other_id = campaign.id, other.id
    text = b.goto(f"{live}/devices/{other_id}")
    assert "Không tìm thấy trang yêu cầu." in text
    text = b.goto(f"{live}/campaigns/{campaign_id}")
    assert "Sở Y tế tỉnh Cao Bằng" in text and "Đà Nẵng" not in text
    assert b.js("document.querySelector('#relay') !== null")  # an officer relays
