"""People: creating them, the first administrator, logins, sessions and API tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from quet.errors import InputError
from quet.server import security
from quet.server.services import audit
from quet.store.models import ApiToken, LoginSession, Organisation, User


def create_user(
    session: Session,
    username: str,
    password: str,
    role: str,
    org: Organisation,
    *,
    full_name: str = "",
    email: str = "",
    must_change_password: bool = False,
    actor: str = "system",
) -> User:
    if session.scalars(sa.select(User).where(User.username == username)).first():
        raise InputError(f"user {username!r} already exists")
    if role not in ("admin", "officer", "viewer"):
        raise InputError(f"unknown role {role!r}: admin, officer or viewer")
    user = User(
        username=username,
        password_hash=security.hash_password(password),
        role=role,
        org_id=org.id,
        full_name=full_name,
        email=email,
        must_change_password=must_change_password,
    )
    session.add(user)
    session.flush()
    audit.record(session, actor, "user.create", f"user:{username}", org.id, {"role": role})
    return user


def ensure_admin(session: Session, org: Organisation) -> str | None:
    """Create `admin` with a one-time password when nobody exists yet; returns that password."""
    if session.scalars(sa.select(User).limit(1)).first() is not None:
        return None
    password = security.new_password()
    create_user(
        session, "admin", password, "admin", org, full_name="Quản trị", must_change_password=True
    )
    return password


def authenticate(session: Session, username: str, password: str) -> User | None:
    user = session.scalars(sa.select(User).where(User.username == username)).first()
    if (
        user is None
        or not user.active
        or not security.verify_password(user.password_hash, password)
    ):
        return None
    if security.needs_rehash(user.password_hash):
        user.password_hash = security.hash_password(password)
    user.last_login = datetime.now(UTC)
    return user


def start_session(
    session: Session, user: User, hours: int, ip: str = ""
) -> tuple[str, LoginSession]:
    token, digest = security.new_token()
    row = LoginSession(
        id=digest,
        user_id=user.id,
        csrf=security.new_token()[1][:32],
        expires_at=datetime.now(UTC) + timedelta(hours=hours),
        ip=ip,
    )
    session.add(row)
    return token, row


def session_user(session: Session, token: str) -> tuple[User, LoginSession] | None:
    row = session.get(LoginSession, security.token_hash(token))
    if row is None or row.expires_at < datetime.now(UTC):
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    return user, row


def end_session(session: Session, token: str) -> None:
    row = session.get(LoginSession, security.token_hash(token))
    if row is not None:
        session.delete(row)


def create_api_token(session: Session, user: User, name: str) -> str:
    token, digest = security.new_token("qt_")
    session.add(ApiToken(user_id=user.id, name=name, token_hash=digest))
    audit.record(session, f"user:{user.username}", "token.create", f"token:{name}", user.org_id)
    return token


def token_user(session: Session, token: str) -> User | None:
    row = session.scalars(
        sa.select(ApiToken).where(ApiToken.token_hash == security.token_hash(token))
    ).first()
    if row is None or row.revoked or (row.expires_at and row.expires_at < datetime.now(UTC)):
        return None
    row.last_used = datetime.now(UTC)
    user = session.get(User, row.user_id)
    return user if user is not None and user.active else None
