"""Findings: the scoped list with filters (status, family, organisation) and the remediation
status change (a form, or htmx swapping the one row)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from quet.server.deps import find_org, service_errors
from quet.server.services import dashboard, ingest, rollups
from quet.server.web.render import (
    PageRoute,
    PageUser,
    SessionDep,
    is_htmx,
    redirect,
    render,
    safe_next,
)
from quet.store.models import Device, Organisation
from quet.store.models.device import FINDING_STATUSES

router = APIRouter(route_class=PageRoute, include_in_schema=False)
PER_PAGE = 50


@router.get("/findings")
def listing(
    request: Request,
    session: SessionDep,
    principal: PageUser,
    status: Annotated[str, Query(max_length=20)] = "",
    family: Annotated[str, Query(max_length=100)] = "",
    org: Annotated[str, Query(max_length=64)] = "",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> HTMLResponse:
    under = find_org(session, principal, org)
    result = dashboard.findings(
        session,
        under,
        status=status if status in FINDING_STATUSES else None,
        family=family.strip() or None,
        page=page,
        per_page=PER_PAGE,
    )
    owners = dashboard.org_codes(session, {f.org_id for f, _ in result.rows})
    return render(
        request,
        "pages/findings.html",
        principal=principal,
        nav_active="findings",
        result=result,
        owners=owners,
        filters={"status": status, "family": family, "org": org},
        statuses=FINDING_STATUSES,
        scope=under,
    )


@router.post("/findings/{finding_id}/status", response_model=None)
def set_status(
    finding_id: int,
    request: Request,
    session: SessionDep,
    principal: PageUser,
    status: Annotated[str, Form(max_length=20)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/findings",
) -> Response:
    # An unknown status is a page that does not exist rather than a form error.
    with service_errors(invalid=404):
        row = ingest.set_finding_status(session, principal, finding_id, status)
    # The tree's figures come from the roll-ups: keep this organisation's current.
    rollups.refresh(session, row.org_id)
    session.commit()
    if not is_htmx(request):
        return redirect(safe_next(next, "/findings"), "status_changed")
    device = session.get(Device, row.device_id)
    owner = session.get(Organisation, row.org_id)
    return render(
        request,
        "pages/finding_row.html",
        principal=principal,
        f=row,
        host=device.hostname if device else "",
        owner=owner,
        can_change=True,
        statuses=FINDING_STATUSES,
        next=safe_next(next, "/findings"),
    )
