"""/api/v1/campaigns and /api/v1/ack: campaigns with their phases, the participation status under
the caller, relaying to every organisation in scope, acknowledgements and reports."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, status
from sqlalchemy.orm import Session

from quet.errors import InputError
from quet.server.api.orgs import find_org
from quet.server.deps import CurrentUser, Principal, SessionDep, SettingsDep, require_change
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
from quet.store.models import Campaign, Organisation, Participation

router = APIRouter(tags=["campaigns"])
CampaignId = Annotated[int, Path(ge=1, le=2**62)]


@contextmanager
def _errors() -> Iterator[None]:
    """Service errors become HTTP answers."""
    try:
        yield
    except svc.NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except svc.Forbidden as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
    except InputError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(exc)) from exc


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
    with _errors():
        return svc.get_visible(session, principal, campaign_id)


def _codes(session: Session, rows: list[svc.ParticipationStatus]) -> dict[int, str]:
    ids = {r.org.parent_id for r in rows if r.org.parent_id is not None}
    known = {r.org.id: r.org.code for r in rows}
    for i in ids - set(known):
        org = session.get(Organisation, i)
        if org is not None:
            known[i] = org.code
    return known


@router.post("/campaigns", response_model=CampaignPublic, status_code=status.HTTP_201_CREATED)
def create_campaign(
    body: CampaignCreate, session: SessionDep, principal: CurrentUser
) -> CampaignPublic:
    scope = find_org(session, principal, body.scope_code) if body.scope_code else principal.org
    require_change(principal, scope)
    phases = [
        svc.PhaseSpec(p.number, p.name, p.starts, p.ends, p.report_deadline) for p in body.phases
    ]
    with _errors():
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
    codes = _codes(session, rows)
    return CampaignDetail(
        **_public(session, campaign).model_dump(),
        participation=[
            ParticipationPublic(
                org_code=r.org.code,
                org_name=r.org.name,
                parent_code=codes.get(r.org.parent_id) if r.org.parent_id else None,
                notified_at=r.notified_at,
                received_at=r.received_at,
                received_by=r.received_by,
                deployed_at=r.deployed_at,
                reported_at=r.reported_at,
                late=r.late,
                devices=r.devices,
                infected=r.infected,
            )
            for r in rows
        ],
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
    with _errors():
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
    with _errors():
        row = svc.acknowledge_token(session, body.token, who)
    session.commit()
    return _ack_public(session, row)


@router.post("/campaigns/{campaign_id}/orgs/{code}/ack", response_model=AckPublic)
def acknowledge(
    campaign_id: CampaignId, code: str, session: SessionDep, principal: CurrentUser
) -> AckPublic:
    campaign = _get(session, principal, campaign_id)
    org = find_org(session, principal, code)
    with _errors():
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
    with _errors():
        svc.mark_reported(session, principal, campaign, org, body.fields)
    session.commit()
    row = next(r for r in svc.status(session, campaign, org) if r.org.id == org.id)
    parent = session.get(Organisation, org.parent_id) if org.parent_id else None
    return ParticipationPublic(
        org_code=org.code,
        org_name=org.name,
        parent_code=parent.code if parent else None,
        notified_at=row.notified_at,
        received_at=row.received_at,
        received_by=row.received_by,
        deployed_at=row.deployed_at,
        reported_at=row.reported_at,
        late=row.late,
        devices=row.devices,
        infected=row.infected,
    )
