"""/api/v1/campaigns and /api/v1/ack: campaigns with their phases, the participation status under
the caller, relaying to every organisation in scope, acknowledgements and reports."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, status
from sqlalchemy.orm import Session

from quet.server.deps import (
    CurrentUser,
    Principal,
    SessionDep,
    SettingsDep,
    find_org,
    require_change,
    service_errors,
)
from quet.server.schemas.campaigns import (
    AckIn,
    AckPublic,
    CampaignCreate,
    CampaignDetail,
    CampaignPublic,
    DeliveryPublic,
    ParticipationPublic,
    PhasePublic,
    ReportIn,
)
from quet.server.services import campaigns as svc
from quet.server.services import orgs
from quet.store.models import Campaign, Organisation, Participation

router = APIRouter(tags=["campaigns"])
CampaignId = Annotated[int, Path(ge=1, le=2**62)]


def _public(session: Session, campaign: Campaign) -> CampaignPublic:
    return CampaignPublic(
        id=campaign.id,
        name=campaign.name,
        year=campaign.year,
        description=campaign.description,
        scope_code=svc.scope_of(session, campaign).code,
        bundle_version=campaign.bundle_version,
        created_by=campaign.created_by,
        created_at=campaign.created_at,
        phases=[
            PhasePublic(
                number=p.number,
                name=p.name,
                starts=p.starts,
                ends=p.ends,
                report_deadline=p.report_deadline,
            )
            for p in campaign.phases
        ],
    )


def _get(session: Session, principal: Principal, campaign_id: int) -> Campaign:
    with service_errors():
        return svc.get_visible(session, principal, campaign_id)


def _participation(row: svc.ParticipationStatus, parent_code: str | None) -> ParticipationPublic:
    return ParticipationPublic(
        org_code=row.org.code,
        org_name=row.org.name,
        parent_code=parent_code,
        notified_at=row.notified_at,
        received_at=row.received_at,
        received_by=row.received_by,
        deployed_at=row.deployed_at,
        reported_at=row.reported_at,
        late=row.late,
        devices=row.devices,
        infected=row.infected,
    )


@router.post("/campaigns", response_model=CampaignPublic, status_code=status.HTTP_201_CREATED)
def create_campaign(
    body: CampaignCreate, session: SessionDep, principal: CurrentUser
) -> CampaignPublic:
    scope = find_org(session, principal, body.scope_code)
    require_change(principal, scope)
    phases = [
        svc.PhaseSpec(p.number, p.name, p.starts, p.ends, p.report_deadline) for p in body.phases
    ]
    with service_errors():
        campaign = svc.create_campaign(
            session,
            principal.actor,
            body.name,
            body.year,
            scope,
            phases,
            bundle_version=body.bundle_version,
            description=body.description,
        )
    session.commit()
    return _public(session, campaign)


@router.get("/campaigns", response_model=list[CampaignPublic])
def list_campaigns(session: SessionDep, principal: CurrentUser) -> list[CampaignPublic]:
    """Campaigns you take part in (scoped above you) or run (scoped inside your subtree)."""
    return [_public(session, c) for c in svc.visible(session, principal)]


@router.get("/campaigns/{campaign_id}", response_model=CampaignDetail)
def get_campaign(
    campaign_id: CampaignId, session: SessionDep, principal: CurrentUser
) -> CampaignDetail:
    """The campaign and, for every organisation of it under yours: received, deployed, reported,
    late, devices and infected devices."""
    campaign = _get(session, principal, campaign_id)
    rows = svc.status(session, campaign, principal.org)
    parents = orgs.parent_codes(session, (r.org for r in rows))
    return CampaignDetail(
        **_public(session, campaign).model_dump(),
        participation=[_participation(r, parents[r.org.id]) for r in rows],
        not_acknowledged=[r.org.code for r in rows if r.received_at is None],
    )


@router.post("/campaigns/{campaign_id}/relay", response_model=list[DeliveryPublic])
def relay(
    campaign_id: CampaignId,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: CurrentUser,
) -> list[DeliveryPublic]:
    """Notify (again) every organisation of the campaign under yours that has not acknowledged:
    an e-mail to its contact and a signed webhook, each with a fresh acknowledgement link."""
    campaign = _get(session, principal, campaign_id)
    require_change(principal, principal.org)
    base = settings.public_url or str(request.base_url)
    with service_errors():
        deliveries = svc.relay(
            session, campaign, settings, base, under=principal.org, actor=principal.actor
        )
    session.commit()
    return [
        DeliveryPublic(org_code=d.org_code, channel=d.channel, ok=d.ok, error=d.error)
        for d in deliveries
    ]


def _ack_public(session: Session, row: Participation) -> AckPublic:
    campaign = session.get(Campaign, row.campaign_id)
    org = session.get(Organisation, row.org_id)
    assert campaign is not None and org is not None and row.received_at is not None
    return AckPublic(
        campaign_id=campaign.id,
        campaign_name=campaign.name,
        org_code=org.code,
        received_at=row.received_at,
        received_by=row.received_by,
    )


@router.post("/ack", response_model=AckPublic)
def acknowledge_link(body: AckIn, request: Request, session: SessionDep) -> AckPublic:
    """Acknowledge receipt with the token from the e-mail's link; no sign-in needed."""
    who = body.name.strip() or (request.client.host if request.client else "link")
    with service_errors():
        row = svc.acknowledge_token(session, body.token, who)
    session.commit()
    return _ack_public(session, row)


@router.post("/campaigns/{campaign_id}/orgs/{code}/ack", response_model=AckPublic)
def acknowledge(
    campaign_id: CampaignId, code: str, session: SessionDep, principal: CurrentUser
) -> AckPublic:
    campaign = _get(session, principal, campaign_id)
    org = find_org(session, principal, code)
    with service_errors():
        row = svc.acknowledge(session, principal, campaign, org)
    session.commit()
    return _ack_public(session, row)


@router.post("/campaigns/{campaign_id}/orgs/{code}/report", response_model=ParticipationPublic)
def report(
    campaign_id: CampaignId,
    code: str,
    body: ReportIn,
    session: SessionDep,
    principal: CurrentUser,
) -> ParticipationPublic:
    """Mark the organisation's report as sent; its fields are stored as given."""
    campaign = _get(session, principal, campaign_id)
    org = find_org(session, principal, code)
    with service_errors():
        svc.mark_reported(session, principal, campaign, org, body.fields)
    session.commit()
    row = next(r for r in svc.status(session, campaign, org) if r.org.id == org.id)
    parent = orgs.parent(session, org)
    return _participation(row, parent.code if parent else None)
