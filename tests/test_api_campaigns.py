"""Campaigns through the API on SQLite and PostgreSQL: relay to every organisation in scope by
e-mail (a real aiosmtpd server) and signed webhook (a real http.server), acknowledgement by link
and by a signed-in person, reports, lateness, deployment and device counts."""

from __future__ import annotations

import email
import email.policy
import json
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from quet.server.notify import SIGNATURE_HEADER, verify_webhook
from quet.server.services import campaigns as svc
from quet.server.services import orgs
from quet.store.models import AuditEntry, Campaign, Device, Participation
from server_fixtures import bearer, make_org, make_token, make_user

pytest_plugins = ["server_fixtures"]  # server_app, client, db_session

TODAY = datetime.now(UTC).date()
ACK_LINK = re.compile(r"http://testserver/ack/([A-Za-z0-9_-]+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Mailbox:
    """An aiosmtpd handler keeping (recipients, message) of every mail accepted."""

    mails: list[tuple[list[str], email.message.EmailMessage]] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, email.message.EmailMessage)
        self.mails.append((list(envelope.rcpt_tos), msg))
        return "250 OK"

    def links(self, address: str) -> list[str]:
        """The acknowledgement tokens sent to `address`, oldest first."""
        out = []
        for rcpts, msg in self.mails:
            if address in rcpts:
                body = msg.get_body(("plain",))
                assert body is not None
                out += ACK_LINK.findall(body.get_content())
        return out


@pytest.fixture
def mailbox(server_app: FastAPI) -> Iterator[Mailbox]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    server_app.state.settings.smtp_port = port
    server_app.state.settings.smtp_host = "127.0.0.1"
    try:
        yield box
    finally:
        controller.stop()


@dataclass
class Hooks:
    url: str
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
def webhook() -> Iterator[Hooks]:
    hooks = Hooks("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            hooks.received.append((dict(self.headers.items()), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hooks.url = f"http://127.0.0.1:{server.server_address[1]}/quet-hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hooks
    finally:
        server.shutdown()
        server.server_close()


def phases(deadline: date) -> list[dict[str, str]]:
    start = TODAY - timedelta(days=3)
    return [
        {
            "number": 1,
            "name": "Đợt 1",
            "starts": start.isoformat(),
            "ends": (TODAY + timedelta(days=30)).isoformat(),
            "report_deadline": deadline.isoformat(),
        }
    ]


def pending(client: TestClient, token: str, campaign_id: int) -> list[str]:
    r = client.get(f"/api/v1/campaigns/{campaign_id}", headers=bearer(token))
    assert r.status_code == 200, r.text
    codes: list[str] = r.json()["not_acknowledged"]
    return codes


def test_relay_by_mail_and_webhook_then_acknowledge(
    client: TestClient, db_session: Session, mailbox: Mailbox, webhook: Hooks, server_app: FastAPI
) -> None:
    make_org(db_session, "P1", kind="province")
    make_org(db_session, "P1-U1", "P1")
    make_org(db_session, "P2", kind="province", webhook_url=webhook.url)
    make_org(db_session, "P3", kind="province", contact_email="")
    make_user(db_session, "boss", "admin", "VN")
    make_user(db_session, "lan", "officer", "P1")
    boss, lan = make_token(db_session, "boss"), make_token(db_session, "lan")

    body = {"name": "Chiến dịch 2025", "year": 2025, "phases": phases(TODAY + timedelta(days=20))}
    made = client.post("/api/v1/campaigns", json=body, headers=bearer(boss))
    assert made.status_code == 201, made.text
    cid = made.json()["id"]
    assert pending(client, boss, cid) == ["P1", "P1-U1", "P2", "P3"]
    assert pending(client, lan, cid) == ["P1", "P1-U1"]

    # The provincial officer relays to their own units only.
    r = client.post(f"/api/v1/campaigns/{cid}/relay", headers=bearer(lan))
    assert r.status_code == 200, r.text
    assert [(d["org_code"], d["channel"], d["ok"]) for d in r.json()] == [("P1-U1", "email", True)]
    assert [rcpts for rcpts, _ in mailbox.mails] == [["p1-u1@example.test"]]
    first_u1_link = mailbox.links("p1-u1@example.test")[0]

    # The national relay reaches everyone not yet acknowledged.
    r = client.post(f"/api/v1/campaigns/{cid}/relay", headers=bearer(boss))
    got = sorted((d["org_code"], d["channel"], d["ok"]) for d in r.json())
    assert got == [
        ("P1", "email", True),
        ("P1-U1", "email", True),
        ("P2", "email", True),
        ("P2", "webhook", True),
        ("P3", "email", False),
    ]
    assert sorted(r[0] for r, _ in mailbox.mails[1:]) == [
        "p1-u1@example.test",
        "p1@example.test",
        "p2@example.test",
    ]
    assert "Chiến dịch 2025" in str(mailbox.mails[1][1]["Subject"])
    assert len(webhook.received) == 1
    headers, raw = webhook.received[0]
    assert verify_webhook(raw, headers[SIGNATURE_HEADER], "webhook-test-secret")
    payload = json.loads(raw)
    assert payload["org"]["code"] == "P2" and payload["campaign"]["id"] == cid
    assert ACK_LINK.match(payload["ack_url"])

    # Acknowledge by the e-mailed link, with no sign-in at all.
    token = mailbox.links("p1@example.test")[0]
    ack = client.post("/api/v1/ack", json={"token": token, "name": "Nông Thị Lan"})
    assert ack.status_code == 200, ack.text
    assert ack.json()["org_code"] == "P1" and ack.json()["received_by"] == "Nông Thị Lan"
    assert pending(client, boss, cid) == ["P1-U1", "P2", "P3"]
    again = client.post("/api/v1/ack", json={"token": token, "name": "someone else"})
    assert again.status_code == 200 and again.json()["received_by"] == "Nông Thị Lan"

    hook_token = ACK_LINK.match(payload["ack_url"]).group(1)  # type: ignore[union-attr]
    assert client.post("/api/v1/ack", json={"token": hook_token}).status_code == 200
    assert pending(client, boss, cid) == ["P1-U1", "P3"]

    # Only the newest link of an organisation works.
    assert client.post("/api/v1/ack", json={"token": first_u1_link}).status_code == 404
    assert client.post("/api/v1/ack", json={"token": "ack_forged"}).status_code == 404

    # A signed-in officer acknowledges for a unit of their province.
    r = client.post(f"/api/v1/campaigns/{cid}/orgs/P1-U1/ack", headers=bearer(lan))
    assert r.status_code == 200 and r.json()["received_by"] == "lan"
    assert pending(client, boss, cid) == ["P3"]
    assert pending(client, lan, cid) == []

    # A third relay only tries the one left (which has no address).
    r = client.post(f"/api/v1/campaigns/{cid}/relay", headers=bearer(boss))
    assert [(d["org_code"], d["ok"]) for d in r.json()] == [("P3", False)]
    assert "no contact" in r.json()[0]["error"]
    assert len(mailbox.mails) == 4

    actions = db_session.scalars(
        sa.select(AuditEntry.action).where(AuditEntry.target == f"campaign:{cid}")
    ).all()
    assert sorted(actions).count("campaign.relay") == 3
    assert sorted(actions).count("campaign.ack") == 3
    detail = client.get(f"/api/v1/campaigns/{cid}", headers=bearer(boss)).json()
    by_code = {p["org_code"]: p for p in detail["participation"]}
    assert by_code["P1"]["notified_at"] and by_code["P1"]["received_at"]
    assert by_code["P3"]["notified_at"] is None


def test_reports_and_lateness(client: TestClient, db_session: Session) -> None:
    make_org(db_session, "P1", kind="province")
    make_org(db_session, "P2", kind="province")
    make_user(db_session, "boss", "admin", "VN")
    boss = make_token(db_session, "boss")
    deadline = TODAY + timedelta(days=5)
    body = {"name": "C", "year": 2025, "phases": phases(deadline), "bundle_version": 12}
    cid = client.post("/api/v1/campaigns", json=body, headers=bearer(boss)).json()["id"]

    fields = {"devices_scanned": 120, "ghi_chu": "Đã rà quét toàn bộ máy chủ"}
    r = client.post(
        f"/api/v1/campaigns/{cid}/orgs/P1/report", json={"fields": fields}, headers=bearer(boss)
    )
    assert r.status_code == 200, r.text
    assert r.json()["reported_at"] is not None and r.json()["late"] is False

    row = db_session.scalars(sa.select(Participation).where(Participation.campaign_id == cid)).one()
    assert row.report == fields
    campaign = db_session.get(Campaign, cid)
    assert campaign is not None
    root = orgs.root(db_session)
    assert root is not None
    on_time = {s.org.code: s.late for s in svc.status(db_session, campaign, root, TODAY)}
    assert on_time == {"P1": False, "P2": False}
    after = {
        s.org.code: s.late
        for s in svc.status(db_session, campaign, root, deadline + timedelta(days=1))
    }
    assert after == {"P1": False, "P2": True}


def test_deployment_and_device_counts(
    client: TestClient, db_session: Session, server_app: FastAPI
) -> None:
    p1 = make_org(db_session, "P1", kind="province")
    make_user(db_session, "boss", "admin", "VN")
    boss = make_token(db_session, "boss")
    running = client.post(
        "/api/v1/campaigns",
        json={"name": "running", "year": 2025, "phases": phases(TODAY + timedelta(days=9))},
        headers=bearer(boss),
    ).json()["id"]
    over = [
        {"number": 1, "starts": "2024-01-01", "ends": "2024-02-01", "report_deadline": "2024-02-10"}
    ]
    finished = client.post(
        "/api/v1/campaigns",
        json={"name": "finished", "year": 2024, "phases": over},
        headers=bearer(boss),
    ).json()["id"]
    db_session.add_all(
        [
            Device(org_id=p1.id, hostname="a", open_findings=2),
            Device(org_id=p1.id, hostname="b", open_findings=0),
        ]
    )
    svc.mark_deployed(db_session, p1.id, datetime.now(UTC))
    db_session.commit()

    def row(cid: int) -> dict[str, Any]:
        detail = client.get(f"/api/v1/campaigns/{cid}", headers=bearer(boss)).json()
        return next(p for p in detail["participation"] if p["org_code"] == "P1")

    assert row(running)["deployed_at"] is not None
    assert row(running)["devices"] == 2 and row(running)["infected"] == 1
    assert row(finished)["deployed_at"] is None
    assert row(finished)["late"] is True  # its deadline passed with no report


def test_bad_campaigns_are_422_not_500(client: TestClient, db_session: Session) -> None:
    make_user(db_session, "boss", "admin", "VN")
    boss = make_token(db_session, "boss")
    bad_order = [
        {"number": 1, "starts": "2025-05-01", "ends": "2025-04-01", "report_deadline": "2025-06-01"}
    ]
    dup = phases(TODAY) * 2
    for ph in (bad_order, dup, []):
        r = client.post(
            "/api/v1/campaigns",
            json={"name": "x", "year": 2025, "phases": ph},
            headers=bearer(boss),
        )
        assert r.status_code == 422, r.text
    assert client.get("/api/v1/campaigns/999", headers=bearer(boss)).status_code == 404
    assert client.post("/api/v1/campaigns/999/relay", headers=bearer(boss)).status_code == 404
