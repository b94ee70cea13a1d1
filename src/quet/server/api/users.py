"""/api/v1/session and /api/v1/users: JSON sign-in for API clients, people within the caller's
scope, and password changes. An officer cannot make administrators or people outside scope."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from sqlalchemy.orm import Session

from quet.errors import InputError
from quet.server import security
from quet.server.api.orgs import find_org
from quet.server.deps import (
    SESSION_COOKIE,
    CurrentUser,
    Principal,
    SessionDep,
    SettingsDep,
    require_change,
)
from quet.server.schemas.people import (
    PasswordChange,
    SessionCreate,
    SessionPublic,
    UserCreate,
    UserCreated,
    UserList,
    UserPublic,
)
from quet.server.services import audit, orgs, users
from quet.store.models import Organisation, User

router = APIRouter(tags=["people"])


def user_public(session: Session, user: User) -> UserPublic:
    org = session.get(Organisation, user.org_id)
    return UserPublic(
        id=user.id,
        username=user.username,
        full_name=user.full_name,
        email=user.email,
        role=user.role,
        org_code=org.code if org else "",
        active=user.active,
        must_change_password=user.must_change_password,
        created_at=user.created_at,
        last_login=user.last_login,
    )


def check_grant(principal: Principal, role: str, org: Organisation) -> None:
    """May `principal` give someone `role` in `org`? Raises 403 when not (the org is seen)."""
    require_change(principal, org)
    if role == "admin" and not principal.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only administrators create administrators")


@router.post("/session", response_model=SessionPublic)
def sign_in(
    body: SessionCreate,
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
) -> SessionPublic:
    """Sign in: sets the session cookie and returns the CSRF token for unsafe requests."""
    ip = request.client.host if request.client else ""
    user = users.authenticate(session, body.username, body.password)
    if user is None:
        audit.record(session, f"user:{body.username[:100]}", "session.failed", ip=ip)
        session.commit()
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong username or password")
    token, row = users.start_session(session, user, settings.session_hours, ip)
    audit.record(session, f"user:{user.username}", "session.start", "", user.org_id, ip=ip)
    session.commit()
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_hours * 3600,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
    )
    org = session.get(Organisation, user.org_id)
    return SessionPublic(
        username=user.username,
        role=user.role,
        org_code=org.code if org else "",
        csrf=security.csrf_token(settings.resolved_secret(), row.id),
        must_change_password=user.must_change_password,
        expires_at=row.expires_at,
    )


@router.delete("/session", status_code=status.HTTP_204_NO_CONTENT)
def sign_out(request: Request, response: Response, session: SessionDep) -> None:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        users.end_session(session, token)
        session.commit()
    response.delete_cookie(SESSION_COOKIE)


@router.get("/users/me", response_model=UserPublic)
def me(session: SessionDep, principal: CurrentUser) -> UserPublic:
    return user_public(session, principal.user)


@router.get("/users", response_model=UserList)
def list_users(
    session: SessionDep,
    principal: CurrentUser,
    org: Annotated[str | None, Query(description="only this organisation's people")] = None,
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=500)] = 50,
) -> UserList:
    """People of your organisation's subtree (or of one organisation in it)."""
    query = sa.select(User).join(Organisation, Organisation.id == User.org_id)
    if org:
        query = query.where(User.org_id == find_org(session, principal, org).id)
    else:
        query = query.where(orgs.subtree_clause(principal.org))
    total = session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(Organisation.path, User.username)
        .offset((page - 1) * per_page)
        .limit(per_page)
    )
    return UserList(total=total, items=[user_public(session, u) for u in rows])


@router.post("/users", response_model=UserCreated, status_code=status.HTTP_201_CREATED)
def create_user(body: UserCreate, session: SessionDep, principal: CurrentUser) -> UserCreated:
    """Create a person with a one-time password (shown only in this answer)."""
    org = find_org(session, principal, body.org_code) if body.org_code else principal.org
    check_grant(principal, body.role, org)
    password = security.new_password()
    try:
        user = users.create_user(
            session,
            body.username,
            password,
            body.role,
            org,
            full_name=body.full_name,
            email=body.email,
            must_change_password=True,
            actor=principal.actor,
        )
    except InputError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    session.commit()
    return UserCreated(**user_public(session, user).model_dump(), password=password)


@router.post("/users/me/password", status_code=status.HTTP_204_NO_CONTENT)
def change_password(body: PasswordChange, session: SessionDep, principal: CurrentUser) -> None:
    user = principal.user
    if not security.verify_password(user.password_hash, body.current_password):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the current password is wrong")
    if body.new_password == body.current_password:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "choose a different password")
    user.password_hash = security.hash_password(body.new_password)
    user.must_change_password = False
    audit.record(session, principal.actor, "user.password", f"user:{user.username}", user.org_id)
    session.commit()


@router.post("/users/{username}/password", response_model=UserCreated)
def reset_password(username: str, session: SessionDep, principal: CurrentUser) -> UserCreated:
    """Give someone in your scope a new one-time password (they must change it at sign-in)."""
    user = session.scalars(sa.select(User).where(User.username == username)).first()
    org = session.get(Organisation, user.org_id) if user else None
    if user is None or org is None or not principal.can_see(org):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"user {username!r} not found")
    check_grant(principal, user.role, org)
    password = security.new_password()
    user.password_hash = security.hash_password(password)
    user.must_change_password = True
    audit.record(session, principal.actor, "user.reset", f"user:{user.username}", user.org_id)
    session.commit()
    return UserCreated(**user_public(session, user).model_dump(), password=password)
