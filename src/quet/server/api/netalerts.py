"""Network-watch alerts: `quet net watch --post` upserts them (idempotent by id), people list them
in their subtree and mark them resolved or false positives."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from quet.server.deps import CurrentUser, Principal, SessionDep, find_org, service_errors
from quet.server.services import netalerts, orgs
from quet.server.services.netalerts import NetAlertBatch, NetAlertStatus, Result
from quet.store.models import Device, NetAlertRow

router = APIRouter(tags=["network alerts"])
ID_PATTERN = r"^[0-9a-f]{64}$"


class PostedAlert(BaseModel):
    id: str
    result: Result
    org: str = Field(description="code of the organisation the alert is filed under")
    device: str = Field(description="hostname of the mapped device, or empty")
    device_id: int | None
    note: str = Field(
        description="'' | 'unregistered' (no registered range holds the IP) | 'outside_scope' "
        "(another subtree's range: filed under the poster's organisation) | why it was refused"
    )


class PostOut(BaseModel):
    created: int
    updated: int
    unchanged: int
    refused: int
    alerts: list[PostedAlert]


class ExampleOut(BaseModel):
    file: str
    line: int
    value: str


class NetAlertPublic(BaseModel):
    id: str
    client: str
    org: str
    device: str
    device_id: int | None
    note: str
    indicator_type: str
    indicator: str
    name: str
    family: str
    source_feed: str
    first_seen: datetime | None
    last_seen: datetime | None
    count: int
    fields: list[str]
    examples: list[ExampleOut]
    status: str
    received_at: datetime
    updated_at: datetime
    reporter: str


class NetAlertPage(BaseModel):
    total: int
    items: list[NetAlertPublic]


class NetAlertUpdate(BaseModel):
    status: NetAlertStatus


def _examples(values: list[Any]) -> list[ExampleOut]:
    out = []
    for v in values or []:
        if isinstance(v, dict):
            out.append(
                ExampleOut(
                    file=str(v.get("file", "")),
                    line=int(v.get("line", 0)),
                    value=str(v.get("value", "")),
                )
            )
    return out


def _public(rows: list[NetAlertRow], session: SessionDep) -> list[NetAlertPublic]:
    codes = {i: o.code for i, o in orgs.by_ids(session, (r.org_id for r in rows)).items()}
    dev_ids = {r.device_id for r in rows if r.device_id is not None}
    hosts: dict[int, str] = {}
    if dev_ids:
        q2 = sa.select(Device.id, Device.hostname).where(Device.id.in_(dev_ids))
        hosts = {i: h for i, h in session.execute(q2).all()}
    return [
        NetAlertPublic(
            id=r.id,
            client=r.client,
            org=codes.get(r.org_id, "") if r.org_id is not None else "",
            device=hosts.get(r.device_id, "") if r.device_id is not None else "",
            device_id=r.device_id,
            note=r.note,
            indicator_type=r.indicator_type,
            indicator=r.indicator,
            name=r.name,
            family=r.family,
            source_feed=r.source_feed,
            first_seen=r.first_seen,
            last_seen=r.last_seen,
            count=r.count,
            fields=[str(f) for f in r.fields or []],
            examples=_examples(r.examples),
            status=r.status,
            received_at=r.received_at,
            updated_at=r.updated_at,
            reporter=r.reporter,
        )
        for r in rows
    ]


def _post_once(session: SessionDep, principal: Principal, body: NetAlertBatch) -> PostOut:
    answers = netalerts.post_alerts(session, principal, body.alerts)
    session.commit()
    return PostOut(
        created=sum(a.result == "created" for a in answers),
        updated=sum(a.result == "updated" for a in answers),
        unchanged=sum(a.result == "unchanged" for a in answers),
        refused=sum(a.result == "refused" for a in answers),
        alerts=[
            PostedAlert(
                id=a.id,
                result=a.result,
                org=a.org,
                device=a.device,
                device_id=a.device_id,
                note=a.note,
            )
            for a in answers
        ],
    )


@router.post(
    "/net/alerts",
    response_model=PostOut,
    summary="Post network-watch alerts (upsert by id)",
    responses={403: {"description": "viewers may not post alerts"}},
)
def post_alerts(body: NetAlertBatch, principal: CurrentUser, session: SessionDep) -> PostOut:
    with service_errors():
        try:
            return _post_once(session, principal, body)
        except sa.exc.IntegrityError:
            # Another request created one of these ids meanwhile: run again, now as updates.
            session.rollback()
            return _post_once(session, principal, body)


@router.get("/net/alerts", response_model=NetAlertPage, summary="Network alerts in a subtree")
def list_alerts(
    principal: CurrentUser,
    session: SessionDep,
    org: Annotated[str | None, Query(description="organisation code (default: yours)")] = None,
    status_: Annotated[
        NetAlertStatus | None, Query(alias="status", description="open|resolved|false_positive")
    ] = None,
    family: Annotated[str | None, Query(max_length=200)] = None,
    client: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> NetAlertPage:
    under = find_org(session, principal, org)
    with service_errors():
        total, rows = netalerts.listing(
            session, under, status=status_, family=family, client=client, limit=limit, offset=offset
        )
    return NetAlertPage(total=total, items=_public(rows, session))


@router.get("/net/alerts/{alert_id}", response_model=NetAlertPublic, summary="One network alert")
def get_alert(
    alert_id: Annotated[str, Path(pattern=ID_PATTERN)], principal: CurrentUser, session: SessionDep
) -> NetAlertPublic:
    with service_errors():
        row = netalerts.visible(session, principal, alert_id)
    return _public([row], session)[0]


@router.patch(
    "/net/alerts/{alert_id}",
    response_model=NetAlertPublic,
    summary="Mark a network alert resolved, a false positive, or open",
)
def update_alert(
    alert_id: Annotated[str, Path(pattern=ID_PATTERN)],
    body: NetAlertUpdate,
    principal: CurrentUser,
    session: SessionDep,
) -> NetAlertPublic:
    with service_errors():
        row = netalerts.set_status(session, principal, alert_id, body.status)
    session.commit()
    return _public([row], session)[0]
