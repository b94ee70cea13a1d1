"""Devices: the scoped list with filters (organisation, kind, outdated signatures, infected) and
one device's page with its recent scans and findings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from quet.server.deps import find_org, service_errors
from quet.server.services import dashboard, devices
from quet.server.web.render import PageRoute, PageUser, SessionDep, render
from quet.store.models.device import DEVICE_KINDS, FINDING_STATUSES

router = APIRouter(route_class=PageRoute, include_in_schema=False)
STALE_DAYS = 7
PER_PAGE = 50


@router.get("/devices")
def listing(
    request: Request,
    session: SessionDep,
    principal: PageUser,
    org: Annotated[str, Query(max_length=64)] = "",
    kind: Annotated[str, Query(max_length=20)] = "",
    q: Annotated[str, Query(max_length=255)] = "",
    stale: Annotated[str, Query(max_length=5)] = "",
    infected: Annotated[str, Query(max_length=5)] = "",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> HTMLResponse:
    under = find_org(session, principal, org)
    # An unknown kind in the query is a page that does not exist rather than a form error.
    with service_errors(invalid=404):
        result = dashboard.device_page(
            session,
            under,
            kind=kind if kind in DEVICE_KINDS else None,
            hostname=q.strip() or None,
            infected={"1": True, "0": False}.get(infected),
            stale_days=STALE_DAYS if stale == "1" else None,
            page=page,
            per_page=PER_PAGE,
        )
    owners = dashboard.org_codes(session, {d.org_id for d in result.rows})
    return render(
        request,
        "pages/devices.html",
        principal=principal,
        nav_active="devices",
        result=result,
        owners=owners,
        filters={"org": org, "kind": kind, "q": q, "stale": stale, "infected": infected},
        kinds=DEVICE_KINDS,
        stale_days=STALE_DAYS,
        stale_cutoff=datetime.now(UTC) - timedelta(days=STALE_DAYS),
        scope=under,
    )


@router.get("/devices/{device_id}")
def detail(
    device_id: int, request: Request, session: SessionDep, principal: PageUser
) -> HTMLResponse:
    with service_errors():
        device, org = devices.visible(session, principal, device_id)
    return render(
        request,
        "pages/device.html",
        principal=principal,
        nav_active="devices",
        device=device,
        org=org,
        scans=dashboard.scans_of(session, device),
        findings=dashboard.findings(session, org, device_id=device.id, per_page=100),
        owners={org.id: org},
        statuses=FINDING_STATUSES,
    )
