"""Enrollment: an officer creates a token for an organisation; an agent exchanges it for its own
device credential (POST /api/v1/enroll)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, Field

from quet.errors import InputError
from quet.server import security
from quet.server.deps import CurrentUser, SessionDep, require_change
from quet.server.services import devices, orgs
from quet.store.models import EnrollmentToken, Organisation
from quet.store.models.device import DEVICE_KINDS

router = APIRouter(tags=["devices"])


class EnrollmentTokenCreate(BaseModel):
    label: str = Field("", max_length=200, description="What the token is for, e.g. 'IT room'")
    days: int | None = Field(90, ge=1, le=3650, description="Valid this many days (null: never)")
    max_uses: int = Field(1000, ge=1, le=1_000_000)


class EnrollmentTokenPublic(BaseModel):
    token: str = Field(description="Shown once: give it to the agents (`quet agent enroll`)")
    org: str
    label: str
    expires_at: datetime | None
    max_uses: int


class EnrollIn(BaseModel):
    token: str = Field(min_length=1, max_length=200)
    hostname: str = Field(min_length=1, max_length=255)
    os: str = Field("", max_length=200)
    ips: list[str] = Field(default_factory=list, max_length=64)
    kind: str = Field("workstation", description=" | ".join(DEVICE_KINDS))
    agent_version: str = Field("", max_length=50)


class EnrollOut(BaseModel):
    device_id: int
    credential: str = Field(description="Shown once; send as `Authorization: Device <credential>`")
    org: str


@router.post(
    "/orgs/{code}/enrollment-tokens",
    response_model=EnrollmentTokenPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Create an enrollment token for an organisation (officer or admin)",
)
def create_token(
    code: str, body: EnrollmentTokenCreate, principal: CurrentUser, session: SessionDep
) -> EnrollmentTokenPublic:
    org = orgs.by_code(session, code)
    if org is None or not principal.can_see(org):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no organisation {code!r}")
    require_change(principal, org)
    token = devices.create_enrollment_token(
        session, principal.actor, org, body.label, days=body.days, max_uses=body.max_uses
    )
    session.flush()
    row = session.scalars(
        sa.select(EnrollmentToken).where(EnrollmentToken.token_hash == security.token_hash(token))
    ).one()
    session.commit()
    return EnrollmentTokenPublic(
        token=token,
        org=org.code,
        label=body.label,
        expires_at=row.expires_at,
        max_uses=body.max_uses,
    )


@router.post(
    "/enroll",
    response_model=EnrollOut,
    status_code=status.HTTP_201_CREATED,
    summary="Exchange an enrollment token for a device credential (the agent calls this)",
    responses={403: {"description": "unknown, expired, revoked or used-up token"}},
)
def enroll(body: EnrollIn, session: SessionDep) -> EnrollOut:
    try:
        device, credential = devices.enroll(session, body.token, body.model_dump())
    except devices.EnrollmentError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
    except InputError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    org = session.get(Organisation, device.org_id)
    session.commit()
    return EnrollOut(device_id=device.id, credential=credential, org=org.code if org else "")
