"""The organisation tree (one level at a time) and one organisation's page: contacts, what it
owns on the network, its devices, enrollment tokens and the edit form for officers."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from quet.server import orgdata
from quet.server.deps import Principal, find_org, service_errors
from quet.server.services import campaigns, dashboard, devices, orgs
from quet.server.web import i18n
from quet.server.web.pages import botnet as botnet_page
from quet.server.web.render import (
    PageRoute,
    PageUser,
    SessionDep,
    forbidden,
    is_htmx,
    lang_of,
    redirect,
    render,
)
from quet.store.models import Campaign, EnrollmentToken, Organisation, User

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _current(session: SessionDep, principal: Principal) -> Campaign | None:
    visible = campaigns.visible(session, principal)
    return visible[0] if visible else None


@router.get("/orgs")
def tree(request: Request, session: SessionDep, principal: PageUser) -> HTMLResponse:
    campaign = _current(session, principal)
    root = dashboard.root_node(session, principal.org, campaign)
    return render(
        request,
        "pages/orgs.html",
        principal=principal,
        nav_active="orgs",
        root=root,
        campaign=campaign,
    )


@router.get("/orgs/{code}/children", response_model=None)
def children(code: str, request: Request, session: SessionDep, principal: PageUser) -> Response:
    org = find_org(session, principal, code)
    if not is_htmx(request):
        return redirect(f"/orgs/{org.code}#children")  # the page lists the children too
    nodes = dashboard.tree(session, org, _current(session, principal))
    return render(request, "pages/org_children.html", principal=principal, org=org, nodes=nodes)


def _detail(
    request: Request,
    session: SessionDep,
    principal: Principal,
    org: Organisation,
    *,
    status_code: int = 200,
    new_token: str = "",
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    t = i18n.translator(lang_of(request))
    parent = orgs.parent(session, org)
    cover = devices.coverage(session, org)
    page = dashboard.device_page(session, org, per_page=20)
    tokens = (
        list(
            session.scalars(
                sa.select(EnrollmentToken)
                .where(EnrollmentToken.org_id == org.id)
                .order_by(EnrollmentToken.created_at.desc())
            )
        )
        if principal.can_change(org)
        else []
    )
    people = list(
        session.scalars(sa.select(User).where(User.org_id == org.id).order_by(User.username))
    )
    kids = dashboard.tree(session, org, _current(session, principal))
    values = form or {
        "name": org.name,
        "kind": org.kind,
        "contact_name": org.contact_name,
        "contact_email": org.contact_email,
        "contact_phone": org.contact_phone,
        "webhook_url": org.webhook_url,
        "sector": org.sector,
        "ip_ranges": "\n".join(n.cidr for n in org.networks),
        "domains": "\n".join(d.domain for d in org.domains),
        "asns": "\n".join(str(a.asn) for a in org.asns),
    }
    return render(
        request,
        "pages/org.html",
        status_code=status_code,
        principal=principal,
        nav_active="orgs",
        org=org,
        parent=parent if parent is not None and principal.can_see(parent) else None,
        cover=cover,
        devices=page,
        tokens=tokens,
        people=people,
        children=kids,
        can_change=principal.can_change(org),
        new_token=new_token,
        errors=errors or {},
        form=values,
        kind_options=[(k, t(f"kind.{k}")) for k in orgdata.KINDS],
        sector_options=botnet_page.sector_options(t),
        botnet=botnet_page.org_panel(session, principal, org),
    )


@router.get("/orgs/{code}")
def detail(code: str, request: Request, session: SessionDep, principal: PageUser) -> HTMLResponse:
    return _detail(request, session, principal, find_org(session, principal, code))


@router.post("/orgs/{code}", response_model=None)
def update(
    code: str,
    request: Request,
    session: SessionDep,
    principal: PageUser,
    name: Annotated[str, Form(max_length=300)] = "",
    kind: Annotated[str, Form(max_length=20)] = "",
    contact_name: Annotated[str, Form(max_length=200)] = "",
    contact_email: Annotated[str, Form(max_length=200)] = "",
    contact_phone: Annotated[str, Form(max_length=50)] = "",
    webhook_url: Annotated[str, Form(max_length=500)] = "",
    sector: Annotated[str, Form(max_length=32)] = "",
    ip_ranges: Annotated[str, Form(max_length=100_000)] = "",
    domains: Annotated[str, Form(max_length=100_000)] = "",
    asns: Annotated[str, Form(max_length=10_000)] = "",
) -> Response:
    org = find_org(session, principal, code)
    if not principal.can_change(org):
        raise forbidden()
    form = {
        "name": name, "kind": kind, "contact_name": contact_name, "contact_email": contact_email,
        "contact_phone": contact_phone, "webhook_url": webhook_url, "ip_ranges": ip_ranges,
        "domains": domains, "asns": asns, "sector": sector,
    }  # fmt: skip
    errors: dict[str, str] = {}
    clean: dict[str, str] = {}
    if not name.strip():
        errors["name"] = "error.required"
    try:
        clean["kind"] = orgdata.parse_kind(kind) if kind else org.kind
    except ValueError:
        errors["kind"] = "error.invalid"
    if org.parent_id is None and clean.get("kind", "national") != "national":
        errors["kind"] = "error.invalid"
    try:
        clean["contact_email"] = orgdata.parse_email(contact_email)
    except ValueError:
        errors["contact_email"] = "error.invalid"
    try:
        clean["sector"] = orgdata.parse_sector(sector)
    except ValueError:
        errors["sector"] = "error.invalid"
    url = webhook_url.strip()
    if url and not url.startswith(("http://", "https://")):
        errors["webhook_url"] = "error.invalid"
    nets, bad_nets = orgdata.parse_networks(ip_ranges.replace("\n", ","))
    doms, bad_doms = orgdata.parse_domains(domains.replace("\n", ","))
    numbers, bad_asns = orgdata.parse_asns(asns.replace("\n", ","))
    if bad_nets:
        errors["ip_ranges"] = "error.invalid_ip"
    if bad_doms:
        errors["domains"] = "error.invalid"
    if bad_asns:
        errors["asns"] = "error.invalid"
    if errors:
        return _detail(request, session, principal, org, status_code=422, errors=errors, form=form)
    changes = orgs.OrgChanges(
        name=name.strip(),
        kind=clean["kind"],
        contact_name=contact_name.strip(),
        contact_email=clean["contact_email"],
        contact_phone=contact_phone.strip(),
        webhook_url=url,
        sector=clean["sector"],
        ip_ranges=nets,
        domains=doms,
        asns=numbers,
    )
    with service_errors():
        orgs.update(session, principal, org, changes)
    session.commit()
    return redirect(f"/orgs/{org.code}", "saved")


@router.post("/orgs/{code}/tokens")
def new_token(
    code: str,
    request: Request,
    session: SessionDep,
    principal: PageUser,
    label: Annotated[str, Form(max_length=200)] = "",
) -> HTMLResponse:
    org = find_org(session, principal, code)
    if not principal.can_change(org):
        raise forbidden()
    token = devices.create_enrollment_token(session, principal.actor, org, label.strip())
    session.commit()
    # Shown once, on this response only: only its SHA256 is stored.
    return _detail(request, session, principal, org, new_token=token)
