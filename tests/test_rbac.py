"""Who may see and change what, on SQLite and PostgreSQL: a provincial officer sees only that
province's subtree (404 outside it), a viewer only reads (403 on changes), an officer cannot make
administrators; every change leaves an audit entry scoped like the organisation it touched."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from server_fixtures import bearer, login, make_org, make_token, make_user

pytest_plugins = ["server_fixtures"]  # server_app, client, db_session

PHASES = [
    {"number": 1, "starts": "2025-01-01", "ends": "2099-12-31", "report_deadline": "2099-12-31"}
]


@dataclass
class World:
    client: TestClient
    tokens: dict[str, str]
    campaign_p2: int = 0
    campaign_vn: int = 0

    def call(self, who: str, method: str, url: str, **kw: Any) -> int:
        response = self.client.request(method, url, headers=bearer(self.tokens[who]), **kw)
        assert response.status_code != 500, response.text
        return response.status_code


@pytest.fixture
def world(client: TestClient, db_session: Session) -> World:
    """VN ─ P1 ─ P1-U1, VN ─ P2 ─ P2-U1; admin@VN, officer1@P1, viewer1@P1, officer2@P2."""
    make_org(db_session, "P1", kind="province")
    make_org(db_session, "P1-U1", "P1")
    make_org(db_session, "P2", kind="province")
    make_org(db_session, "P2-U1", "P2")
    people = {"boss": ("admin", "VN"), "officer1": ("officer", "P1"), "viewer1": ("viewer", "P1")}
    people["officer2"] = ("officer", "P2")
    tokens = {}
    for name, (role, org) in people.items():
        make_user(db_session, name, role, org)
        tokens[name] = make_token(db_session, name)
    w = World(client, tokens)
    body = {"name": "P2 only", "year": 2025, "phases": PHASES, "scope_code": "P2"}
    r = client.post("/api/v1/campaigns", json=body, headers=bearer(tokens["officer2"]))
    assert r.status_code == 201, r.text
    w.campaign_p2 = r.json()["id"]
    body = {"name": "Toàn quốc", "year": 2025, "phases": PHASES}
    r = client.post("/api/v1/campaigns", json=body, headers=bearer(tokens["boss"]))
    w.campaign_vn = r.json()["id"]
    return w


# (who, method, url, json body, expected status)
MATRIX: list[tuple[str, str, str, dict[str, Any] | None, int]] = [
    ("officer1", "GET", "/api/v1/orgs/P1-U1", None, 200),
    ("viewer1", "GET", "/api/v1/orgs/P1-U1", None, 200),
    ("officer1", "GET", "/api/v1/orgs/P2", None, 404),
    ("officer1", "GET", "/api/v1/orgs/VN", None, 404),
    ("officer1", "GET", "/api/v1/orgs/NOPE", None, 404),
    ("boss", "GET", "/api/v1/orgs/P2-U1", None, 200),
    ("officer1", "PATCH", "/api/v1/orgs/P1-U1", {"contact_phone": "0206 1"}, 200),
    ("viewer1", "PATCH", "/api/v1/orgs/P1-U1", {"contact_phone": "0206 2"}, 403),
    ("officer1", "PATCH", "/api/v1/orgs/P2-U1", {"contact_phone": "0206 3"}, 404),
    ("officer1", "PATCH", "/api/v1/orgs/VN", {"name": "x"}, 404),
    ("officer1", "POST", "/api/v1/orgs", {"code": "P1-U2", "name": "U2", "parent_code": "P1"}, 201),
    ("officer1", "POST", "/api/v1/orgs", {"code": "P2-U2", "name": "U2", "parent_code": "P2"}, 404),
    ("viewer1", "POST", "/api/v1/orgs", {"code": "P1-U3", "name": "U3"}, 403),
    (
        "officer1",
        "POST",
        "/api/v1/orgs",
        {"code": "P2-U1", "name": "dup", "parent_code": "P1"},
        409,
    ),
    ("officer1", "POST", "/api/v1/users", {"username": "big", "role": "admin"}, 403),
    (
        "officer1",
        "POST",
        "/api/v1/users",
        {"username": "o3", "role": "officer", "org_code": "P2"},
        404,
    ),
    (
        "officer1",
        "POST",
        "/api/v1/users",
        {"username": "v2", "role": "viewer", "org_code": "P1-U1"},
        201,
    ),
    ("viewer1", "POST", "/api/v1/users", {"username": "v3", "role": "viewer"}, 403),
    ("boss", "POST", "/api/v1/users", {"username": "a2", "role": "admin", "org_code": "P2"}, 201),
    ("officer1", "POST", "/api/v1/orgs/provinces", None, 403),
    ("officer1", "GET", "/api/v1/campaigns/{p2}", None, 404),
    ("officer1", "GET", "/api/v1/campaigns/{vn}", None, 200),
    ("officer1", "POST", "/api/v1/campaigns/{vn}/orgs/P2-U1/ack", None, 404),
    ("viewer1", "POST", "/api/v1/campaigns/{vn}/orgs/P1-U1/ack", None, 403),
    ("officer1", "POST", "/api/v1/campaigns/{vn}/orgs/P1-U1/ack", None, 200),
    ("officer1", "POST", "/api/v1/campaigns/{vn}/orgs/VN/ack", None, 404),
    ("viewer1", "POST", "/api/v1/campaigns/{vn}/orgs/P1/report", {"fields": {}}, 403),
    (
        "officer1",
        "POST",
        "/api/v1/campaigns",
        {"name": "x", "year": 2025, "phases": PHASES, "scope_code": "P2"},
        404,
    ),
    ("viewer1", "POST", "/api/v1/campaigns", {"name": "x", "year": 2025, "phases": PHASES}, 403),
    ("viewer1", "POST", "/api/v1/campaigns/{vn}/relay", None, 403),
]


def test_rbac_matrix(world: World) -> None:
    """Every case in order (one app per backend keeps this quick); all mismatches reported."""
    wrong = []
    for who, method, url, body, expected in MATRIX:
        url = url.format(p2=world.campaign_p2, vn=world.campaign_vn)
        got = world.call(who, method, url, json=body)
        if got != expected:
            wrong.append(f"{who} {method} {url}: {got}, expected {expected}")
    assert not wrong, "\n".join(wrong)


def test_lists_are_scoped(world: World) -> None:
    c, tok = world.client, world.tokens
    codes = [o["code"] for o in c.get("/api/v1/orgs", headers=bearer(tok["officer1"])).json()]
    assert codes == ["P1", "P1-U1"]
    every = [o["code"] for o in c.get("/api/v1/orgs", headers=bearer(tok["boss"])).json()]
    assert set(every) == {"VN", "P1", "P1-U1", "P2", "P2-U1"}
    names = {
        u["username"]
        for u in c.get("/api/v1/users", headers=bearer(tok["officer1"])).json()["items"]
    }
    assert names == {"officer1", "viewer1"}
    campaigns = c.get("/api/v1/campaigns", headers=bearer(tok["officer1"])).json()
    assert [x["name"] for x in campaigns] == ["Toàn quốc"]
    detail = c.get(f"/api/v1/campaigns/{world.campaign_vn}", headers=bearer(tok["officer1"])).json()
    assert [p["org_code"] for p in detail["participation"]] == ["P1", "P1-U1"]
    assert c.get("/api/v1/orgs?under=P2", headers=bearer(tok["officer1"])).status_code == 404


def test_audit_records_changes_and_is_scoped(world: World) -> None:
    c, tok = world.client, world.tokens
    assert world.call("officer1", "PATCH", "/api/v1/orgs/P1-U1", json={"contact_phone": "1"}) == 200
    assert world.call("officer2", "PATCH", "/api/v1/orgs/P2-U1", json={"contact_phone": "2"}) == 200
    assert world.call("viewer1", "PATCH", "/api/v1/orgs/P1-U1", json={"contact_phone": "3"}) == 403

    mine = c.get("/api/v1/audit", headers=bearer(tok["officer1"])).json()
    seen = {(e["actor"], e["action"], e["target"]) for e in mine["items"]}
    assert ("user:officer1", "org.update", "org:P1-U1") in seen
    assert all(e["org_code"] in ("P1", "P1-U1") for e in mine["items"])
    assert not any(
        e["actor"] == "user:viewer1" and e["action"] == "org.update" for e in mine["items"]
    )

    everything = c.get("/api/v1/audit?action=org.update", headers=bearer(tok["boss"])).json()
    assert {e["target"] for e in everything["items"]} == {"org:P1-U1", "org:P2-U1"}
    page = c.get("/api/v1/audit?per_page=2&page=2", headers=bearer(tok["boss"])).json()
    assert page["per_page"] == 2 and len(page["items"]) == 2 and page["total"] > 4
    first = c.get("/api/v1/audit?per_page=2", headers=bearer(tok["boss"])).json()
    assert first["items"][0]["id"] > first["items"][1]["id"] > page["items"][0]["id"]


def test_cookie_session_needs_csrf(client: TestClient, db_session: Session) -> None:
    make_org(db_session, "P1", kind="province")
    password = make_user(db_session, "lan", "officer", "P1")
    csrf = login(client, "lan", password)
    body = {"code": "P1-X", "name": "X"}
    no_csrf = client.post("/api/v1/orgs", json=body, headers={"X-CSRF-Token": ""})
    assert no_csrf.status_code == 403
    wrong = client.post("/api/v1/orgs", json=body, headers={"X-CSRF-Token": "0" * 64})
    assert wrong.status_code == 403
    assert client.post("/api/v1/orgs", json=body, headers={"X-CSRF-Token": csrf}).status_code == 201
    assert client.get("/api/v1/users/me").json()["org_code"] == "P1"
    assert client.delete("/api/v1/session").status_code == 204
    client.cookies.clear()
    assert client.get("/api/v1/users/me").status_code == 401
    bad = client.post("/api/v1/session", json={"username": "lan", "password": "nope"})
    assert bad.status_code == 401


def test_tokens_shown_once_and_revocable(client: TestClient, db_session: Session) -> None:
    make_user(db_session, "an", "viewer", "VN")
    make_user(db_session, "binh", "viewer", "VN")
    tok_an = make_token(db_session, "an")
    made = client.post("/api/v1/tokens", json={"name": "script"}, headers=bearer(tok_an))
    assert made.status_code == 201
    new = made.json()
    assert new["token"].startswith("qt_")
    listed = client.get("/api/v1/tokens", headers=bearer(new["token"])).json()
    assert {t["name"] for t in listed} == {"test", "script"}
    assert all("token" not in t for t in listed)
    tok_binh = make_token(db_session, "binh")
    assert client.delete(f"/api/v1/tokens/{new['id']}", headers=bearer(tok_binh)).status_code == 403
    assert client.delete(f"/api/v1/tokens/{new['id']}", headers=bearer(tok_an)).status_code == 204
    assert client.get("/api/v1/users/me", headers=bearer(new["token"])).status_code == 401
    assert client.get("/api/v1/users/me", headers=bearer(tok_an)).status_code == 200


def test_password_change_and_reset(client: TestClient, db_session: Session) -> None:
    make_org(db_session, "P1", kind="province")
    first = make_user(db_session, "lan", "officer", "P1")
    make_user(db_session, "hoa", "viewer", "P1")
    login(client, "lan", first)
    r = client.post(
        "/api/v1/users/me/password",
        json={"current_password": "wrong", "new_password": "a-new-long-password"},
    )
    assert r.status_code == 403
    r = client.post(
        "/api/v1/users/me/password",
        json={"current_password": first, "new_password": "a-new-long-password"},
    )
    assert r.status_code == 204
    login(client, "lan", "a-new-long-password")
    reset = client.post("/api/v1/users/hoa/password")
    assert reset.status_code == 200 and reset.json()["must_change_password"] is True
    login(client, "hoa", reset.json()["password"])
    assert client.post("/api/v1/users/lan/password").status_code == 403  # a viewer


def test_lone_surrogate_is_a_clean_422(client: TestClient) -> None:
    """Bad JSON strings get a 422 that can be encoded, not a 500 from the error page itself."""
    r = client.post(
        "/api/v1/session",
        content=b'{"username": "\\ud800", "password": "x"}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "username"]
