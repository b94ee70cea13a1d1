"""Campaign relay notifications against a real SMTP server (aiosmtpd) and real HTTP servers."""

from __future__ import annotations

import email
import email.policy
import json
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from hypothesis import given
from hypothesis import strategies as st

from quet.errors import InputError
from quet.server.notify import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    Notice,
    SmtpSettings,
    campaign_notice,
    date_vi,
    send_email,
    send_webhooks,
    sign_webhook,
    verify_webhook,
    webhook_body,
)

DEADLINE = date(2026, 1, 5)
ACK = "https://quet.example.vn/ack/7f3a9c?org=ATTT"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- SMTP ---------------------------------------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    peer: Any


@dataclass
class Collector:
    """An aiosmtpd handler that keeps what it accepted; refuses and delays on request."""

    refuse: set[str] = field(default_factory=set)
    soft_fail_data: int = 0  # answer 451 to this many DATA commands first
    received: list[Received] = field(default_factory=list)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 Không có hộp thư này / no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.soft_fail_data:
            self.soft_fail_data -= 1
            return "451 4.3.0 try again later"
        assert isinstance(envelope.content, bytes)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append(
            Received(str(envelope.mail_from), list(envelope.rcpt_tos), message, session.peer)
        )
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Collector, SmtpSettings]]:
    handler = Collector()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, SmtpSettings(host="127.0.0.1", port=port, sender="quet@cert.example.vn")
    finally:
        controller.stop()


def notice(code: str, name: str, *to: str) -> Notice:
    return campaign_notice(code, name, to, "Rà quét 2026", "đợt 1", DEADLINE, ACK + code)


def plain(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


def html_part(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


def test_vietnamese_date() -> None:
    assert date_vi(date(2026, 1, 5)) == "ngày 05 tháng 01 năm 2026"
    assert date_vi(date(2025, 12, 31)) == "ngày 31 tháng 12 năm 2025"


def test_campaign_notice_is_vietnamese_first_with_english_after() -> None:
    n = campaign_notice(
        "ATTT", "Cục An toàn thông tin", ["vanthu@attt.example.vn"], "Rà quét 2026", "đợt 1",
        DEADLINE, ACK, campaign_id=12,
    )  # fmt: skip
    assert n.subject == "[Quét] Chiến dịch Rà quét 2026, đợt 1: đề nghị xác nhận đã nhận"
    assert n.to == ("vanthu@attt.example.vn",)
    assert n.campaign_id == 12 and n.ack_url == ACK
    vi = n.text.index("Kính gửi Cục An toàn thông tin")
    en = n.text.index("Dear Cục An toàn thông tin")
    assert vi < en
    assert "ngày 05 tháng 01 năm 2026" in n.text and "5 January 2026" in n.text
    assert n.text.count(ACK) == 2
    assert f'href="{ACK.replace("&", "&amp;")}"' in n.html
    en_first = campaign_notice("ATTT", "X", ["a@b.vn"], "C", "đợt 2", DEADLINE, ACK, lang="en")
    assert en_first.subject.startswith("[Quét] Campaign C, đợt 2: please acknowledge")
    assert en_first.text.index("Dear X") < en_first.text.index("Kính gửi X")


def test_campaign_notice_escapes_html() -> None:
    n = campaign_notice("X", "<b>Sở & Ban</b>", ["a@b.vn"], "C", "đợt 1", DEADLINE, ACK)
    assert "<b>Sở" not in n.html and "&lt;b&gt;Sở &amp; Ban&lt;/b&gt;" in n.html


@pytest.mark.parametrize(
    ("to", "ack", "lang", "words"),
    [
        ([], ACK, "vi", "no e-mail address"),
        (["not-an-address"], ACK, "vi", "invalid e-mail address"),
        (["a@b.vn\r\nBcc: evil@x.com"], ACK, "vi", "invalid e-mail address"),
        (["a@b.vn"], "javascript:alert(1)", "vi", "http(s) URL"),
        (["a@b.vn"], ACK, "fr", "unknown language"),
    ],
)
def test_campaign_notice_rejects_bad_input(to: list[str], ack: str, lang: str, words: str) -> None:
    with pytest.raises(InputError, match=words.replace("(", r"\(").replace(")", r"\)")):
        campaign_notice("X", "X", to, "C", "đợt 1", DEADLINE, ack, lang=lang)


def test_send_email_delivers_vietnamese_over_one_connection(
    smtp_server: tuple[Collector, SmtpSettings],
) -> None:
    handler, settings = smtp_server
    notices = [
        notice("ATTT", "Cục An toàn thông tin", "vanthu@attt.example.vn", "ktv@attt.example.vn"),
        notice("HN", "Sở Thông tin và Truyền thông Hà Nội", "stttt@hanoi.example.vn"),
        notice("DN", "Sở Khoa học và Công nghệ Đà Nẵng", "skhcn@danang.example.vn"),
    ]
    deliveries = send_email(notices, settings)
    assert [(d.org_code, d.channel, d.ok, d.error, d.attempts) for d in deliveries] == [
        ("ATTT", "email", True, "", 1),
        ("HN", "email", True, "", 1),
        ("DN", "email", True, "", 1),
    ]
    assert len(handler.received) == 3
    assert len({r.peer for r in handler.received}) == 1  # one connection for the batch
    first = handler.received[0]
    assert first.mail_from == "quet@cert.example.vn"
    assert first.rcpt_tos == ["vanthu@attt.example.vn", "ktv@attt.example.vn"]
    msg = first.message
    assert msg["Subject"] == "[Quét] Chiến dịch Rà quét 2026, đợt 1: đề nghị xác nhận đã nhận"
    assert "Cục An toàn thông tin" in str(msg["To"])
    assert msg["Message-ID"].endswith("@cert.example.vn>")
    assert msg["Date"] and msg["Auto-Submitted"] == "auto-generated"
    assert msg["X-Quet-Org"] == "ATTT"
    body = plain(msg)
    assert "Kính gửi Cục An toàn thông tin" in body
    assert "Chiến dịch rà quét mã độc «Rà quét 2026» (đợt 1)" in body
    assert "ngày 05 tháng 01 năm 2026" in body
    assert ACK + "ATTT" in body
    assert "Xác nhận đã nhận" in html_part(msg)
    # Seven-bit on the wire: the diacritics survive any relay, not only 8BITMIME ones.
    assert all(p["Content-Transfer-Encoding"] == "quoted-printable" for p in msg.iter_parts())
    assert plain(handler.received[2].message).startswith(
        "Kính gửi Sở Khoa học và Công nghệ Đà Nẵng"
    )
    assert len({r.message["Message-ID"] for r in handler.received}) == 3


def test_refused_recipient_fails_only_its_organisation(
    smtp_server: tuple[Collector, SmtpSettings],
) -> None:
    handler, settings = smtp_server
    handler.refuse = {"ghost@nowhere.example.vn", "gone@partial.example.vn"}
    deliveries = send_email(
        [
            notice("A", "Sở A", "a@a.example.vn"),
            notice("GHOST", "Sở Ma", "ghost@nowhere.example.vn"),
            notice("P", "Sở P", "ok@partial.example.vn", "gone@partial.example.vn"),
            notice("B", "Sở B", "b@b.example.vn"),
        ],
        settings,
        backoff=0.01,
    )
    by_org = {d.org_code: d for d in deliveries}
    assert by_org["A"].ok and by_org["B"].ok
    ghost = by_org["GHOST"]
    assert not ghost.ok and ghost.attempts == 1  # a 5xx refusal is final, not retried
    assert "ghost@nowhere.example.vn" in ghost.error and "550" in ghost.error
    partial = by_org["P"]
    assert not partial.ok and "gone@partial.example.vn" in partial.error
    assert "ok@partial.example.vn" not in partial.error
    assert [r.rcpt_tos for r in handler.received] == [
        ["a@a.example.vn"],
        ["ok@partial.example.vn"],
        ["b@b.example.vn"],
    ]


def test_temporary_failure_is_retried_on_a_new_connection(
    smtp_server: tuple[Collector, SmtpSettings],
) -> None:
    handler, settings = smtp_server
    handler.soft_fail_data = 1
    deliveries = send_email(
        [notice("A", "Sở A", "a@a.example.vn"), notice("B", "Sở B", "b@b.example.vn")],
        settings,
        backoff=0.01,
    )
    assert [(d.ok, d.attempts) for d in deliveries] == [(True, 2), (True, 1)]
    assert [r.rcpt_tos for r in handler.received] == [["a@a.example.vn"], ["b@b.example.vn"]]


def test_temporary_failure_gives_up_after_retries(
    smtp_server: tuple[Collector, SmtpSettings],
) -> None:
    handler, settings = smtp_server
    handler.soft_fail_data = 10
    [delivery] = send_email([notice("A", "Sở A", "a@a.example.vn")], settings, 1, backoff=0.01)
    assert not delivery.ok and delivery.attempts == 2 and "451" in delivery.error


def test_server_down_fails_every_notice_without_raising() -> None:
    port = free_port()  # nothing listens here
    settings = SmtpSettings(host="127.0.0.1", port=port, timeout=2)
    notices = [notice(c, f"Sở {c}", f"{c.lower()}@x.example.vn") for c in ("A", "B", "C")]
    deliveries = send_email(notices, settings, retries=1, backoff=0.01)
    assert [d.org_code for d in deliveries] == ["A", "B", "C"]
    assert not any(d.ok for d in deliveries)
    assert all(f"cannot reach SMTP server 127.0.0.1:{port}" in d.error for d in deliveries)
    assert deliveries[0].attempts == 2
    assert [d.attempts for d in deliveries[1:]] == [0, 0]  # not hammered once known down


def test_bad_notice_fails_alone(smtp_server: tuple[Collector, SmtpSettings]) -> None:
    handler, settings = smtp_server
    broken = Notice("BAD", "Sở X", (), "subject", "text")
    deliveries = send_email([broken, notice("A", "Sở A", "a@a.example.vn")], settings)
    assert [(d.org_code, d.ok) for d in deliveries] == [("BAD", False), ("A", True)]
    assert "no recipients" in deliveries[0].error
    assert len(handler.received) == 1


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_smtp_login() -> None:
    def authenticator(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        good = isinstance(data, LoginPassword) and (data.login, data.password) == (
            b"quet",
            b"m\xe1\xba\xadt kh\xe1\xba\xa9u",  # "mật khẩu" in UTF-8
        )
        return AuthResult(success=good, handled=False)

    handler = Collector()
    port = free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticator,
        auth_require_tls=False,
        auth_required=True,
    )
    controller.start()
    try:
        ok = SmtpSettings(port=port, username="quet", password="mật khẩu")
        assert send_email([notice("A", "Sở A", "a@a.example.vn")], ok)[0].ok
        bad = SmtpSettings(port=port, username="quet", password="sai")
        deliveries = send_email(
            [notice("A", "Sở A", "a@a.example.vn"), notice("B", "Sở B", "b@b.example.vn")], bad
        )
        assert not any(d.ok for d in deliveries)
        assert "refused us" in deliveries[0].error and "535" in deliveries[0].error
        assert deliveries[1].attempts == 0
        assert len(handler.received) == 1
    finally:
        controller.stop()


# --- webhook signatures -------------------------------------------------------------------------

SECRET = "s3cr3t-bí-mật"


def test_sign_and_verify_roundtrip() -> None:
    body = b'{"org":"ATTT"}'
    header = sign_webhook(body, SECRET, 1_767_571_200)
    ts, v1 = header.split(",")
    assert ts == "t=1767571200" and v1.startswith("v1=") and len(v1) == 3 + 64
    assert verify_webhook(body, header, SECRET, now=1_767_571_200 + 299)
    assert not verify_webhook(body, header, SECRET, now=1_767_571_200 + 301)
    assert not verify_webhook(body, header, SECRET, now=1_767_571_200 - 301)
    assert not verify_webhook(body + b" ", header, SECRET, now=1_767_571_200)
    assert not verify_webhook(body, header, "other", now=1_767_571_200)
    # The timestamp is covered by the MAC: moving it invalidates the signature.
    assert not verify_webhook(body, "t=1767571201," + v1, SECRET, now=1_767_571_200)
    # Rotation: any one matching v1 is enough.
    assert verify_webhook(body, f"{ts},v1={'0' * 64},{v1}", SECRET, now=1_767_571_200)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        "t=abc,v1=00",
        "v1=00",
        "t=1767571200",
        "t=1,t=2,v1=00",
        "t=-5,v1=0",
        "t=²,v1=00",
    ],
)
def test_verify_rejects_malformed_headers(header: str) -> None:
    assert not verify_webhook(b"{}", header, SECRET, now=1_767_571_200)


@given(st.binary(max_size=256), st.text(min_size=1, max_size=40), st.integers(0, 2**40))
def test_sign_verify_property(body: bytes, secret: str, ts: int) -> None:
    header = sign_webhook(body, secret, ts)
    assert verify_webhook(body, header, secret, now=ts)
    assert not verify_webhook(body + b"x", header, secret, now=ts)


@given(st.text(max_size=200), st.binary(max_size=64))
def test_verify_never_raises_on_any_header(header: str, body: bytes) -> None:
    assert verify_webhook(body, header, SECRET, now=0) in (True, False)


# --- webhooks against a real HTTP server --------------------------------------------------------


@dataclass
class Hit:
    path: str
    body: bytes
    headers: dict[str, str]


class Receiver:
    """An http.server in a thread; `script[path]` lists the status codes to answer, in turn."""

    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self.script: dict[str, list[int]] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                receiver.hits.append(Hit(self.path, body, dict(self.headers.items())))
                codes = receiver.script.get(self.path, [200])
                status = codes.pop(0) if len(codes) > 1 else codes[0]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def paths(self) -> list[str]:
        return [h.path for h in self.hits]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()


def test_webhook_signature_verifies_on_received_body(receiver: Receiver) -> None:
    payload = {"event": "campaign.started", "org": "ATTT", "name": "Cục An toàn thông tin"}
    [d] = send_webhooks([("ATTT", receiver.url("/hook"), payload)], SECRET)
    assert (d.org_code, d.channel, d.ok, d.attempts) == ("ATTT", "webhook", True, 1)
    [hit] = receiver.hits
    assert json.loads(hit.body) == payload
    assert "Cục An toàn thông tin".encode() in hit.body  # UTF-8, not \\u escapes
    assert hit.headers["Content-Type"].startswith("application/json")
    header = hit.headers[SIGNATURE_HEADER]
    assert verify_webhook(hit.body, header, SECRET)
    assert not verify_webhook(hit.body.replace(b"ATTT", b"ATTX"), header, SECRET)
    assert not verify_webhook(hit.body, header, "wrong secret")
    sent_at = int(header.split(",")[0][2:])
    assert not verify_webhook(hit.body, header, SECRET, now=sent_at + 301)
    assert verify_webhook(hit.body, header, SECRET, now=sent_at + 300)


def test_webhook_5xx_is_retried_then_ok(receiver: Receiver) -> None:
    receiver.script["/flaky"] = [500, 200]
    [d] = send_webhooks([("HN", receiver.url("/flaky"), {"n": 1})], SECRET, backoff=0.01)
    assert d.ok and d.attempts == 2 and d.error == ""
    first, second = receiver.hits
    assert first.body == second.body
    assert first.headers[DELIVERY_HEADER] == second.headers[DELIVERY_HEADER]
    assert all(verify_webhook(h.body, h.headers[SIGNATURE_HEADER], SECRET) for h in receiver.hits)


def test_webhook_404_is_not_retried(receiver: Receiver) -> None:
    receiver.script["/missing"] = [404]
    events = [
        ("A", receiver.url("/missing"), {"n": 1}),
        ("B", receiver.url("/ok"), {"n": 2}),
    ]
    a, b = send_webhooks(events, SECRET, backoff=0.01)
    assert not a.ok and a.attempts == 1 and "HTTP 404" in a.error
    assert b.ok
    assert receiver.paths() == ["/missing", "/ok"]


def test_webhook_persistent_5xx_gives_up(receiver: Receiver) -> None:
    receiver.script["/down"] = [503]
    [d] = send_webhooks([("A", receiver.url("/down"), {})], SECRET, retries=2, backoff=0.01)
    assert not d.ok and d.attempts == 3 and "HTTP 503" in d.error
    assert receiver.paths() == ["/down"] * 3


def test_webhook_connection_refused_is_a_failed_delivery(receiver: Receiver) -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"
    events: list[tuple[str, str, dict[str, Any]]] = [
        ("DOWN", url, {}),
        ("BAD", "ftp://example.vn/x", {}),
        ("NOTJSON", receiver.url("/ok"), {"x": {1, 2}}),
        ("OK", receiver.url("/ok"), {}),
    ]
    down, bad, notjson, ok = send_webhooks(events, SECRET, timeout=2, retries=1, backoff=0.01)
    assert not down.ok and down.attempts == 2 and "ConnectError" in down.error
    assert not bad.ok and bad.attempts == 0 and "http" in bad.error
    assert not notjson.ok and "JSON" in notjson.error
    assert ok.ok
    assert receiver.paths() == ["/ok"]


def test_webhook_needs_a_secret() -> None:
    with pytest.raises(InputError, match="secret"):
        send_webhooks([("A", "http://127.0.0.1:1/", {})], "")


def test_documented_receiver_snippet_verifies_our_signatures() -> None:
    doc = (Path(__file__).parents[1] / "docs" / "notifications.md").read_text("utf-8")
    blocks = re.findall(r"```python\n(.*?)```", doc, flags=re.S)
    [snippet] = [b for b in blocks if "def verify(" in b]
    namespace: dict[str, Any] = {}
    exec(snippet, namespace)
    verify = namespace["verify"]
    body = webhook_body({"event": "campaign.started", "org": "Cục An toàn thông tin"})
    header = sign_webhook(body, SECRET, 1_767_571_200)
    assert verify(body, header, SECRET, now=1_767_571_200 + 10)
    assert not verify(body + b" ", header, SECRET, now=1_767_571_200)
    assert not verify(body, header, SECRET, now=1_767_571_200 + 301)
    assert not verify(body, header, "other", now=1_767_571_200)
    assert not verify(body, "t=²,v1=00", SECRET, now=0)
