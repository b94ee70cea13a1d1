"""People: creating them, the first administrator, sign-in, sessions, passwords and API tokens
(shared by the API, the web pages and `quet org`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from quet.errors import InputError
from quet.server import security
from quet.server.services import audit
from quet.server.services.errors import Forbidden, NotFound
from quet.store.models import ApiToken, LoginSession, Organisation, User

if TYPE_CHECKING:
    from quet.server.deps import Principal

MIN_PASSWORD = 10
PasswordProblem = Literal["wrong", "short", "same", "mismatch"]


class PasswordRejected(InputError):
    """A password change refused; `reason` says why, for a form to point at the right field."""

    def __init__(self, reason: PasswordProblem, message: str) -> None:
        super().__init__(message)
        self.reason: PasswordProblem = reason


def by_username(session: Session, username: str) -> User | None:
    return session.scalars(sa.select(User).where(User.username == username)).first()


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
    if by_username(session, username) is not None:
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
    user = by_username(session, username)
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


def sign_in(
    session: Session, username: str, password: str, hours: int, ip: str = ""
) -> tuple[User, str, LoginSession] | None:
    """Check the password and open a login session (its cookie token and row), auditing the
    attempt either way; None when the name or password is wrong."""
    user = authenticate(session, username, password)
    if user is None:
        audit.record(session, f"user:{username[:100]}", "session.failed", ip=ip)
        return None
    token, row = start_session(session, user, hours, ip)
    audit.record(session, f"user:{user.username}", "session.start", "", user.org_id, ip=ip)
    return user, token, row


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


def check_grant(principal: Principal, role: str, org: Organisation) -> None:
    """May `principal` give someone `role` in `org` (an org it sees)? Forbidden when not."""
    if not principal.can_change(org):
        raise Forbidden("not allowed for this organisation")
    if role == "admin" and not principal.is_admin:
        raise Forbidden("only administrators create administrators")


def change_password(
    session: Session, user: User, old: str, new: str, *, confirm: str | None = None
) -> None:
    """Replace the person's own password after checking the current one; `confirm` (a form's
    second field), when given, must repeat `new`. Raises PasswordRejected naming the reason."""
    if not security.verify_password(user.password_hash, old):
        raise PasswordRejected("wrong", "the current password is wrong")
    if len(new) < MIN_PASSWORD:
        raise PasswordRejected("short", f"a password has at least {MIN_PASSWORD} characters")
    if new == old:
        raise PasswordRejected("same", "choose a different password")
    if confirm is not None and confirm != new:
        raise PasswordRejected("mismatch", "the two new passwords differ")
    user.password_hash = security.hash_password(new)
    user.must_change_password = False
    actor = f"user:{user.username}"
    audit.record(session, actor, "user.password", actor, user.org_id)


def reset_password(session: Session, principal: Principal, username: str) -> str:
    """Give `username` (within `principal`'s scope) a new one-time password, returned once; they
    must change it at their next sign-in. NotFound outside the scope, Forbidden without rights."""
    user = by_username(session, username)
    org = session.get(Organisation, user.org_id) if user else None
    if user is None or org is None or not principal.can_see(org):
        raise NotFound(f"user {username!r} not found")
    check_grant(principal, user.role, org)
    password = security.new_password()
    user.password_hash = security.hash_password(password)
    user.must_change_password = True
    audit.record(session, principal.actor, "user.reset", f"user:{user.username}", user.org_id)
    return password
