"""The audit log of the person's part of the tree, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from quet.server.services import dashboard
from quet.server.web.render import PageRoute, PageUser, SessionDep, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/audit")
def audit_log(
    request: Request,
    session: SessionDep,
    principal: PageUser,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> HTMLResponse:
    result = dashboard.audit(session, principal.org, page=page, per_page=50)
    owners = dashboard.org_codes(session, (e.org_id for e in result.rows))
    return render(
        request,
        "pages/audit.html",
        principal=principal,
        nav_active="audit",
        result=result,
        owners=owners,
    )
