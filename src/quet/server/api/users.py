"""/api/v1/session and /api/v1/users: JSON sign-in for API clients, people within the caller's
scope, and password changes. An officer cannot make administrators or people outside scope."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from sqlalchemy.orm import Session

from quet.server import security
from quet.server.deps import (
    SESSION_COOKIE,
    CurrentUser,
    SessionDep,
    SettingsDep,
    find_org,
    service_errors,
    set_session_cookie,
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
from quet.server.services import orgs, paging, users
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
    found = users.sign_in(session, body.username, body.password, settings.session_hours, ip)
    session.commit()
    if found is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong username or password")
    user, token, row = found
    set_session_cookie(response, token, settings)
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
    total = paging.count(session, query)
    rows = session.scalars(
        paging.window(query.order_by(Organisation.path, User.username), page, per_page)
    )
    return UserList(total=total, items=[user_public(session, u) for u in rows])


@router.post("/users", response_model=UserCreated, status_code=status.HTTP_201_CREATED)
def create_user(body: UserCreate, session: SessionDep, principal: CurrentUser) -> UserCreated:
    """Create a person with a one-time password (shown only in this answer)."""
    org = find_org(session, principal, body.org_code)
    with service_errors():
        users.check_grant(principal, body.role, org)
    password = security.new_password()
    with service_errors(invalid=status.HTTP_409_CONFLICT):
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
    session.commit()
    return UserCreated(**user_public(session, user).model_dump(), password=password)


@router.post("/users/me/password", status_code=status.HTTP_204_NO_CONTENT)
def change_password(body: PasswordChange, session: SessionDep, principal: CurrentUser) -> None:
    try:
        users.change_password(session, principal.user, body.current_password, body.new_password)
    except users.PasswordRejected as exc:
        wrong = exc.reason == "wrong"
        code = status.HTTP_403_FORBIDDEN if wrong else status.HTTP_422_UNPROCESSABLE_CONTENT
        raise HTTPException(code, str(exc)) from exc
    session.commit()


@router.post("/users/{username}/password", response_model=UserCreated)
def reset_password(username: str, session: SessionDep, principal: CurrentUser) -> UserCreated:
    """Give someone in your scope a new one-time password (they must change it at sign-in)."""
    with service_errors():
        password = users.reset_password(session, principal, username)
    session.commit()
    user = users.by_username(session, username)
    assert user is not None  # just reset
    return UserCreated(**user_public(session, user).model_dump(), password=password)
