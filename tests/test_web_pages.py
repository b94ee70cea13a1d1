"""The web pages through the app (TestClient) on SQLite and PostgreSQL: signing in with the form
and its CSRF token, every page in Vietnamese and English, scoping to the person's subtree, forms
refusing a missing CSRF token, and the changes the pages make (status, upload, edit, relay, ack)."""

from __future__ import annotations

import email
import email.policy
import json
import re
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from quet.server import security
from quet.server.services import demo, orgs, users
from quet.server.web.i18n import CATALOG
from quet.store.models import (
    Campaign,
    Device,
    EnrollmentToken,
    FindingRow,
    OrgRollup,
    Participation,
    User,
)
from server_fixtures import make_user

pytest_plugins = ["server_fixtures"]  # server_app, client, db_session

PAGES = Path(__file__).resolve().parents[1] / "src" / "quet" / "server" / "web" / "templates"
PASSWORD = "mat-khau-thu-nghiem-1"


# -- helpers --------------------------------------------------------------------------------------
def form_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]*)"', html)
    assert found, "no csrf_token field on the page"
    return found.group(1)


def sign_in(c: TestClient, username: str, password: str = PASSWORD) -> str:
    """Sign in with the login form; returns the session's CSRF token (from the next page)."""
    c.cookies.clear()
    page = c.get("/login")
    response = c.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": form_token(page.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    home = c.get(response.headers["location"])
    assert home.status_code == 200
    return form_token(home.text)


def person(session: Session, username: str, role: str, org_code: str, **kw: object) -> None:
    org = orgs.by_code(session, org_code)
    assert org is not None
    users.create_user(session, username, PASSWORD, role, org, full_name=f"Người {username}", **kw)  # type: ignore[arg-type]
    session.commit()


@pytest.fixture
def seeded(db_session: Session) -> Session:
    """The demo (3 provinces, 14 agencies, a campaign, ~60 devices) and four people."""
    demo.seed(db_session)
    db_session.commit()
    person(db_session, "quantri", "admin", "VN")
    person(db_session, "tinh.cb", "officer", "CB")
    person(db_session, "xem.cb", "viewer", "CB")
    person(db_session, "tinh.dn", "officer", "DN")
    return db_session


def campaign_id(session: Session) -> int:
    campaign = session.scalars(sa.select(Campaign)).one()
    return campaign.id


def device_of(session: Session, prefix: str) -> Device:
    found = session.scalars(
        sa.select(Device).where(Device.hostname.startswith(prefix)).order_by(Device.id)
    ).first()
    assert found is not None
    return found


def open_finding(session: Session, org_prefix: str) -> FindingRow:
    found = session.scalars(
        sa.select(FindingRow)
        .join(Device, Device.id == FindingRow.device_id)
        .where(FindingRow.status == "open", Device.hostname.startswith(org_prefix))
        .order_by(FindingRow.id)
    ).first()
    assert found is not None
    return found


# -- the catalog covers the pages -----------------------------------------------------------------
KEY_CALL = re.compile(r"""\b_?t\(\s*["']([a-z_]+\.[a-z_.]+)["']""")


def test_every_key_the_pages_use_exists_in_both_languages() -> None:
    # Page modules register their own strings (i18n.add) when imported: import them all first.
    import importlib
    import pkgutil

    from quet.server.web import pages

    for mod in pkgutil.iter_modules(pages.__path__):
        importlib.import_module(f"{pages.__name__}.{mod.name}")
    keys: set[str] = set()
    web = PAGES.parent
    for path in [*(PAGES / "pages").glob("*.html"), *(web / "pages").glob("*.py")]:
        keys |= set(KEY_CALL.findall(path.read_text(encoding="utf-8")))
        keys |= set(re.findall(r'"((?:error|flash)\.[a-z_]+)"', path.read_text(encoding="utf-8")))
    assert {"page.password", "btn.relay", "fig.orgs_in_scope"} <= keys  # the regex works
    # Keys built from a value ("device.kind." ~ kind) must exist for every value.
    keys = {k for k in keys if not k.endswith(".")}
    keys |= {f"device.kind.{k}" for k in ("server", "workstation", "endpoint")}
    keys |= {f"finding.status.{s}" for s in ("open", "remediated", "false_positive")}
    keys |= {f"flash.{k}" for k in ("saved", "acknowledged", "logged_out", "password_changed",
                                     "status_changed")}  # fmt: skip
    missing = sorted(k for k in keys if k not in CATALOG)
    assert not missing, missing


# -- signing in -----------------------------------------------------------------------------------
def test_login_form_with_csrf_cookie_and_wrong_password(
    client: TestClient, seeded: Session
) -> None:
    page = client.get("/login")
    assert page.status_code == 200 and "Đăng nhập hệ thống" in page.text
    token = form_token(page.text)
    # No token, or a token that is not the cookie's: refused before the password is looked at.
    no_token = client.post("/login", data={"username": "quantri", "password": PASSWORD})
    assert no_token.status_code == 403 and "hết hạn" in no_token.text
    forged = client.post(
        "/login", data={"username": "quantri", "password": PASSWORD, "csrf_token": "x" * 32}
    )
    assert forged.status_code == 403
    wrong = client.post(
        "/login", data={"username": "quantri", "password": "sai-mat-khau", "csrf_token": token}
    )
    assert wrong.status_code == 401 and "Sai tên đăng nhập hoặc mật khẩu." in wrong.text
    assert "quet_session" not in client.cookies
    ok = client.post(
        "/login",
        data={"username": "quantri", "password": PASSWORD, "csrf_token": token, "next": "/orgs"},
        follow_redirects=False,
    )
    assert ok.status_code == 303 and ok.headers["location"] == "/orgs"
    cookie = ok.headers["set-cookie"]
    assert "quet_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # settings.secure_cookies is off in tests
    assert "Cây đơn vị" in client.get("/orgs").text
    # A next= leading off the site is ignored.
    client.cookies.clear()
    page = client.get("/login")
    away = client.post(
        "/login",
        data={"username": "quantri", "password": PASSWORD, "csrf_token": form_token(page.text),
              "next": "//evil.example/"},
        follow_redirects=False,
    )  # fmt: skip
    assert away.headers["location"] == "/"


def test_the_session_cookie_is_secure_behind_https(server_app: FastAPI, seeded: Session) -> None:
    server_app.state.settings.secure_cookies = True
    # Secure cookies (the login form's token too) only travel over https.
    client = TestClient(server_app, base_url="https://testserver")
    page = client.get("/login")
    assert "Secure" in page.headers["set-cookie"]
    r = client.post(
        "/login",
        data={"username": "quantri", "password": PASSWORD, "csrf_token": form_token(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303
    cookie = r.headers["set-cookie"]
    assert "quet_session=" in cookie and "Secure" in cookie and "HttpOnly" in cookie


def test_signed_out_pages_send_to_login_and_logout_needs_csrf(
    client: TestClient, seeded: Session
) -> None:
    r = client.get("/devices?kind=server", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=%2Fdevices%3Fkind%3Dserver"
    csrf = sign_in(client, "quantri")
    assert client.post("/logout").status_code == 403  # no token
    assert client.get("/").status_code == 200  # still signed in
    r = client.post("/logout", data={"csrf_token": csrf})
    assert r.status_code == 200 and "Bạn đã đăng xuất." in r.text
    assert client.get("/", follow_redirects=False).status_code == 303


def test_a_given_password_must_be_changed_first(client: TestClient, seeded: Session) -> None:
    person(seeded, "moi.cb", "officer", "CB", must_change_password=True)
    page = client.get("/login")
    r = client.post(
        "/login",
        data={"username": "moi.cb", "password": PASSWORD, "csrf_token": form_token(page.text)},
        follow_redirects=False,
    )
    assert r.headers["location"] == "/account/password"
    r = client.get("/devices", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/account/password"
    page = client.get("/account/password")
    assert "Bạn cần đổi mật khẩu" in page.text
    csrf = form_token(page.text)
    short = client.post(
        "/account/password",
        data={"csrf_token": csrf, "current_password": PASSWORD, "new_password": "ngan",
              "confirm_password": "ngan"},
    )  # fmt: skip
    assert short.status_code == 422 and "ít nhất 10 ký tự" in short.text
    new = "mat-khau-moi-dai-hon"
    done = client.post(
        "/account/password",
        data={"csrf_token": csrf, "current_password": PASSWORD, "new_password": new,
              "confirm_password": new},
    )  # fmt: skip
    assert done.status_code == 200 and "Đã đổi mật khẩu." in done.text
    seeded.expire_all()
    user = seeded.scalars(sa.select(User).where(User.username == "moi.cb")).one()
    assert not user.must_change_password and security.verify_password(user.password_hash, new)
    assert client.get("/devices").status_code == 200


# -- every page -----------------------------------------------------------------------------------
def test_every_page_shows_its_vietnamese_text(client: TestClient, seeded: Session) -> None:
    cid = campaign_id(seeded)
    dev = device_of(seeded, "cb-syt")
    sign_in(client, "quantri")
    expected = {
        "/": ["Tổng quan", "Đơn vị trong phạm vi", "Tỷ lệ được bảo vệ", "Thiết bị nhiễm",
              "Phát hiện chưa xử lý", "Phát hiện đã bóc gỡ", "Diễn biến 30 ngày qua",
              "Thiết bị theo đơn vị trực thuộc", "Tỉnh Cao Bằng"],
        "/orgs": ["Cây đơn vị", "Tỉnh Cao Bằng", "Thành phố Đà Nẵng", "Quá hạn"],
        "/orgs/CB": ["Tỉnh Cao Bằng", "Thông tin liên hệ", "Sở Y tế tỉnh Cao Bằng",
                     "Mã đăng ký tác tử", "soattt@caobang.example"],
        "/campaigns": ["Chiến dịch rà quét", "Chiến dịch rà quét, bóc gỡ mã độc năm 2026"],
        f"/campaigns/{cid}": ["Đợt 1", "Đợt 2", "còn 30 ngày", "Đơn vị chưa báo cáo",
                              "Đơn vị chưa xác nhận", "Tiến độ từng đơn vị"],
        "/devices": ["Thiết bị", "cb-syt-srv01", "Máy chủ", "Tổng cộng"],
        f"/devices/{dev.id}": [dev.hostname, "Các lần quét", "Sở Y tế tỉnh Cao Bằng"],
        "/findings": ["Phát hiện mã độc", "Chưa xử lý", "Đã bóc gỡ"],
        "/upload": ["Tải kết quả quét", "Tệp kết quả quét (JSON)"],
        "/audit": ["Nhật ký thay đổi", "Đăng nhập", "user:quantri"],
        "/account/password": ["Đổi mật khẩu", "Mật khẩu hiện tại"],
    }  # fmt: skip
    for path, texts in expected.items():
        r = client.get(path)
        assert r.status_code == 200, (path, r.text[:500])
        assert '<html lang="vi">' in r.text
        for text in texts:
            assert text in r.text, (path, text)
    # The overview's figures: 17 organisations below the root, the campaign's counts.
    home = client.get("/").text
    assert re.search(r"Đơn vị trong phạm vi</p>\s*<p class=\"card-value\">17<", home)
    assert home.count("<svg") >= 3  # trend, donut, bars


def test_english_switch_and_no_open_redirect(client: TestClient, seeded: Session) -> None:
    sign_in(client, "quantri")
    r = client.get("/lang/en?next=/orgs", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/orgs"
    assert "quet_lang=en" in r.headers["set-cookie"]
    page = client.get("/orgs")
    assert '<html lang="en">' in page.text and "Organisation tree" in page.text
    assert "Overview" in client.get("/").text and "Organisations in scope" in client.get("/").text
    assert client.get("/lang/en?next=//evil.example").headers.get("location") is None
    r = client.get("/lang/vi?next=https://evil.example/", follow_redirects=False)
    assert r.headers["location"] == "/"
    assert "Cây đơn vị" in client.get("/orgs").text


# -- scoping and roles ----------------------------------------------------------------------------
def test_a_provincial_officer_sees_only_the_province(client: TestClient, seeded: Session) -> None:
    cid = campaign_id(seeded)
    other = device_of(seeded, "dn-")
    other_finding = open_finding(seeded, "hcm-")
    sign_in(client, "tinh.cb")
    tree = client.get("/orgs").text
    assert "Sở Y tế tỉnh Cao Bằng" in tree and "Đà Nẵng" not in tree and "Hồ Chí Minh" not in tree
    for path in ("/orgs/DN", "/orgs/VN", "/orgs/DN/children", f"/devices/{other.id}",
                 "/devices?org=DN", "/findings?org=HCM", "/orgs/NOPE"):  # fmt: skip
        r = client.get(path)
        assert r.status_code == 404, path
        assert "Không tìm thấy trang yêu cầu." in r.text
    devices = client.get("/devices").text
    assert "cb-" in devices and "dn-" not in devices and "hcm-" not in devices
    findings = client.get("/findings").text
    assert "hcm-" not in findings and "dn-" not in findings
    campaign = client.get(f"/campaigns/{cid}").text
    assert "Sở Y tế tỉnh Cao Bằng" in campaign and "Đà Nẵng" not in campaign
    audit = client.get("/audit").text
    assert "user:tinh.cb" in audit and "tinh.dn" not in audit
    home = client.get("/").text
    assert re.search(r"Đơn vị trong phạm vi</p>\s*<p class=\"card-value\">4<", home)
    csrf = form_token(home)
    r = client.post(f"/findings/{other_finding.id}/status",
                    data={"csrf_token": csrf, "status": "remediated"})  # fmt: skip
    assert r.status_code == 404
    seeded.refresh(other_finding)
    assert other_finding.status == "open"


def test_a_viewer_sees_no_change_buttons_and_cannot_change(
    client: TestClient, seeded: Session
) -> None:
    cid = campaign_id(seeded)
    finding = open_finding(seeded, "cb-")
    csrf = sign_in(client, "xem.cb")
    org_page = client.get("/orgs/CB").text
    assert 'action="/orgs/CB"' not in org_page and "/tokens" not in org_page
    assert 'id="relay"' not in client.get(f"/campaigns/{cid}").text
    assert "/status" not in client.get("/findings").text
    assert "Tải kết quả quét" not in client.get("/").text
    for path, data in (
        ("/orgs/CB", {"name": "Đổi tên"}),
        ("/orgs/CB/tokens", {"label": "x"}),
        (f"/campaigns/{cid}/relay", {}),
        (f"/campaigns/{cid}/orgs/CB-HQ/ack", {}),
        (f"/findings/{finding.id}/status", {"status": "remediated"}),
    ):
        r = client.post(path, data={"csrf_token": csrf, **data})
        assert r.status_code == 403, path
        assert "Bạn không có quyền" in r.text
    seeded.refresh(finding)
    assert finding.status == "open"


def test_forms_refuse_a_missing_or_wrong_csrf_token(client: TestClient, seeded: Session) -> None:
    cid = campaign_id(seeded)
    finding = open_finding(seeded, "cb-")
    sign_in(client, "tinh.cb")
    for path, data in (
        ("/orgs/CB", {"name": "Đổi tên"}),
        ("/orgs/CB/tokens", {"label": "x"}),
        (f"/campaigns/{cid}/relay", {}),
        (f"/campaigns/{cid}/orgs/CB-HQ/ack", {}),
        (f"/findings/{finding.id}/status", {"status": "remediated"}),
        ("/account/password", {"current_password": PASSWORD, "new_password": "x" * 12}),
        ("/logout", {}),
    ):
        for extra in ({}, {"csrf_token": "0" * 64}):
            r = client.post(path, data={**data, **extra})
            assert r.status_code == 403, (path, extra)
    r = client.post("/upload", data={"org": "CB"},
                    files={"file": ("scan.json", b"{}", "application/json")})  # fmt: skip
    assert r.status_code == 403
    seeded.refresh(finding)
    assert finding.status == "open"
    assert orgs.by_code(seeded, "CB").name == "Tỉnh Cao Bằng"  # type: ignore[union-attr]


# -- what the pages change ------------------------------------------------------------------------
def test_finding_status_with_htmx_and_without(client: TestClient, seeded: Session) -> None:
    finding = open_finding(seeded, "cb-")
    csrf = sign_in(client, "tinh.cb")
    r = client.post(
        f"/findings/{finding.id}/status",
        data={"status": "remediated", "next": "/findings?status=open"},
        headers={"HX-Request": "true", "X-CSRF-Token": csrf},
    )
    assert r.status_code == 200
    assert r.text.lstrip().startswith(f'<tr id="finding-{finding.id}" data-status="remediated"')
    assert "Đã bóc gỡ" in r.text and "<html" not in r.text
    seeded.expire_all()
    assert seeded.get(FindingRow, finding.id).status == "remediated"  # type: ignore[union-attr]
    rollup = seeded.get(OrgRollup, finding.org_id)
    assert rollup is not None and rollup.remediated_findings >= 1
    r = client.post(
        f"/findings/{finding.id}/status",
        data={"status": "open", "csrf_token": csrf, "next": "/findings?status=open"},
        follow_redirects=False,
    )
    assert (
        r.status_code == 303
        and r.headers["location"] == "/findings?status=open&flash=status_changed"
    )
    page = client.get(r.headers["location"]).text
    assert "Đã cập nhật trạng thái xử lý." in page and f'id="finding-{finding.id}"' in page
    bad = client.post(
        f"/findings/{finding.id}/status", data={"status": "deleted", "csrf_token": csrf}
    )
    assert bad.status_code == 404


def test_filters_and_pagination(client: TestClient, seeded: Session) -> None:
    sign_in(client, "quantri")
    servers = client.get("/devices?kind=server").text
    assert "-srv01" in servers and "-pc0" not in servers
    infected = client.get("/devices?infected=1").text
    n_infected = seeded.scalar(sa.select(sa.func.count()).where(Device.open_findings > 0))
    assert infected.count('class="is-late"') == n_infected
    emotet = client.get("/findings?family=emotet").text
    assert "Emotet" in emotet and "WannaCry" not in emotet and "Mirai" not in emotet
    in_dn = client.get("/findings?org=DN&status=open").text
    assert "cb-" not in in_dn and "hcm-" not in in_dn
    # 60-odd devices at 50 a page: two pages, the second holding the rest.
    total = seeded.scalar(sa.select(sa.func.count()).select_from(Device)) or 0
    first = client.get("/devices").text
    assert f"Tổng cộng {total} dòng" in first and 'href="?page=2"' in first
    second = client.get("/devices?page=2").text
    assert second.count("<tr") - 1 == total - 50
    assert client.get("/devices?page=0").status_code == 422


def test_upload_a_scan_for_a_machine_without_agent(client: TestClient, seeded: Session) -> None:
    csrf = sign_in(client, "tinh.cb")
    now = datetime.now(UTC)
    report = {
        "schema_version": 1,
        "id": str(uuid.uuid4()),
        "started": (now - timedelta(minutes=5)).isoformat(),
        "finished": now.isoformat(),
        "hostname": "ketoan-may-le",
        "os": "Windows 10 Pro",
        "files_scanned": 1234,
        "findings": [
            {"kind": "hash", "name": "Win.Test.EICAR_HDB-1", "path": "C:\\eicar.com",
             "sha256": "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"},
        ],
    }  # fmt: skip
    body = json.dumps(report).encode()

    def send(content: bytes, org: str = "CB-SYT") -> object:
        return client.post("/upload", data={"org": org, "csrf_token": csrf},
                           files={"file": ("scan.json", content, "application/json")})  # fmt: skip

    r = send(body)
    assert r.status_code == 200, r.text  # type: ignore[attr-defined]
    assert "Đã nhận kết quả quét." in r.text and "ketoan-may-le" in r.text  # type: ignore[attr-defined]
    assert report["id"] in r.text  # type: ignore[attr-defined]
    device = seeded.scalars(sa.select(Device).where(Device.hostname == "ketoan-may-le")).one()
    assert device.uploaded_only and device.open_findings == 1
    again = send(body)
    assert "đã được nhận trước đây" in again.text  # type: ignore[attr-defined]
    broken = send(b"{not json")
    assert broken.status_code == 422  # type: ignore[attr-defined]
    assert "Tệp tải lên không đọc được" in broken.text  # type: ignore[attr-defined]
    wrong = send(json.dumps({"id": "x"}).encode())
    assert wrong.status_code == 422 and "not a Quét scan report" in wrong.text  # type: ignore[attr-defined]
    outside = send(body, org="DN-SYT")
    assert outside.status_code == 403  # type: ignore[attr-defined]


def test_edit_an_organisation_and_make_an_enrollment_token(
    client: TestClient, seeded: Session
) -> None:
    csrf = sign_in(client, "tinh.cb")
    form = {
        "csrf_token": csrf, "name": "Sở Y tế tỉnh Cao Bằng", "kind": "department",
        "contact_name": "Nông Văn Hùng", "contact_email": "YT@CaoBang.example",
        "contact_phone": "0206 3852 101", "webhook_url": "",
        "ip_ranges": "192.0.2.0/27\n192.0.2.128/28", "domains": "syt.caobang.example",
        "asns": "AS64500",
    }  # fmt: skip
    r = client.post("/orgs/CB-SYT", data=form, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/orgs/CB-SYT?flash=saved"
    page = client.get(r.headers["location"]).text
    assert "Đã lưu thay đổi." in page and "192.0.2.128/28" in page and "AS64500" in page
    seeded.expire_all()
    org = orgs.by_code(seeded, "CB-SYT")
    assert org is not None and org.contact_email == "YT@caobang.example"
    bad = client.post("/orgs/CB-SYT", data={**form, "ip_ranges": "999.1.2.3/8", "name": ""})
    assert bad.status_code == 422
    assert "Dải IP không hợp lệ." in bad.text and "Vui lòng nhập trường này." in bad.text
    assert 'value="999.1.2.3/8"' in bad.text or "999.1.2.3/8</textarea>" in bad.text
    r = client.post("/orgs/CB-SYT/tokens", data={"csrf_token": csrf, "label": "Máy trạm tầng 2"})
    assert r.status_code == 200
    token = re.search(r'id="new-token">(qe_[\w-]+)<', r.text)
    assert token is not None
    row = seeded.scalars(sa.select(EnrollmentToken).where(EnrollmentToken.org_id == org.id)).one()
    assert row.token_hash == security.token_hash(token.group(1)) and row.label == "Máy trạm tầng 2"
    assert token.group(1) not in client.get("/orgs/CB-SYT").text  # shown once only


@dataclass
class Mailbox:
    mails: list[email.message.EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, email.message.EmailMessage)
        self.mails.append(msg)
        return "250 OK"


@pytest.fixture
def mailbox(server_app: FastAPI) -> Iterator[Mailbox]:
    box = Mailbox()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    server_app.state.settings.smtp_host = "127.0.0.1"
    server_app.state.settings.smtp_port = port
    try:
        yield box
    finally:
        controller.stop()


def test_relay_then_acknowledge_by_the_emailed_link(
    client: TestClient, seeded: Session, mailbox: Mailbox
) -> None:
    cid = campaign_id(seeded)
    csrf = sign_in(client, "tinh.dn")
    r = client.post(f"/campaigns/{cid}/relay", data={"csrf_token": csrf})
    assert r.status_code == 200 and "Đã gửi thông báo tới 1 đơn vị." in r.text
    # In Đà Nẵng only the agency that has not acknowledged is told again, not the others.
    assert len(mailbox.mails) == 1 and "<syt@danang.example>" in mailbox.mails[0]["To"]
    body = mailbox.mails[-1].get_body(("plain",))
    assert body is not None
    link = re.search(r"http://testserver/ack/(ack_[\w-]+)", body.get_content())
    assert link is not None
    token = link.group(1)
    client.cookies.clear()  # the person who reads the e-mail is not signed in
    page = client.get(f"/ack/{token}")
    assert page.status_code == 200 and "Xác nhận đã nhận chiến dịch" in page.text
    assert "Chiến dịch rà quét, bóc gỡ mã độc năm 2026" in page.text
    part = seeded.scalars(
        sa.select(Participation).where(Participation.ack_token_hash == security.token_hash(token))
    ).one()
    assert part.received_at is None  # opening the link acknowledges nothing
    assert client.post(f"/ack/{token}", data={"who": "Lan"}).status_code == 403  # no token
    done = client.post(f"/ack/{token}", data={"who": "Bế Thị Lan, Giám đốc",
                                              "csrf_token": form_token(page.text)})  # fmt: skip
    assert done.status_code == 200 and "Đã xác nhận lúc" in done.text and "Bế Thị Lan" in done.text
    seeded.refresh(part)
    assert part.received_at is not None and part.received_by == "Bế Thị Lan, Giám đốc"
    assert client.get("/ack/ack_wrong").status_code == 404


def test_acknowledge_on_behalf_with_the_button(client: TestClient, seeded: Session) -> None:
    cid = campaign_id(seeded)
    csrf = sign_in(client, "tinh.cb")
    page = client.get(f"/campaigns/{cid}").text
    waiting = re.findall(rf'action="/campaigns/{cid}/orgs/([\w-]+)/ack"', page)
    assert waiting and all(code.startswith("CB") for code in waiting)
    code = waiting[0]
    r = client.post(f"/campaigns/{cid}/orgs/{code}/ack", data={"csrf_token": csrf})
    assert r.status_code == 200 and "Đã xác nhận nhận chiến dịch." in r.text
    assert f'action="/campaigns/{cid}/orgs/{code}/ack"' not in r.text
    outside = client.post(f"/campaigns/{cid}/orgs/DN-SYT/ack", data={"csrf_token": csrf})
    assert outside.status_code == 404
    assert client.get("/campaigns/999999").status_code == 404


def test_the_tree_loads_children_one_level_at_a_time(client: TestClient, seeded: Session) -> None:
    make_user(seeded, "unused", "viewer", "CB")  # the shared helper works with these fixtures
    sign_in(client, "quantri")
    tree = client.get("/orgs").text
    assert 'hx-get="/orgs/CB/children"' in tree and "Sở Y tế tỉnh Cao Bằng" not in tree
    part = client.get("/orgs/CB/children", headers={"HX-Request": "true"})
    assert part.status_code == 200 and "<html" not in part.text
    assert part.text.count('data-depth="1"') == 4 and "UBND huyện Hà Quảng" in part.text
    plain = client.get("/orgs/CB/children", follow_redirects=False)
    assert plain.status_code == 303 and plain.headers["location"] == "/orgs/CB#children"
