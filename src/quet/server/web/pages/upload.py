"""Uploading a `quet scan --json` file for a machine that never enrolled an agent."""

from __future__ import annotations

import json
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import HTMLResponse

from quet.errors import InputError
from quet.server.deps import Principal
from quet.server.services import ingest, orgs, rollups
from quet.server.web.render import PageRoute, PageUser, SessionDep, forbidden, render
from quet.store.models import Device, Organisation, ScanReport

router = APIRouter(route_class=PageRoute, include_in_schema=False)
MAX_UPLOAD = 64 * 1024 * 1024


def _choices(session: SessionDep, principal: Principal) -> list[Organisation]:
    if principal.user.role not in ("admin", "officer"):
        return []
    return list(
        session.scalars(
            sa.select(Organisation)
            .where(orgs.subtree_clause(principal.org))
            .order_by(Organisation.path)
            .limit(5000)
        )
    )


def _choice_context(session: SessionDep, principal: Principal) -> dict[str, Any]:
    choices = _choices(session, principal)
    # An em space per level shows the tree inside the <select>.
    indent = [(o.code, "\u2003" * (o.depth - principal.org.depth) + o.name) for o in choices]
    return {"choices": choices, "org_options": indent}


@router.get("/upload")
def form(request: Request, session: SessionDep, principal: PageUser) -> HTMLResponse:
    return render(
        request,
        "pages/upload.html",
        principal=principal,
        nav_active="devices",
        **_choice_context(session, principal),
        selected=principal.org.code,
    )


@router.post("/upload")
async def upload(
    request: Request,
    session: SessionDep,
    principal: PageUser,
    file: UploadFile,
    org: Annotated[str, Form(max_length=64)] = "",
) -> HTMLResponse:
    target = orgs.by_code(session, org) if org else principal.org
    if target is None or not principal.can_see(target):
        target = None
    if target is None or not principal.can_change(target):
        raise forbidden()
    raw = await file.read(MAX_UPLOAD + 1)
    error = ""
    result = None
    try:
        if len(raw) > MAX_UPLOAD:
            raise InputError("larger than 64 MiB")
        try:
            data = json.loads(raw.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"not JSON ({exc})") from None
        if not isinstance(data, dict):
            raise InputError("not a JSON object")
        scan_id, duplicate = ingest.upload(session, principal, target, data)
        rollups.refresh(session, target.id)
        session.commit()
        scan = session.get(ScanReport, scan_id)
        device = session.get(Device, scan.device_id) if scan else None
        result = {"id": scan_id, "duplicate": duplicate, "scan": scan, "device": device}
    except ingest.Forbidden:
        raise forbidden() from None
    except InputError as exc:
        session.rollback()
        error = str(exc)
    return render(
        request,
        "pages/upload.html",
        status_code=422 if error else 200,
        principal=principal,
        nav_active="devices",
        **_choice_context(session, principal),
        selected=target.code,
        error=error,
        filename=file.filename or "",
        result=result,
    )
