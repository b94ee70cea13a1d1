"""Rendering the web pages: the Jinja2 environment, the per-request context (language, person,
CSRF), the page-only dependencies (sign-in redirect, CSRF on forms) and HTML error pages."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Coroutine
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import quote, urlencode

from fastapi import Depends, HTTPException, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException

from quet import __version__
from quet.server.deps import UNSAFE, Principal, SessionDep, csrf_from, optional_principal
from quet.server.web import i18n

TEMPLATES = Path(__file__).parent / "templates"
LANG_COOKIE = "quet_lang"
PRE_CSRF_COOKIE = "quet_form"  # double-submit token for forms without a session (login, ack)
PASSWORD_PAGE = "/account/password"
# Times are stored in UTC and shown in Vietnam's time (UTC+7 all year, no daylight saving).
DISPLAY_TZ = timezone(timedelta(hours=7), "ICT")

D = TypeVar("D", date, datetime, None)

env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)

# The only messages a redirect may ask the next page to show (?flash=key): never free text.
FLASHES: dict[str, str] = {
    "saved": "success",
    "acknowledged": "success",
    "logged_out": "info",
    "password_changed": "success",
    "status_changed": "success",
}


def local(value: D) -> D:
    """An aware datetime in Vietnam's time; dates and None unchanged."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(DISPLAY_TZ)
    return value


def lang_of(request: Request) -> str:
    # Vietnamese unless the person chose English: browsers' Accept-Language is often en-US
    # on machines set up in Vietnamese, so it does not count.
    return i18n.normalise_lang(
        request.query_params.get("lang") or request.cookies.get(LANG_COOKIE) or None
    )


def safe_next(value: str | None, default: str = "/") -> str:
    """Only a path on this site: no scheme, no host, no '//' (an open redirect otherwise)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    return value


def here(request: Request) -> str:
    path = request.url.path
    return f"{path}?{request.url.query}" if request.url.query else path


def user_view(principal: Principal | None) -> dict[str, str] | None:
    if principal is None:
        return None
    return {
        "username": principal.user.username,
        "display_name": principal.user.full_name or principal.user.username,
        "role": principal.user.role,
        "org_name": principal.org.name,
    }


def pre_csrf(request: Request) -> str:
    """The token of a form shown before sign-in: the cookie's, or a new one (set by render)."""
    token = request.cookies.get(PRE_CSRF_COOKIE, "")
    if len(token) < 20:
        token = getattr(request.state, "new_pre_csrf", "") or secrets.token_urlsafe(24)
        request.state.new_pre_csrf = token
    return token


def render(
    request: Request,
    template: str,
    *,
    status_code: int = 200,
    principal: Principal | None = None,
    nav_active: str = "",
    **ctx: Any,
) -> HTMLResponse:
    lang = lang_of(request)
    t = i18n.translator(lang)
    back = here(request)
    context: dict[str, Any] = i18n.template_context(lang)
    flash = request.query_params.get("flash", "")
    flashes = [(FLASHES[flash], t(f"flash.{flash}"))] if flash in FLASHES else []
    context.update(
        format_date=lambda d: i18n.format_date(local(d), lang),
        format_datetime=lambda d: i18n.format_datetime(local(d), lang),
        request=request,
        user=user_view(principal),
        principal=principal,
        csrf_token=principal.csrf if principal is not None else pre_csrf(request),
        static_url=lambda p: f"/static/{p}",
        nav_active=nav_active,
        lang_url=lambda code: f"/lang/{code}?next={quote(back, safe='')}",
        profile_url="/account/password",
        version=__version__,
        flashes=flashes,
        query=lambda **kw: query_string(request, **kw),
        has_key=lambda key: key in i18n.CATALOG,
        errors={},
        error="",
    )
    context.update(ctx)
    if "flashes" in ctx and flashes:
        context["flashes"] = flashes + list(ctx["flashes"])
    html = env.get_template(template).render(context)
    response = HTMLResponse(html, status_code=status_code)
    new = getattr(request.state, "new_pre_csrf", "")
    if new:
        response.set_cookie(
            PRE_CSRF_COOKIE, new, httponly=True, samesite="strict", secure=_secure(request)
        )
    return response


def query_string(request: Request, **changes: Any) -> str:
    """This page's query with some parameters replaced (None or "" drops one); page resets."""
    params = {k: v for k, v in request.query_params.items() if k not in ("flash", "lang")}
    if "page" not in changes:
        params.pop("page", None)
    for key, value in changes.items():
        if value is None or value == "":
            params.pop(key, None)
        else:
            params[key] = str(value)
    return "?" + urlencode(params)


def _secure(request: Request) -> bool:
    return bool(request.app.state.settings.secure_cookies)


def check_pre_csrf(request: Request, submitted: str) -> None:
    cookie = request.cookies.get(PRE_CSRF_COOKIE, "")
    if not cookie or not submitted or not hmac.compare_digest(cookie, submitted):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "error.csrf")


# -- dependencies ---------------------------------------------------------------------------------
async def page_principal(
    request: Request, principal: Annotated[Principal | None, Depends(optional_principal)]
) -> Principal:
    """The signed-in person of a page: a redirect to /login when nobody is, to the password page
    when it must change, 403 on a form without the session's CSRF token."""
    if principal is None:
        target = "/login?" + urlencode({"next": here(request)})
        raise HTTPException(status.HTTP_303_SEE_OTHER, headers={"Location": target})
    if principal.user.must_change_password and request.url.path != PASSWORD_PAGE:
        raise HTTPException(status.HTTP_303_SEE_OTHER, headers={"Location": PASSWORD_PAGE})
    if request.method in UNSAFE:
        token = await csrf_from(request)
        if not principal.session_id or not hmac.compare_digest(token, principal.csrf):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "error.csrf")
    return principal


PageUser = Annotated[Principal, Depends(page_principal)]
__all__ = ["PageUser", "SessionDep", "render"]


def not_found() -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, "error.not_found")


def forbidden() -> HTTPException:
    return HTTPException(status.HTTP_403_FORBIDDEN, "error.forbidden")


def redirect(url: str, flash: str = "") -> RedirectResponse:
    if flash:
        url += ("&" if "?" in url else "?") + f"flash={flash}"
    return RedirectResponse(url, status_code=status.HTTP_303_SEE_OTHER)


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


# -- errors as pages ------------------------------------------------------------------------------
_MESSAGES = {400: "error.invalid", 403: "error.forbidden", 404: "error.not_found"}


def error_page(request: Request, code: int, detail: str = "") -> HTMLResponse:
    key = detail if detail in i18n.CATALOG else _MESSAGES.get(code, "error.server")
    if code == 422:
        key = "error.invalid"
    return render(request, "pages/error.html", status_code=code, code=code, message_key=key)


class PageRoute(APIRoute):
    """Routes of the web pages: an HTTPException (from the page or a dependency) becomes an
    HTML page in the person's language, and 303 a plain redirect, instead of FastAPI's JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError:
                return error_page(request, 422)
            except StarletteHTTPException as exc:
                if exc.status_code in (301, 302, 303, 307) and exc.headers:
                    return RedirectResponse(exc.headers["Location"], status_code=exc.status_code)
                return error_page(request, exc.status_code, str(exc.detail))

        return page_handler
