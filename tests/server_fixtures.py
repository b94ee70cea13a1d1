"""Shared fixtures for the campaign server's tests: the app on SQLite and on PostgreSQL (a fresh
schema per test), a TestClient, and helpers to create organisations and people and to sign in.

Use it from a test module with:
    from server_fixtures import login, make_org, make_user
    pytest_plugins = ["server_fixtures"]  # the fixtures server_app, client, db_session
(importing the fixtures by name works too, with `# noqa: F401, F811` for ruff).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from conftest_db import BACKENDS, database_url
from quet.server import security
from quet.server.app import create_app
from quet.server.services import orgs, users
from quet.server.settings import Settings
from quet.store.models import Organisation, User

SECRET = "test-secret-0123456789abcdef"
PUBLIC_URL = "http://testserver"


def make_settings(url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": url,
        "secret_key": SECRET,
        "public_url": PUBLIC_URL,
        "webhook_secret": "webhook-test-secret",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(params=BACKENDS)
def server_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FastAPI]:
    """The app on an empty, migrated database of each backend (root org VN, user `admin`)."""
    with database_url(request.param, tmp_path) as url:
        app = create_app(make_settings(url))
        try:
            yield app
        finally:
            app.state.db.dispose()


@pytest.fixture
def client(server_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(server_app) as c:
        yield c


@pytest.fixture
def db_session(server_app: FastAPI) -> Iterator[Session]:
    """A session on the app's database, for arranging data and checking it afterwards."""
    with server_app.state.db.sessions() as session:
        yield session


def login(client: TestClient, username: str, password: str) -> str:
    """Sign in through POST /api/v1/session (the cookie lands in `client`); returns the CSRF
    token to send as X-CSRF-Token on POST/PATCH/DELETE."""
    response = client.post("/api/v1/session", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    csrf: str = response.json()["csrf"]
    client.headers["X-CSRF-Token"] = csrf
    return csrf


def logout(client: TestClient) -> None:
    client.delete("/api/v1/session")
    client.headers.pop("X-CSRF-Token", None)
    client.cookies.clear()


def make_org(
    session: Session,
    code: str,
    parent_code: str | None = None,
    kind: str = "unit",
    *,
    name: str = "",
    contact_email: str | None = None,
    webhook_url: str = "",
    ip_ranges: tuple[str, ...] = (),
) -> Organisation:
    """An organisation under `parent_code` (default: the root), committed. Its contact e-mail is
    <code>@example.test unless given."""
    parent = orgs.by_code(session, parent_code) if parent_code else orgs.root(session)
    assert parent is not None, f"no parent organisation {parent_code!r}"
    org = orgs.create(
        session,
        code,
        name or f"Đơn vị {code}",
        kind,
        parent,
        contact_email=f"{code.lower()}@example.test" if contact_email is None else contact_email,
        ip_ranges=ip_ranges,
    )
    org.webhook_url = webhook_url
    session.commit()
    return org


def make_user(session: Session, username: str, role: str, org_code: str) -> str:
    """A person with `role` in `org_code`, committed; returns their password."""
    org = orgs.by_code(session, org_code)
    assert org is not None, f"no organisation {org_code!r}"
    password = security.new_password()
    users.create_user(session, username, password, role, org)
    session.commit()
    return password


def make_token(session: Session, username: str, name: str = "test") -> str:
    """An API token for an existing person (send as Authorization: Bearer <token>)."""
    user = session.scalars(sa.select(User).where(User.username == username)).one()
    token = users.create_api_token(session, user, name)
    session.commit()
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
