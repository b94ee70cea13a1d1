"""/api/v1/orgs: the organisation tree under the caller, one organisation, creation, changes,
CSV import and the provinces list. Unseen organisations are 404; seen but not changeable, 403."""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Query, UploadFile, status
from sqlalchemy.orm import QueryableAttribute, Session

from quet.server.deps import CurrentUser, SessionDep, find_org, require_change, service_errors
from quet.server.orgdata import EDITIONS
from quet.server.schemas.orgs import ImportReport, OrgCreate, OrgNode, OrgPublic, OrgUpdate
from quet.server.services import audit, org_import, orgs
from quet.store.models import Device, Organisation, User

router = APIRouter(prefix="/orgs", tags=["orgs"])
MAX_UPLOAD = 20 * 1024 * 1024


def public(session: Session, org: Organisation) -> OrgPublic:
    parent = orgs.parent(session, org)
    return OrgPublic(
        code=org.code,
        name=org.name,
        kind=org.kind,
        parent_code=parent.code if parent else None,
        depth=org.depth,
        contact_name=org.contact_name,
        contact_email=org.contact_email,
        contact_phone=org.contact_phone,
        webhook_url=org.webhook_url,
        sector=org.sector,
        ip_ranges=sorted(n.cidr for n in org.networks),
        domains=sorted(d.domain for d in org.domains),
        asns=sorted(a.asn for a in org.asns),
        created_at=org.created_at,
        updated_at=org.updated_at,
    )


def _group_counts(
    session: Session, column: QueryableAttribute[Any], under: Organisation
) -> dict[int, int]:
    ids = orgs.subtree_ids(session, under)
    rows = session.execute(
        sa.select(column, sa.func.count()).where(column.in_(ids)).group_by(column)
    ).all()
    return {key: n for key, n in rows if key is not None}


@router.get("", response_model=list[OrgNode])
def tree(
    session: SessionDep,
    principal: CurrentUser,
    under: Annotated[
        str | None, Query(description="start here (default: your organisation)")
    ] = None,
    depth: Annotated[int | None, Query(ge=0, le=20, description="levels below the start")] = None,
) -> list[OrgNode]:
    """The tree under your organisation in depth-first order, with counts of direct children,
    devices and people of each."""
    top = find_org(session, principal, under)
    query = sa.select(Organisation).where(orgs.subtree_clause(top))
    if depth is not None:
        query = query.where(Organisation.depth <= top.depth + depth)
    found = list(session.scalars(query.order_by(Organisation.path)))
    children = _group_counts(session, Organisation.parent_id, top)
    devices = _group_counts(session, Device.org_id, top)
    people = _group_counts(session, User.org_id, top)
    parent_codes = orgs.parent_codes(session, found)
    return [
        OrgNode(
            code=o.code,
            name=o.name,
            kind=o.kind,
            parent_code=parent_codes.get(o.id),
            depth=o.depth,
            children=children.get(o.id, 0),
            devices=devices.get(o.id, 0),
            users=people.get(o.id, 0),
        )
        for o in found
    ]


@router.post("", response_model=OrgPublic, status_code=status.HTTP_201_CREATED)
def create(body: OrgCreate, session: SessionDep, principal: CurrentUser) -> OrgPublic:
    parent = find_org(session, principal, body.parent_code)
    require_change(principal, parent)
    if orgs.by_code(session, body.code) is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"organisation code {body.code!r} exists")
    org = orgs.create(
        session,
        body.code,
        body.name,
        body.kind,
        parent,
        contact_name=body.contact_name,
        contact_email=body.contact_email,
        contact_phone=body.contact_phone,
        webhook_url=body.webhook_url,
        sector=body.sector,
        ip_ranges=body.ip_ranges,
        domains=body.domains,
        asns=body.asns,
    )
    audit.record(session, principal.actor, "org.create", f"org:{org.code}", org.id)
    session.commit()
    return public(session, org)


@router.post("/import", response_model=ImportReport)
def import_csv(file: UploadFile, session: SessionDep, principal: CurrentUser) -> ImportReport:
    """Import a CSV file (multipart field `file`) under your organisation: rows whose code exists
    update it, new codes are added; every rejected line is listed as file:line: why."""
    require_change(principal, principal.org)
    raw = file.file.read(MAX_UPLOAD + 1)
    if len(raw) > MAX_UPLOAD:
        raise HTTPException(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, "CSV file over 20 MB")
    name = Path(file.filename or "upload.csv").name or "upload.csv"
    with tempfile.TemporaryDirectory(prefix="quet-import-") as tmp:
        path = Path(tmp) / "upload.csv"
        path.write_bytes(raw)
        with service_errors():
            result = org_import.import_csv(
                session, principal.actor, path, principal.org, source=name
            )
    audit.record(
        session,
        principal.actor,
        "org.import",
        f"file:{name}",
        principal.org.id,
        {
            "added": len(result.added),
            "updated": len(result.updated),
            "rejected": len(result.rejected),
        },
    )
    session.commit()
    return ImportReport(**asdict(result))


@router.post("/provinces", response_model=ImportReport)
def import_provinces(
    session: SessionDep,
    principal: CurrentUser,
    edition: Annotated[str, Query(pattern="^(2025|2008)$")] = EDITIONS[0],
) -> ImportReport:
    """Add the provinces (2025: 34, 2008: 63) under the root; administrators of the root only."""
    root = orgs.root(session)
    assert root is not None
    if not principal.can_see(root):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only the root organisation adds provinces")
    if not principal.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "administrators only")
    result = org_import.import_provinces(session, principal.actor, edition, root)
    session.commit()
    return ImportReport(**asdict(result))


@router.get("/{code}", response_model=OrgPublic)
def get(code: str, session: SessionDep, principal: CurrentUser) -> OrgPublic:
    return public(session, find_org(session, principal, code))


@router.patch("/{code}", response_model=OrgPublic)
def update(code: str, body: OrgUpdate, session: SessionDep, principal: CurrentUser) -> OrgPublic:
    """Change the fields sent (the others stay); the root's kind stays 'national'."""
    org = find_org(session, principal, code)
    with service_errors():
        orgs.update(session, principal, org, orgs.OrgChanges(**body.model_dump()))
    session.commit()
    return public(session, org)
