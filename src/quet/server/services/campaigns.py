"""Campaigns: creating them, relaying them down the tree (e-mail + webhook), acknowledgements,
deployment and reports, and the per-organisation status the official figures come from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from quet.errors import InputError
from quet.server import notify, security
from quet.server.notify import Delivery as Delivery  # re-exported: relay() returns these
from quet.server.services import audit, orgs
from quet.server.services.errors import Forbidden as Forbidden  # re-exported
from quet.server.services.errors import NotFound as NotFound
from quet.server.settings import Settings
from quet.store.models import Campaign, Device, Organisation, Participation, Phase

if TYPE_CHECKING:
    from quet.server.deps import Principal


@dataclass
class PhaseSpec:
    number: int
    name: str
    starts: date
    ends: date
    report_deadline: date


@dataclass
class ParticipationStatus:
    org: Organisation
    received_at: datetime | None
    deployed_at: datetime | None
    reported_at: datetime | None
    late: bool
    devices: int
    infected: int
    notified_at: datetime | None = None
    received_by: str = ""


def create_campaign(
    session: Session,
    actor: str,
    name: str,
    year: int,
    scope: Organisation,
    phases: list[PhaseSpec],
    bundle_version: int | None = None,
    description: str = "",
) -> Campaign:
    if not phases:
        raise InputError("a campaign needs at least one phase")
    if len({p.number for p in phases}) != len(phases):
        raise InputError("phase numbers must be unique")
    for p in phases:
        if p.ends < p.starts:
            raise InputError(f"phase {p.number}: ends before it starts")
    campaign = Campaign(
        name=name,
        year=year,
        description=description,
        scope_org_id=scope.id,
        bundle_version=bundle_version,
        created_by=actor,
        phases=[
            Phase(
                number=p.number,
                name=p.name,
                starts=p.starts,
                ends=p.ends,
                report_deadline=p.report_deadline,
            )
            for p in sorted(phases, key=lambda p: p.number)
        ],
    )
    session.add(campaign)
    session.flush()
    audit.record(
        session, actor, "campaign.create", f"campaign:{campaign.id}", scope.id, {"name": name}
    )
    return campaign


def scope_of(session: Session, campaign: Campaign) -> Organisation:
    org = session.get(Organisation, campaign.scope_org_id)
    assert org is not None  # a foreign key
    return org


def visible(session: Session, principal: Principal) -> list[Campaign]:
    """Campaigns a person takes part in: scoped above their organisation or inside its subtree."""
    mine = principal.org.path
    rows = session.scalars(
        sa.select(Campaign)
        .join(Organisation, Organisation.id == Campaign.scope_org_id)
        .where(
            sa.or_(
                Organisation.path.startswith(mine),
                sa.literal(mine).startswith(Organisation.path),
            )
        )
        .order_by(Campaign.year.desc(), Campaign.id.desc())
    )
    return list(rows)


def get_visible(session: Session, principal: Principal, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is not None:
        scope = scope_of(session, campaign)
        mine = principal.org.path
        if scope.path.startswith(mine) or mine.startswith(scope.path):
            return campaign
    raise NotFound(f"campaign {campaign_id} not found")


def members(
    session: Session, campaign: Campaign, under: Organisation | None = None
) -> list[Organisation]:
    """The organisations taking part: the scope's subtree without the scope itself, limited to
    `under`'s subtree when given."""
    scope = scope_of(session, campaign)
    query = sa.select(Organisation).where(orgs.subtree_clause(scope), Organisation.id != scope.id)
    if under is not None:
        query = query.where(orgs.subtree_clause(under))
    return list(session.scalars(query.order_by(Organisation.path)))


def current_phase(campaign: Campaign, today: date | None = None) -> Phase:
    """The running phase, else the next one, else the last."""
    today = today or datetime.now(UTC).date()
    for phase in campaign.phases:
        if phase.starts <= today <= phase.ends:
            return phase
    upcoming = [p for p in campaign.phases if p.starts > today]
    return upcoming[0] if upcoming else campaign.phases[-1]


def _participation(session: Session, campaign: Campaign, org: Organisation) -> Participation:
    row = session.scalars(
        sa.select(Participation).where(
            Participation.campaign_id == campaign.id, Participation.org_id == org.id
        )
    ).first()
    if row is None:
        row = Participation(campaign_id=campaign.id, org_id=org.id, report={})
        session.add(row)
    return row


def relay(
    session: Session,
    campaign: Campaign,
    settings: Settings,
    base_url: str,
    *,
    under: Organisation | None = None,
    actor: str = "system",
) -> list[Delivery]:
    """Tell every organisation in scope (under `under`, minus `under` itself) that hasn't yet
    acknowledged: one e-mail to its contact and one signed webhook when it has a URL. Each gets a
    fresh acknowledgement link (only the newest one works). One Delivery per message."""
    phase = current_phase(campaign)
    phase_label = phase.name or f"Đợt {phase.number}"
    notices: list[notify.Notice] = []
    events: list[tuple[str, str, dict[str, Any]]] = []
    deliveries: list[Delivery] = []
    rows: dict[str, Participation] = {}
    base = base_url.rstrip("/")
    for org in members(session, campaign, under):
        if under is not None and org.id == under.id:
            continue
        row = _participation(session, campaign, org)
        if row.received_at is not None:
            continue
        token, digest = security.new_token("ack_")
        row.ack_token_hash = digest
        rows[org.code] = row
        ack_url = f"{base}/ack/{token}"
        if org.contact_email:
            try:
                notices.append(
                    notify.campaign_notice(
                        org.code,
                        org.name,
                        [org.contact_email],
                        campaign.name,
                        phase_label,
                        phase.report_deadline,
                        ack_url,
                        campaign_id=campaign.id,
                    )
                )
            except InputError as exc:
                deliveries.append(Delivery(org.code, "email", False, str(exc), 0))
        if org.webhook_url:
            events.append(
                (org.code, org.webhook_url, _webhook_payload(campaign, phase, org, ack_url))
            )
        if not org.contact_email and not org.webhook_url:
            deliveries.append(Delivery(org.code, "email", False, "no contact e-mail or webhook", 0))
    if notices:
        smtp = notify.SmtpSettings(
            host=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
            sender=settings.smtp_sender,
        )
        deliveries += notify.send_email(notices, smtp)
    if events:
        if settings.webhook_secret:
            deliveries += notify.send_webhooks(events, settings.webhook_secret)
        else:
            error = "no webhook secret configured (QUET_WEBHOOK_SECRET)"
            deliveries += [Delivery(code, "webhook", False, error, 0) for code, _, _ in events]
    now = datetime.now(UTC)
    for d in deliveries:
        if d.ok and d.org_code in rows:
            rows[d.org_code].notified_at = now
    audit.record(
        session,
        actor,
        "campaign.relay",
        f"campaign:{campaign.id}",
        under.id if under is not None else campaign.scope_org_id,
        {
            "sent": sorted({d.org_code for d in deliveries if d.ok}),
            "failed": [f"{d.org_code} {d.channel}: {d.error}" for d in deliveries if not d.ok],
        },
    )
    session.flush()
    return deliveries


def _webhook_payload(
    campaign: Campaign, phase: Phase, org: Organisation, ack_url: str
) -> dict[str, Any]:
    return {
        "event": "campaign.relay",
        "campaign": {
            "id": campaign.id,
            "name": campaign.name,
            "year": campaign.year,
            "bundle_version": campaign.bundle_version,
        },
        "phase": {
            "number": phase.number,
            "name": phase.name,
            "starts": phase.starts.isoformat(),
            "ends": phase.ends.isoformat(),
            "report_deadline": phase.report_deadline.isoformat(),
        },
        "org": {"code": org.code, "name": org.name},
        "ack_url": ack_url,
    }


def acknowledge_token(session: Session, token: str, who: str) -> Participation:
    """Acknowledge receipt by the link's token (no sign-in: holding the token is the proof)."""
    digest = security.token_hash(token.strip())
    row = session.scalars(
        sa.select(Participation).where(Participation.ack_token_hash == digest)
    ).first()
    if row is None or not token.strip():
        raise NotFound("unknown or outdated acknowledgement link")
    if row.received_at is None:
        row.received_at = datetime.now(UTC)
        row.received_by = who[:200]
        audit.record(
            session, f"ack:{who[:100]}", "campaign.ack", f"campaign:{row.campaign_id}", row.org_id
        )
    return row


def _check_member(
    session: Session, principal: Principal, campaign: Campaign, org: Organisation
) -> None:
    if not principal.can_see(org):
        raise NotFound(f"organisation {org.code} not found")
    scope = scope_of(session, campaign)
    if not org.path.startswith(scope.path) or org.id == scope.id:
        raise NotFound(f"organisation {org.code} is not in campaign {campaign.id}")
    if not principal.can_change(org):
        raise Forbidden(f"not allowed to act for {org.code}")


def acknowledge(
    session: Session, principal: Principal, campaign: Campaign, org: Organisation
) -> Participation:
    """A signed-in person acknowledges receipt on behalf of `org`."""
    _check_member(session, principal, campaign, org)
    row = _participation(session, campaign, org)
    if row.received_at is None:
        row.received_at = datetime.now(UTC)
        row.received_by = principal.user.full_name or principal.user.username
        audit.record(session, principal.actor, "campaign.ack", f"campaign:{campaign.id}", org.id)
    session.flush()
    return row


def mark_deployed(session: Session, org_id: int, when: datetime) -> None:
    """The first agent of `org_id` reported in: it has deployed every campaign running now."""
    org = session.get(Organisation, org_id)
    if org is None:
        return
    day = when.astimezone(UTC).date()
    running = session.scalars(
        sa.select(Campaign)
        .join(Organisation, Organisation.id == Campaign.scope_org_id)
        .where(
            sa.literal(org.path).startswith(Organisation.path),
            Organisation.id != org.id,
            Campaign.id.in_(
                sa.select(Phase.campaign_id).where(Phase.starts <= day, Phase.ends >= day)
            ),
        )
    )
    for campaign in running:
        row = _participation(session, campaign, org)
        if row.deployed_at is None:
            row.deployed_at = when
    session.flush()


def mark_reported(
    session: Session,
    principal: Principal,
    campaign: Campaign,
    org: Organisation,
    report: dict[str, Any],
) -> Participation:
    _check_member(session, principal, campaign, org)
    row = _participation(session, campaign, org)
    row.reported_at = datetime.now(UTC)
    row.report = report
    audit.record(
        session,
        principal.actor,
        "campaign.report",
        f"campaign:{campaign.id}",
        org.id,
        {"fields": sorted(report)},
    )
    session.flush()
    return row


def is_late(campaign: Campaign, reported_at: datetime | None, today: date) -> bool:
    """Late: a report deadline has passed and no report came by the latest passed one."""
    passed = [p.report_deadline for p in campaign.phases if p.report_deadline < today]
    if not passed:
        return False
    return reported_at is None or reported_at.date() > max(passed)


def status(
    session: Session, campaign: Campaign, under: Organisation, today: date | None = None
) -> list[ParticipationStatus]:
    """One line per organisation in scope and in `under`'s subtree, tree order."""
    today = today or datetime.now(UTC).date()
    members_ = members(session, campaign, under)
    ids = [o.id for o in members_]
    rows = {
        p.org_id: p
        for p in session.scalars(
            sa.select(Participation).where(Participation.campaign_id == campaign.id)
        )
    }
    devices = _counts(session, ids, sa.true())
    infected = _counts(session, ids, Device.open_findings > 0)
    out: list[ParticipationStatus] = []
    for org in members_:
        p = rows.get(org.id)
        out.append(
            ParticipationStatus(
                org=org,
                received_at=p.received_at if p else None,
                deployed_at=p.deployed_at if p else None,
                reported_at=p.reported_at if p else None,
                late=is_late(campaign, p.reported_at if p else None, today),
                devices=devices.get(org.id, 0),
                infected=infected.get(org.id, 0),
                notified_at=p.notified_at if p else None,
                received_by=p.received_by if p else "",
            )
        )
    return out


def _counts(
    session: Session, ids: Sequence[int], condition: sa.ColumnElement[bool]
) -> dict[int, int]:
    if not ids:
        return {}
    result: dict[int, int] = {}
    # Chunks keep the IN list under SQLite's and psycopg's parameter limits.
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        for org_id, n in session.execute(
            sa.select(Device.org_id, sa.func.count())
            .where(Device.org_id.in_(chunk), condition)
            .group_by(Device.org_id)
        ).all():
            result[org_id] = n
    return result
