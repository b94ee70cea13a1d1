"""Campaigns: the list, one campaign's phases, countdown and per-organisation progress (who is
late, who has not acknowledged), relaying it down the tree, and the public acknowledgement link."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from quet.errors import QuetError
from quet.server.deps import Principal, SessionDep, SettingsDep, find_org, service_errors
from quet.server.services import campaigns, dashboard
from quet.server.web.render import (
    PageRoute,
    PageUser,
    check_pre_csrf,
    forbidden,
    redirect,
    render,
)
from quet.store.models import Campaign

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _campaign(session: SessionDep, principal: Principal, campaign_id: int) -> Campaign:
    with service_errors():
        return campaigns.get_visible(session, principal, campaign_id)


@router.get("/campaigns")
def listing(request: Request, session: SessionDep, principal: PageUser) -> HTMLResponse:
    rows = []
    for c in campaigns.visible(session, principal):
        figures = dashboard.campaign_figures(session, c, principal.org)
        rows.append((c, campaigns.current_phase(c), figures))
    return render(
        request, "pages/campaigns.html", principal=principal, nav_active="campaigns", rows=rows
    )


def _page(
    request: Request,
    session: SessionDep,
    principal: Principal,
    campaign: Campaign,
    *,
    deliveries: list[campaigns.Delivery] | None = None,
) -> HTMLResponse:
    today = datetime.now(UTC).date()
    phase = campaigns.current_phase(campaign, today)
    rows = campaigns.status(session, campaign, principal.org, today)
    figures = dashboard.campaign_figures(session, campaign, principal.org, today)
    lines = [
        (r, dashboard.state_of(r.received_at, r.deployed_at, r.reported_at, r.late)) for r in rows
    ]
    late = [r for r in rows if r.late]
    unacknowledged = [r for r in rows if r.received_at is None]
    can_relay = principal.user.role in ("admin", "officer")
    return render(
        request,
        "pages/campaign.html",
        principal=principal,
        nav_active="campaigns",
        campaign=campaign,
        scope=campaigns.scope_of(session, campaign),
        phase=phase,
        today=today,
        days_left=(phase.report_deadline - today).days,
        lines=lines,
        late=late,
        unacknowledged=unacknowledged,
        f=figures,
        can_relay=can_relay,
        deliveries=deliveries,
    )


@router.get("/campaigns/{campaign_id}")
def detail(
    campaign_id: int, request: Request, session: SessionDep, principal: PageUser
) -> HTMLResponse:
    return _page(request, session, principal, _campaign(session, principal, campaign_id))


@router.post("/campaigns/{campaign_id}/relay")
def relay(
    campaign_id: int,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: PageUser,
) -> HTMLResponse:
    campaign = _campaign(session, principal, campaign_id)
    if principal.user.role not in ("admin", "officer"):
        raise forbidden()
    base = settings.public_url or str(request.base_url)
    deliveries = campaigns.relay(
        session, campaign, settings, base, under=principal.org, actor=principal.actor
    )
    session.commit()
    return _page(request, session, principal, campaign, deliveries=deliveries)


@router.post("/campaigns/{campaign_id}/orgs/{code}/ack", response_model=None)
def acknowledge(
    campaign_id: int, code: str, request: Request, session: SessionDep, principal: PageUser
) -> Response:
    campaign = _campaign(session, principal, campaign_id)
    org = find_org(session, principal, code)
    with service_errors():
        campaigns.acknowledge(session, principal, campaign, org)
    session.commit()
    return redirect(f"/campaigns/{campaign.id}", "acknowledged")


# -- the link in the e-mail: no sign-in, the token is the proof -----------------------------------
@router.get("/ack/{token}")
def ack_form(token: str, request: Request, session: SessionDep) -> HTMLResponse:
    # Looking only: mail scanners open links, so acknowledging takes the button (a POST).
    found = dashboard.ack_target(session, token)
    if found is None:
        return render(request, "pages/ack.html", status_code=404, token=token, invalid=True)
    part, campaign, org = found
    return render(request, "pages/ack.html", token=token, part=part, campaign=campaign, org=org)


@router.post("/ack/{token}")
def ack(
    token: str,
    request: Request,
    session: SessionDep,
    who: Annotated[str, Form(max_length=200)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> HTMLResponse:
    check_pre_csrf(request, csrf_token)
    try:
        campaigns.acknowledge_token(session, token, who.strip() or "—")
    except QuetError:
        return render(request, "pages/ack.html", status_code=404, token=token, invalid=True)
    session.commit()
    found = dashboard.ack_target(session, token)
    assert found is not None  # acknowledged by this very token
    part, campaign, org = found
    return render(
        request, "pages/ack.html", token=token, part=part, campaign=campaign, org=org, done=True
    )
