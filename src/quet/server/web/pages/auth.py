"""Signing in and out, the language switch, and changing one's password."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from quet.server.deps import (
    SESSION_COOKIE,
    MaybeUser,
    SessionDep,
    SettingsDep,
    set_session_cookie,
)
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
# The form field and message of each reason users.change_password may refuse for.
PASSWORD_ERRORS = {
    "wrong": ("current_password", "error.password_wrong"),
    "short": ("new_password", "error.password_short"),
    "same": ("new_password", "error.password_same"),
    "mismatch": ("confirm_password", "error.password_mismatch"),
}


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
    found = users.sign_in(session, username.strip(), password, settings.session_hours, ip)
    session.commit()
    if found is None:
        return render(
            request,
            "pages/login.html",
            status_code=401,
            next=safe_next(next),
            username=username,
            error="error.login",
        )
    user, token, _row = found
    target = PASSWORD_PAGE if user.must_change_password else safe_next(next)
    response = redirect(target)
    set_session_cookie(response, token, settings)
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
    try:
        users.change_password(
            session, principal.user, current_password, new_password, confirm=confirm_password
        )
    except users.PasswordRejected as exc:
        field, key = PASSWORD_ERRORS[exc.reason]
        errors = {field: key}
        return render(
            request, "pages/password.html", status_code=422, principal=principal, errors=errors
        )
    session.commit()
    return redirect("/", "password_changed")
