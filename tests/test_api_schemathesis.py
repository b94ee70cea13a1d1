"""Property-based tests of the whole JSON API from its own OpenAPI document (Schemathesis, in
process over ASGI, on SQLite), signed in with an API token: no answer may be a server error, and
every answer must match the documented schema. Bounded to a few examples per operation."""

from __future__ import annotations

import atexit
import shutil
import socket
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from quet.server import security
from quet.server.app import create_app
from quet.store.models import ApiToken, User
from server_fixtures import make_org, make_settings, make_user

pytestmark = pytest.mark.timeout(240)
TOKEN = "qt_schemathesis-fuzzing-token"
# A huge id, so that fuzzed DELETE /tokens/{id} never revokes the token the fuzzer itself uses.
TOKEN_ID = 2**40


class _Sink:
    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: Envelope) -> str:
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _fuzz_app() -> FastAPI:
    """One app for every operation (Schemathesis reads the schema when this module is imported,
    and its lazy fixture loader does not work with pytest 9): a small tree, an administrator with
    a token, and a mail sink so that relays finish at once. Removed when Python exits."""
    folder = Path(tempfile.mkdtemp(prefix="quet-fuzz-"))
    port = _free_port()
    smtp = Controller(_Sink(), hostname="127.0.0.1", port=port)
    smtp.start()
    app = create_app(make_settings(f"sqlite:///{folder / 'fuzz.sqlite'}", smtp_port=port))
    with app.state.db.sessions() as session:
        make_org(session, "P1", kind="province")
        make_org(session, "P1-U1", "P1")
        make_user(session, "schemathesis-admin", "admin", "VN")
        user = session.scalars(sa.select(User).where(User.username == "schemathesis-admin")).one()
        digest = security.token_hash(TOKEN)
        session.add(ApiToken(id=TOKEN_ID, user_id=user.id, name="fuzz", token_hash=digest))
        session.commit()

    def cleanup() -> None:
        app.state.db.dispose()
        smtp.stop()
        shutil.rmtree(folder, ignore_errors=True)

    atexit.register(cleanup)
    return app


schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", _fuzz_app())


@schema.parametrize()
@settings(
    max_examples=8,
    deadline=timedelta(seconds=10),
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_api_has_no_server_errors(case: Any) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {TOKEN}"},
        checks=[not_a_server_error, response_schema_conformance],
    )
