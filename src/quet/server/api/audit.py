"""/api/v1/audit: the audit log of your organisation's subtree, newest first, in pages."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Query

from quet.server.deps import CurrentUser, SessionDep
from quet.server.schemas.audit import AuditPage, AuditPublic
from quet.server.services import orgs, paging
from quet.store.models import AuditEntry, Organisation

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("", response_model=AuditPage)
def list_audit(
    session: SessionDep,
    principal: CurrentUser,
    action: Annotated[str | None, Query(max_length=100, description="e.g. org.create")] = None,
    actor: Annotated[str | None, Query(max_length=200, description="e.g. user:alice")] = None,
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=500)] = 50,
) -> AuditPage:
    """Entries about organisations in your subtree; entries tied to no organisation (failed
    sign-ins, system events) only for people of the root."""
    in_scope = AuditEntry.org_id.in_(orgs.subtree_ids(session, principal.org))
    where = (
        sa.or_(in_scope, AuditEntry.org_id.is_(None))
        if principal.org.parent_id is None
        else in_scope
    )
    query = (
        sa.select(AuditEntry, Organisation.code)
        .outerjoin(Organisation, Organisation.id == AuditEntry.org_id)
        .where(where)
    )
    if action:
        query = query.where(AuditEntry.action == action)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    total = paging.count(session, query)
    rows = session.execute(
        paging.window(query.order_by(AuditEntry.id.desc()), page, per_page)
    ).all()
    return AuditPage(
        total=total,
        page=page,
        per_page=per_page,
        items=[
            AuditPublic(
                id=e.id,
                at=e.at,
                actor=e.actor,
                action=e.action,
                target=e.target,
                org_code=code,
                ip=e.ip,
                detail=e.detail,
            )
            for e, code in rows
        ],
    )
