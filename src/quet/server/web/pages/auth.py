"""Signing in and out, the language switch, and changing one's password."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from quet.server import security
from quet.server.deps import SESSION_COOKIE, MaybeUser, SessionDep, SettingsDep
from quet.server.services import audit, users
from quet.server.web import i18n
from quet.server.web.render import (
    LANG_COOKIE,
    PASSWORD_PAGE,
    PageRoute,
    PageUser,
    check_pre_csrf,
    redirect,
    render,
    safe_next,
)

router = APIRouter(route_class=PageRoute, include_in_schema=False)
MIN_PASSWORD = 10


@router.get("/lang/{code}")
def switch_language(code: str, request: Request, next: str = "/") -> RedirectResponse:
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        LANG_COOKIE,
        i18n.normalise_lang(code),
        max_age=365 * 86400,
        samesite="lax",
        secure=bool(request.app.state.settings.secure_cookies),
    )
    return response


@router.get("/login", response_model=None)
def login_form(request: Request, principal: MaybeUser, next: str = "/") -> Response:
    if principal is not None:
        return redirect(safe_next(next))
    return render(request, "pages/login.html", next=safe_next(next))


@router.post("/login", response_model=None)
def login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    username: Annotated[str, Form(max_length=100)] = "",
    password: Annotated[str, Form(max_length=200)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    check_pre_csrf(request, csrf_token)
    ip = request.client.host if request.client else ""
    user = users.authenticate(session, username.strip(), password)
    if user is None:
        audit.record(session, f"user:{username[:100]}", "session.failed", ip=ip)
        session.commit()
        return render(
            request,
            "pages/login.html",
            status_code=401,
            next=safe_next(next),
            username=username,
            error="error.login",
        )
    token, _row = users.start_session(session, user, settings.session_hours, ip)
    audit.record(session, f"user:{user.username}", "session.start", "", user.org_id, ip=ip)
    session.commit()
    target = PASSWORD_PAGE if user.must_change_password else safe_next(next)
    response = redirect(target)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_hours * 3600,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
    )
    return response


@router.post("/logout")
def logout(request: Request, session: SessionDep, principal: PageUser) -> RedirectResponse:
    token = request.cookies.get(SESSION_COOKIE, "")
    if token:
        users.end_session(session, token)
        audit.record(session, principal.actor, "session.end", "", principal.org.id)
        session.commit()
    response = redirect("/login", "logged_out")
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get(PASSWORD_PAGE)
def password_form(request: Request, principal: PageUser) -> HTMLResponse:
    return render(request, "pages/password.html", principal=principal)


@router.post(PASSWORD_PAGE, response_model=None)
def change_password(
    request: Request,
    session: SessionDep,
    principal: PageUser,
    current_password: Annotated[str, Form(max_length=200)] = "",
    new_password: Annotated[str, Form(max_length=200)] = "",
    confirm_password: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    user = principal.user
    errors: dict[str, str] = {}
    if not security.verify_password(user.password_hash, current_password):
        errors["current_password"] = "error.password_wrong"
    elif len(new_password) < MIN_PASSWORD:
        errors["new_password"] = "error.password_short"
    elif new_password == current_password:
        errors["new_password"] = "error.password_same"
    elif new_password != confirm_password:
        errors["confirm_password"] = "error.password_mismatch"
    if errors:
        return render(
            request, "pages/password.html", status_code=422, principal=principal, errors=errors
        )
    user.password_hash = security.hash_password(new_password)
    user.must_change_password = False
    audit.record(session, principal.actor, "user.password", f"user:{user.username}", user.org_id)
    session.commit()
    return redirect("/", "password_changed")
