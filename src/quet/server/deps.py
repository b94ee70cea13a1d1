"""FastAPI dependencies as Annotated aliases (the session, the signed-in person, the device) and
what the API and the pages share around services: errors as HTTP answers, the session cookie."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, HTTPException, Request, Response, status
from sqlalchemy.orm import Session

from quet.errors import InputError
from quet.server import security
from quet.server.services import errors, ingest, orgs, users
from quet.server.settings import Settings
from quet.store.models import Device, Organisation, User

SESSION_COOKIE = "quet_session"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def get_session(request: Request) -> Iterator[Session]:
    yield from request.app.state.db.session()


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


@dataclass
class Principal:
    """Who is asking: a person (through a browser session or an API token) and their scope."""

    user: User
    org: Organisation
    session_id: str = ""  # empty for API tokens (no CSRF needed)
    csrf: str = ""

    @property
    def actor(self) -> str:
        return f"user:{self.user.username}"

    def can_see(self, org: Organisation) -> bool:
        return org.path.startswith(self.org.path)

    def can_change(self, org: Organisation) -> bool:
        return self.user.role in ("admin", "officer") and self.can_see(org)

    @property
    def is_admin(self) -> bool:
        return self.user.role == "admin"


def optional_principal(request: Request, session: SessionDep) -> Principal | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        user = users.token_user(session, auth[7:].strip())
        if user is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid or revoked API token")
        session.commit()
        org = session.get(Organisation, user.org_id)
        assert org is not None
        return Principal(user, org)
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    found = users.session_user(session, token)
    if found is None:
        return None
    user, row = found
    org = session.get(Organisation, user.org_id)
    assert org is not None
    secret = request.app.state.settings.resolved_secret()
    return Principal(user, org, row.id, security.csrf_token(secret, row.id))


async def csrf_from(request: Request) -> str:
    """The CSRF token a request carries: the X-CSRF-Token header, or a form's csrf_token field."""
    header = request.headers.get("x-csrf-token", "")
    if header:
        return header
    ctype = request.headers.get("content-type", "")
    if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get("csrf_token", "")
        return value if isinstance(value, str) else ""
    return ""


async def current_principal(
    request: Request, principal: Annotated[Principal | None, Depends(optional_principal)]
) -> Principal:
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "sign in first (cookie session) or send Authorization: Bearer <API token>",
        )
    if principal.session_id and request.method in UNSAFE:
        token = await csrf_from(request)
        if not token or token != principal.csrf:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong CSRF token")
    return principal


CurrentUser = Annotated[Principal, Depends(current_principal)]
MaybeUser = Annotated[Principal | None, Depends(optional_principal)]


def require_change(principal: Principal, org: Organisation) -> None:
    if not principal.can_change(org):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "not allowed for this organisation")


# ingest keeps its own pair of classes (its module is tuned separately); both map the same way.
NOT_FOUND: tuple[type[Exception], ...] = (errors.NotFound, ingest.NotFound)
FORBIDDEN: tuple[type[Exception], ...] = (errors.Forbidden, ingest.Forbidden)


@contextmanager
def service_errors(invalid: int = status.HTTP_422_UNPROCESSABLE_CONTENT) -> Iterator[None]:
    """Service errors become HTTP answers: NotFound 404, Forbidden 403, InputError `invalid`.
    The pages show them as error pages in the person's language (web.render.PageRoute)."""
    try:
        yield
    except NOT_FOUND as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except FORBIDDEN as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
    except InputError as exc:
        raise HTTPException(invalid, str(exc)) from exc


def find_org(session: Session, principal: Principal, code: str | None) -> Organisation:
    """The organisation a request names, 404 unless the caller sees it; the caller's own when
    the request names none."""
    with service_errors():
        return orgs.visible_or_own(session, principal, code)


def set_session_cookie(response: Response, token: str, settings: Settings) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_hours * 3600,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
    )


def current_device(request: Request, session: SessionDep) -> Device:
    auth = request.headers.get("authorization", "")
    if not auth.lower().startswith("device "):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "send Authorization: Device <credential>")
    digest = security.token_hash(auth[7:].strip())
    device = session.scalars(sa.select(Device).where(Device.credential_hash == digest)).first()
    if device is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown device credential")
    device.last_seen = datetime.now(UTC)
    return device


CurrentDevice = Annotated[Device, Depends(current_device)]
