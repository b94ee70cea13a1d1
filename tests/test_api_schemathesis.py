"""Property-based tests of the whole JSON API from its own OpenAPI document (Schemathesis, in
process over ASGI, on SQLite), signed in with an API token: no answer may be a server error, and
every answer must match the documented schema. Bounded to a few examples per operation."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from quet.server import security
from quet.server.app import create_app
from quet.server.services import orgs
from quet.store.models import ApiToken, User
from server_fixtures import make_org, make_settings, make_user

TOKEN = "qt_schemathesis-fuzzing-token"
# A huge id, so that fuzzed DELETE /tokens/{id} never revokes the token the fuzzer itself uses.
TOKEN_ID = 2**40


class _Sink:
    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: Envelope) -> str:
        return "250 OK"


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    """One app for every operation: a small tree, an administrator and their token, and a mail
    sink, so relays finish at once."""
    folder: Path = tmp_path_factory.mktemp("fuzz")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    smtp = Controller(_Sink(), hostname="127.0.0.1", port=port)
    smtp.start()
    app = create_app(
        make_settings(f"sqlite:///{folder / 'fuzz.sqlite'}", smtp_port=port, tuf_repo="")
    )
    with app.state.db.sessions() as session:
        make_org(session, "P1", kind="province")
        make_org(session, "P1-U1", "P1", webhook_url="http://127.0.0.1:9/unreachable")
        make_user(session, "schemathesis-admin", "admin", orgs.root(session).code)  # type: ignore[union-attr]
        user = session.query(User).filter_by(username="schemathesis-admin").one()
        session.add(
            ApiToken(id=TOKEN_ID, user_id=user.id, name="fuzz", token_hash=security.token_hash(TOKEN))
        )
        session.commit()
    try:
        yield app
    finally:
        app.state.db.dispose()
        smtp.stop()


@pytest.fixture(scope="module")
def api_schema(fuzz_app: FastAPI) -> Any:
    return schemathesis.openapi.from_asgi("/api/v1/openapi.json", fuzz_app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_api_has_no_server_errors(case: Any) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {TOKEN}"},
        checks=[not_a_server_error, response_schema_conformance],
    )
