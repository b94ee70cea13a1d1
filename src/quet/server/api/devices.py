"""Devices: the agent's heartbeat (inventory), scoped listings, one device, the coverage figure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Path, Query, status
from pydantic import BaseModel, Field

from quet.errors import InputError
from quet.server.deps import (
    CurrentDevice,
    CurrentUser,
    SessionDep,
    SettingsDep,
    find_org,
    service_errors,
)
from quet.server.services import devices, orgs
from quet.store.models import Device, ScanReport

router = APIRouter(tags=["devices"])
CURRENT_DAYS = 7


class HeartbeatIn(BaseModel):
    """What a running agent knows about its machine; absent fields keep the stored values."""

    hostname: str | None = Field(None, max_length=255)
    os: str | None = Field(None, max_length=200)
    ips: list[str] | None = Field(None, max_length=64)
    kind: str | None = Field(None, max_length=16)
    agent_version: str | None = Field(None, max_length=50)
    content_version: int | None = Field(None, ge=0, le=2**31 - 1)
    content_updated_at: datetime | None = None
    antimalware: list[str] | None = Field(None, max_length=32)
    last_scan_at: datetime | None = None


class HeartbeatOut(BaseModel):
    device_id: int
    server_time: datetime
    tuf: bool = Field(description="The server serves content updates at /api/v1/tuf/")


class DevicePublic(BaseModel):
    id: int
    org: str
    hostname: str
    kind: str
    os: str
    ips: list[str]
    agent_version: str
    content_version: int | None
    content_updated_at: datetime | None
    protected_current: bool = Field(description=f"content updated within {CURRENT_DAYS} days")
    antimalware: list[str]
    enrolled_at: datetime
    last_seen: datetime | None
    last_scan_at: datetime | None
    open_findings: int
    uploaded_only: bool


class ScanPublic(BaseModel):
    id: str
    started: datetime
    finished: datetime
    received_at: datetime
    files_scanned: int
    findings_count: int
    errors_count: int
    interrupted: bool


class DeviceDetail(DevicePublic):
    scans: list[ScanPublic]


class DevicePage(BaseModel):
    total: int
    items: list[DevicePublic]


class KindCoverage(BaseModel):
    devices: int
    protected_current: int
    pct: float


class Coverage(BaseModel):
    org: str
    devices: int
    protected_current: int
    pct: float
    stale: int
    infected: int
    scanned: int
    uploaded_only: int
    max_age_days: int
    all_protected: bool
    by_kind: dict[str, KindCoverage]


def public(device: Device, org_code: str) -> DevicePublic:
    cutoff = datetime.now(UTC) - timedelta(days=CURRENT_DAYS)
    updated = device.content_updated_at
    return DevicePublic(
        id=device.id,
        org=org_code,
        hostname=device.hostname,
        kind=device.kind,
        os=device.os,
        ips=list(device.ips or []),
        agent_version=device.agent_version,
        content_version=device.content_version,
        content_updated_at=updated,
        protected_current=updated is not None and updated >= cutoff,
        antimalware=list(device.antimalware or []),
        enrolled_at=device.enrolled_at,
        last_seen=device.last_seen,
        last_scan_at=device.last_scan_at,
        open_findings=device.open_findings,
        uploaded_only=device.uploaded_only,
    )


@router.post("/devices/me/heartbeat", response_model=HeartbeatOut, summary="Agent heartbeat")
def heartbeat(
    body: HeartbeatIn, device: CurrentDevice, session: SessionDep, settings: SettingsDep
) -> HeartbeatOut:
    try:
        devices.heartbeat(session, device, body.model_dump(exclude_unset=True))
    except InputError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    session.commit()
    return HeartbeatOut(
        device_id=device.id, server_time=datetime.now(UTC), tuf=bool(settings.tuf_repo)
    )


@router.get("/devices", response_model=DevicePage, summary="Devices in an organisation's subtree")
def list_devices(
    principal: CurrentUser,
    session: SessionDep,
    org: Annotated[str | None, Query(description="organisation code (default: yours)")] = None,
    kind: Annotated[str | None, Query(pattern="^(server|workstation|endpoint)$")] = None,
    hostname: Annotated[str | None, Query(max_length=255)] = None,
    infected: bool | None = None,
    stale_days: Annotated[int | None, Query(ge=0, le=3650)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> DevicePage:
    under = find_org(session, principal, org)
    total, rows = devices.listing(
        session, under, kind=kind, hostname=hostname, infected=infected,
        stale_days=stale_days, limit=limit, offset=offset,
    )  # fmt: skip
    owners = orgs.by_ids(session, (d.org_id for d in rows))
    return DevicePage(
        total=total,
        items=[public(d, owners[d.org_id].code if d.org_id in owners else "") for d in rows],
    )


@router.get("/devices/coverage", response_model=Coverage, summary="Protected with current content")
def coverage(
    principal: CurrentUser,
    session: SessionDep,
    org: Annotated[str | None, Query(description="organisation code (default: yours)")] = None,
    max_age_days: Annotated[int, Query(ge=1, le=365)] = CURRENT_DAYS,
) -> Coverage:
    under = find_org(session, principal, org)
    figures: dict[str, Any] = devices.coverage(session, under, max_age_days)
    return Coverage(org=under.code, **figures)


@router.get("/devices/{device_id}", response_model=DeviceDetail, summary="One device")
def get_device(
    device_id: Annotated[int, Path(ge=1, le=2**62)],
    principal: CurrentUser,
    session: SessionDep,
) -> DeviceDetail:
    with service_errors():
        device, org = devices.visible(session, principal, device_id)
    scans = session.scalars(
        sa.select(ScanReport)
        .where(ScanReport.device_id == device.id)
        .order_by(ScanReport.finished.desc())
        .limit(20)
    ).all()
    base = public(device, org.code)
    return DeviceDetail(
        **base.model_dump(),
        scans=[ScanPublic.model_validate(s, from_attributes=True) for s in scans],
    )
