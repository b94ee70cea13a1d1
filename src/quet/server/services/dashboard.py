"""Read-only figures for the web pages: the overview, the organisation tree (from the roll-ups),
the trend per day, and scoped listings of findings and the audit log with filters and pages."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import InstrumentedAttribute, Session

from quet.server import security
from quet.server.services import campaigns, devices, orgs, paging, rollups
from quet.server.services.paging import Page
from quet.store.models import (
    AuditEntry,
    Campaign,
    Device,
    FindingRow,
    Organisation,
    Participation,
    ScanReport,
)

STATES = ("reported", "deployed", "received", "pending", "overdue")


def state_of(
    received: datetime | None, deployed: datetime | None, reported: datetime | None, late: bool
) -> str:
    """One word for an organisation's place in a campaign; late trumps everything but a report."""
    if reported is not None:
        return "reported"
    if late:
        return "overdue"
    if deployed is not None:
        return "deployed"
    if received is not None:
        return "received"
    return "pending"


@dataclass
class CampaignFigures:
    campaign: Campaign
    members: int = 0
    received: int = 0
    deployed: int = 0
    reported: int = 0
    late: int = 0
    states: dict[str, int] = field(default_factory=dict)  # late counts as "overdue"
    steps: dict[str, int] = field(default_factory=dict)  # the furthest step, late or not


@dataclass
class Overview:
    orgs: int
    devices: int
    protected_current: int
    protected_pct: float
    infected: int
    open_findings: int
    remediated: int
    false_positives: int
    max_age_days: int
    campaign: CampaignFigures | None


def campaign_figures(
    session: Session, campaign: Campaign, under: Organisation, today: date | None = None
) -> CampaignFigures:
    rows = campaigns.status(session, campaign, under, today)
    figures = CampaignFigures(
        campaign,
        members=len(rows),
        states=dict.fromkeys(STATES, 0),
        steps=dict.fromkeys(STATES[:4], 0),
    )
    for r in rows:
        figures.received += r.received_at is not None
        figures.deployed += r.deployed_at is not None
        figures.reported += r.reported_at is not None
        figures.late += r.late
        figures.states[state_of(r.received_at, r.deployed_at, r.reported_at, r.late)] += 1
        figures.steps[state_of(r.received_at, r.deployed_at, r.reported_at, False)] += 1
    return figures


def _in_subtree(column: InstrumentedAttribute[Any], under: Organisation) -> sa.ColumnElement[bool]:
    # An IN over the subtree's ids lets both databases use the (org_id, …) indexes.
    return column.in_(sa.select(Organisation.id).where(orgs.subtree_clause(under)))


def overview(session: Session, under: Organisation, campaign: Campaign | None) -> Overview:
    """The big figures of `under`'s subtree, all from the roll-ups (org_rollups, refreshed within
    seconds of a change): counting a million devices and ten million findings live takes seconds.
    "Current signatures" means content updated within rollups.RECENT_DAYS days."""
    sums = rollups.overview_from_rollups(session, under)
    n_orgs = session.scalar(
        sa.select(sa.func.count()).where(orgs.subtree_clause(under), Organisation.id != under.id)
    )
    return Overview(
        orgs=n_orgs or 0,
        devices=int(sums["devices"]),
        protected_current=int(sums["current_signatures"]),
        protected_pct=float(sums["current_pct"]),
        infected=int(sums["infected"]),
        open_findings=int(sums["open_findings"]),
        remediated=int(sums["remediated_findings"]),
        false_positives=int(sums["false_positives"]),
        max_age_days=rollups.RECENT_DAYS,
        campaign=campaign_figures(session, campaign, under) if campaign is not None else None,
    )


def trend(
    session: Session, under: Organisation, days: int = 30, today: date | None = None
) -> dict[str, list[tuple[date | str, float]]]:
    """Per day over the last `days` (zeros included): findings seen, devices scanned; read from
    org_daily (kept by rollups.refresh), so it is as fresh as the roll-ups."""
    today = today or datetime.now(UTC).date()
    first = today - timedelta(days=days - 1)
    per_day = rollups.daily_from_rollups(session, under, first, today)
    span = [first + timedelta(days=i) for i in range(days)]
    return {
        "findings": [(d, float(per_day.get(d, (0, 0))[0])) for d in span],
        "scanned": [(d, float(per_day.get(d, (0, 0))[1])) for d in span],
    }


# -- the tree -------------------------------------------------------------------------------------
def _participations(
    session: Session, campaign: Campaign | None, ids: list[int]
) -> dict[int, Participation]:
    if campaign is None or not ids:
        return {}
    return {
        p.org_id: p
        for p in session.scalars(
            sa.select(Participation).where(
                Participation.campaign_id == campaign.id, Participation.org_id.in_(ids)
            )
        )
    }


def _with_children(session: Session, ids: list[int]) -> set[int]:
    if not ids:
        return set()
    rows = session.execute(
        sa.select(Organisation.parent_id).where(Organisation.parent_id.in_(ids)).distinct()
    )
    return {r[0] for r in rows if r[0] is not None}


def _node(
    org: Organisation,
    figures: dict[str, Any],
    part: Participation | None,
    campaign: Campaign | None,
    in_campaign: bool,
    has_children: bool,
    today: date,
) -> dict[str, Any]:
    node: dict[str, Any] = {
        "id": org.id,
        "code": org.code,
        "name": org.name,
        "kind": org.kind,
        "href": f"/orgs/{org.code}",
        "devices": figures.get("devices", 0),
        "infected": figures.get("infected", 0),
        "open_findings": figures.get("open_findings", 0),
        "coverage": figures.get("current_pct", 0.0) if figures.get("devices") else None,
        "children_url": f"/orgs/{org.code}/children" if has_children else None,
    }
    if campaign is not None and in_campaign:
        late = campaigns.is_late(campaign, part.reported_at if part else None, today)
        received = part.received_at if part else None
        deployed = part.deployed_at if part else None
        reported = part.reported_at if part else None
        node.update(
            received=received is not None,
            deployed=deployed is not None,
            reported=reported is not None,
            late=late,
            state=None,
            campaign_state=state_of(received, deployed, reported, late),
        )
    return node


def tree(
    session: Session, under: Organisation, campaign: Campaign | None, today: date | None = None
) -> list[dict[str, Any]]:
    """The children of `under`, each with its subtree's figures (roll-ups), its own status in
    `campaign`, and a children_url when it has children (loaded one level at a time)."""
    today = today or datetime.now(UTC).date()
    sums = rollups.tree_from_rollups(session, under)
    kids = {
        o.id: o
        for o in session.scalars(sa.select(Organisation).where(Organisation.parent_id == under.id))
    }
    ids = [s["org_id"] for s in sums]
    parts = _participations(session, campaign, ids)
    parents = _with_children(session, ids)
    scope = campaigns.scope_of(session, campaign) if campaign is not None else None
    out = []
    for s in sums:
        org = kids[s["org_id"]]
        member = scope is not None and org.path.startswith(scope.path) and org.id != scope.id
        out.append(_node(org, s, parts.get(org.id), campaign, member, org.id in parents, today))
    return out


def root_node(
    session: Session, org: Organisation, campaign: Campaign | None, today: date | None = None
) -> dict[str, Any]:
    """`org` itself as the top of its tree, with its whole subtree's figures and its children."""
    today = today or datetime.now(UTC).date()
    figures = rollups.overview_from_rollups(session, org)
    parts = _participations(session, campaign, [org.id])
    scope = campaigns.scope_of(session, campaign) if campaign is not None else None
    member = scope is not None and org.path.startswith(scope.path) and org.id != scope.id
    node = _node(org, figures, parts.get(org.id), campaign, member, False, today)
    node["children"] = tree(session, org, campaign, today)
    node["open"] = True
    return node


def ack_target(session: Session, token: str) -> tuple[Participation, Campaign, Organisation] | None:
    """What an acknowledgement link is about (read only: opening the link acknowledges nothing)."""
    if not token.strip():
        return None
    part = session.scalars(
        sa.select(Participation).where(
            Participation.ack_token_hash == security.token_hash(token.strip())
        )
    ).first()
    if part is None:
        return None
    campaign = session.get(Campaign, part.campaign_id)
    org = session.get(Organisation, part.org_id)
    if campaign is None or org is None:
        return None
    return part, campaign, org


# -- listings -------------------------------------------------------------------------------------
def org_codes(session: Session, ids: Iterable[int | None]) -> dict[int, Organisation]:
    """The organisations of these ids (None skipped), for the name column of a listing."""
    return orgs.by_ids(session, ids)


def findings(
    session: Session,
    under: Organisation,
    *,
    status: str | None = None,
    family: str | None = None,
    device_id: int | None = None,
    page: int = 1,
    per_page: int = 50,
) -> Page:
    """Findings in `under`'s subtree, newest first; `family` matches inside the detection name
    (case-insensitive: "emotet" finds Win.Trojan.Emotet-… and "Emotet C2")."""
    query = sa.select(FindingRow, Device.hostname).join(Device, Device.id == FindingRow.device_id)
    query = query.where(_in_subtree(FindingRow.org_id, under))
    if status:
        query = query.where(FindingRow.status == status)
    if family:
        query = query.where(
            sa.func.lower(FindingRow.name).contains(family.strip().lower(), autoescape=True)
        )
    if device_id is not None:
        query = query.where(FindingRow.device_id == device_id)
    total = paging.count(session, query)
    newest = query.order_by(FindingRow.observed_at.desc(), FindingRow.id.desc())
    rows = session.execute(paging.window(newest, page, per_page)).all()
    return Page(total, [(f, host) for f, host in rows], page, per_page)


def device_page(
    session: Session,
    under: Organisation,
    *,
    kind: str | None = None,
    hostname: str | None = None,
    infected: bool | None = None,
    stale_days: int | None = None,
    page: int = 1,
    per_page: int = 50,
) -> Page:
    total, rows = devices.listing(
        session,
        under,
        kind=kind,
        hostname=hostname,
        infected=infected,
        stale_days=stale_days,
        limit=per_page,
        offset=(page - 1) * per_page,
    )
    return Page(total, list(rows), page, per_page)


def scans_of(session: Session, device: Device, limit: int = 10) -> list[ScanReport]:
    return list(
        session.scalars(
            sa.select(ScanReport)
            .where(ScanReport.device_id == device.id)
            .order_by(ScanReport.finished.desc())
            .limit(limit)
        )
    )


def audit(session: Session, under: Organisation, *, page: int = 1, per_page: int = 50) -> Page:
    """Entries about `under`'s subtree, newest first; entries about no organisation (failed
    sign-ins) only for the people of the root."""
    where = _in_subtree(AuditEntry.org_id, under)
    if under.parent_id is None:
        where = sa.or_(where, AuditEntry.org_id.is_(None))
    query = sa.select(AuditEntry).where(where)
    total = paging.count(session, query)
    newest = query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    rows = session.scalars(paging.window(newest, page, per_page)).all()
    return Page(total, list(rows), page, per_page)
