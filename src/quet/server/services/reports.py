"""Official campaign reports: each organisation's form (figures from data, text by people,
overrides only with a reason), the workflow draft → submitted → accepted / returned, and the
roll-up through the tree (a parent = its own figures + its children's submitted snapshots) with
its late and missing units. The document for the renderers is report_document's; the reminder
e-mails report_reminders'.

Shared by the API, the web pages and `quet report`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from quet.errors import InputError
from quet.server.services import audit, campaigns, orgs
from quet.server.services import report_figures as rf
from quet.server.services.errors import Forbidden, NotFound
from quet.store.models import Campaign, Organisation, Participation, Phase
from quet.store.models.report import Report

if TYPE_CHECKING:
    from quet.server.deps import Principal

COUNTED = ("submitted", "accepted")  # statuses whose snapshot a parent sums
LOCKED = COUNTED  # no edits while the parent has it
TEXT_FIELDS = (
    "number",
    "place",
    "addressee",
    "signer_title",
    "signer_name",
    "evaluation",
    "proposals",
)
TEXT_LIMITS = {"number": 100, "place": 200, "signer_title": 200, "signer_name": 200}
MAX_TEXT = 20_000
ANNEX_LEVELS = 3  # children, grandchildren, great-grandchildren


class Locked(InputError):
    """The report is submitted or accepted: it cannot change until the parent returns it."""


@dataclass(frozen=True)
class PhaseInfo:
    """The phase a report answers to: shown with its deadline, frozen into a submitted report."""

    number: int
    name: str
    deadline: date

    @property
    def label(self) -> str:
        return self.name or f"Đợt {self.number}"

    def to_json(self) -> dict[str, Any]:
        return {"number": self.number, "name": self.name, "deadline": self.deadline.isoformat()}

    @classmethod
    def from_json(cls, data: object) -> PhaseInfo | None:
        if not isinstance(data, dict):
            return None
        try:
            return cls(
                int(data["number"]),
                str(data.get("name") or ""),
                date.fromisoformat(data["deadline"]),
            )
        except (KeyError, TypeError, ValueError):
            return None


@dataclass
class Line:
    """One organisation below the reporting one, as its parent sees it."""

    org: Organisation
    level: int  # 1: a child, 2: a grandchild, …
    status: str  # draft | submitted | accepted | returned | missing
    late: bool
    submitted_at: datetime | None
    values: dict[str, Any] | None  # its snapshot when counted, else None
    phase: PhaseInfo | None = None  # the phase whose deadline applies to it (see deadline_for)


@dataclass
class View:
    """Everything about one organisation's report for one campaign."""

    campaign: Campaign
    org: Organisation
    report: Report | None  # None: nothing saved yet (shown as a draft)
    status: str
    deadline: date  # phase.deadline: the one deadline shown and judged against
    late: bool
    own: rf.Figures  # measured, this organisation's own rows
    measured: rf.Figures  # own + counted children (rows 1-2: the subtree's participation)
    values: rf.Figures  # what the form says: overrides applied, or the frozen snapshot
    overrides: dict[str, Any]
    notes: dict[str, str]
    levels: list[list[Line]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # children without a counted report
    late_children: list[str] = field(default_factory=list)  # children that reported late
    # units further down (grandchildren, …) without a counted report
    missing_below: list[str] = field(default_factory=list)
    phase: PhaseInfo | None = None  # the phase of `deadline` (frozen once submitted)

    @property
    def missing_count(self) -> int:
        return len(self.missing) + len(self.missing_below)

    @property
    def locked(self) -> bool:
        return self.status in LOCKED

    @property
    def children(self) -> list[Line]:
        return self.levels[0] if self.levels else []


# -- lookups and permissions ----------------------------------------------------------------------
def get_report(session: Session, campaign: Campaign, org: Organisation) -> Report | None:
    return session.scalars(
        sa.select(Report).where(Report.campaign_id == campaign.id, Report.org_id == org.id)
    ).first()


def check_in_campaign(session: Session, campaign: Campaign, org: Organisation) -> None:
    scope = campaigns.scope_of(session, campaign)
    if not org.path.startswith(scope.path):
        raise NotFound(f"organisation {org.code} is not in campaign {campaign.id}")


def home_org(session: Session, principal: Principal, campaign: Campaign) -> Organisation:
    """Whose report a person looks at first: their own organisation's, or the campaign's scope
    when the campaign was launched below them."""
    scope = campaigns.scope_of(session, campaign)
    return principal.org if principal.org.path.startswith(scope.path) else scope


def can_edit(principal: Principal, org: Organisation) -> bool:
    """An officer of the organisation itself (or an administrator above it) fills the form."""
    if principal.user.role not in ("admin", "officer") or not principal.can_see(org):
        return False
    return principal.org.id == org.id or principal.is_admin


def can_decide(principal: Principal, org: Organisation) -> bool:
    """An officer of the parent or above accepts or returns; never the unit itself."""
    return (
        principal.user.role in ("admin", "officer")
        and principal.can_see(org)
        and principal.org.id != org.id
    )


def _ensure(session: Session, campaign: Campaign, org: Organisation) -> Report:
    row = get_report(session, campaign, org)
    if row is None:
        row = Report(
            campaign_id=campaign.id,
            org_id=org.id,
            status="draft",
            figures={},
            overrides={},
            number="",
            place="",
            addressee="",
            signer_title="",
            signer_name="",
            evaluation="",
            proposals="",
            submitted_by="",
            decided_by="",
            return_reason="",
        )
        session.add(row)
        session.flush()
    return row


# -- figures and roll-up --------------------------------------------------------------------------
def deadline_of(campaign: Campaign, today: date) -> date:
    """The running (or next) phase's deadline: what reminders count down to."""
    return campaigns.current_phase(campaign, today).report_deadline


def _info(phase: Phase) -> PhaseInfo:
    return PhaseInfo(phase.number, phase.name, phase.report_deadline)


def deadline_for(
    campaign: Campaign, reported_at: datetime | None, today: date
) -> tuple[PhaseInfo, bool]:
    """The one rule for "the deadline that applies to this organisation now" and whether it is
    late, agreeing with the campaign pages' campaigns.is_late:

    - late: the latest deadline that has passed (the one is_late judges by) — a date before
      today, and no report by it;
    - reported in time: the first deadline on or after the day it reported (the one it met);
    - not reported, nothing passed yet: the running (or next) phase's deadline."""
    late = campaigns.is_late(campaign, reported_at, today)
    by_deadline = sorted(campaign.phases, key=lambda p: (p.report_deadline, p.number))
    if late:
        passed = [p for p in by_deadline if p.report_deadline < today]
        return _info(passed[-1]), True
    if reported_at is not None:
        met = [p for p in by_deadline if p.report_deadline >= reported_at.date()]
        return _info(met[0] if met else by_deadline[-1]), False
    return _info(campaigns.current_phase(campaign, today)), False


def submitted_phase(campaign: Campaign, report: Report) -> PhaseInfo:
    """The phase a submitted report was submitted for: frozen in its snapshot at submission;
    for older snapshots, the phase whose period contains the submission day (else the rule of
    deadline_for on that day)."""
    frozen = PhaseInfo.from_json((report.figures or {}).get("phase"))
    if frozen is not None:
        return frozen
    assert report.submitted_at is not None
    day = report.submitted_at.date()
    for phase in campaign.phases:
        if phase.starts <= day <= phase.ends:
            return _info(phase)
    return deadline_for(campaign, report.submitted_at, day)[0]


def _status_of(
    campaign: Campaign, report: Report | None, today: date
) -> tuple[PhaseInfo, bool, datetime | None]:
    """(phase, late, submitted_at) of one organisation's report: a counted report is judged
    against the phase it was submitted for; anything else against deadline_for now."""
    if report is not None and report.status in COUNTED and report.submitted_at is not None:
        phase = submitted_phase(campaign, report)
        return phase, report.submitted_at.date() > phase.deadline, report.submitted_at
    phase, late = deadline_for(campaign, None, today)
    return phase, late, None


def _effective(measured: rf.Figures, overrides: dict[str, Any]) -> rf.Figures:
    values = dict(measured)
    for key, o in overrides.items():
        if key in rf.BY_KEY:
            values[key] = o["value"]
    # The hidden numerator follows what the form says (coverage × devices, either overridden),
    # so the parent's ratio matches the child's form.
    cov, devices = values.get("coverage"), values.get("devices")
    if overrides and cov is not None and devices:
        values["protected"] = round(float(cov) * float(devices) / 100)
    return values


def _lines(
    session: Session, campaign: Campaign, org: Organisation, today: date
) -> list[list[Line]]:
    below = list(
        session.scalars(
            sa.select(Organisation)
            .where(
                orgs.subtree_clause(org),
                Organisation.depth > org.depth,
                Organisation.depth <= org.depth + ANNEX_LEVELS,
            )
            .order_by(Organisation.path)
        )
    )
    if not below:
        return []
    reports = {
        r.org_id: r
        for r in session.scalars(
            sa.select(Report).where(
                Report.campaign_id == campaign.id,
                Report.org_id.in_(sa.select(Organisation.id).where(orgs.subtree_clause(org))),
            )
        )
    }
    levels: list[list[Line]] = [[] for _ in range(ANNEX_LEVELS)]
    for o in below:
        r = reports.get(o.id)
        counted = r is not None and r.status in COUNTED
        phase, late, submitted = _status_of(campaign, r, today)
        levels[o.depth - org.depth - 1].append(
            Line(
                org=o,
                level=o.depth - org.depth,
                status=r.status if r is not None else "missing",
                late=late,
                submitted_at=submitted,
                values=dict(r.figures.get("values", {})) if counted and r is not None else None,
                phase=phase,
            )
        )
    return [level for level in levels if level]


def _missing_below(session: Session, campaign: Campaign, org: Organisation) -> list[Organisation]:
    """Units two or more levels below `org` without a submitted or accepted report."""
    counted = sa.select(Report.org_id).where(
        Report.campaign_id == campaign.id, Report.status.in_(COUNTED)
    )
    return list(
        session.scalars(
            sa.select(Organisation)
            .where(
                orgs.subtree_clause(org),
                Organisation.depth > org.depth + 1,
                Organisation.id.not_in(counted),
            )
            .order_by(Organisation.path)
        )
    )


def missing_note(direct: int, below: int) -> str:
    """Ghi chú of a summed row: "2 đơn vị chưa báo cáo (1 trực thuộc, 1 cấp dưới)"."""
    if not below:
        return f"{direct} đơn vị chưa báo cáo" if direct else ""
    return f"{direct + below} đơn vị chưa báo cáo ({direct} trực thuộc, {below} cấp dưới)"


SOURCE_NOTE = "theo dữ liệu tiếp nhận của hệ thống"  # rows 1-2: the subtree's participation


def view(
    session: Session,
    campaign: Campaign,
    org: Organisation,
    *,
    today: date | None = None,
    now: datetime | None = None,
) -> View:
    """The report of `org` for `campaign`: live figures while a draft (or returned), the frozen
    snapshot once submitted."""
    check_in_campaign(session, campaign, org)
    now = now or datetime.now(UTC)
    today = today or now.date()
    row = get_report(session, campaign, org)
    status = row.status if row is not None else "draft"
    overrides: dict[str, Any] = dict(row.overrides) if row is not None else {}
    levels = _lines(session, campaign, org, today)
    children = levels[0] if levels else []
    own = rf.measure(session, campaign, org, now=now)
    if row is not None and status in LOCKED and row.figures:
        snap = row.figures
        measured: rf.Figures = dict(snap.get("measured", {}))
        values: rf.Figures = dict(snap.get("values", {}))
        missing = list(snap.get("missing", []))
        missing_below = list(snap.get("missing_below", []))
        late_children = list(snap.get("late", []))
        frozen = {c["code"]: c for c in snap.get("children", [])}
        for line in children:
            c = frozen.get(line.org.code)
            if c is not None:
                line.status, line.late, line.values = c["status"], c["late"], c["values"]
                line.submitted_at = _parse_dt(c.get("submitted_at"))
    else:
        measured = {k: own.get(k) for k in (*rf.COUNT_KEYS, *rf.HIDDEN)}
        for key in rf.COUNT_KEYS:
            if not rf.BY_KEY[key].summed:
                measured[key] = rf.participation(session, campaign, org, subtree=True)[key]
        summed = tuple(k for k in rf.COUNT_KEYS if rf.BY_KEY[k].summed) + rf.HIDDEN
        for line in children:
            if line.values is not None:
                rf.add(measured, line.values, summed)
        measured["coverage"] = rf.coverage(measured.get("protected"), measured.get("devices"))
        values = _effective(measured, overrides)
        missing = [c.org.name for c in children if c.values is None]
        missing_below = [o.name for o in _missing_below(session, campaign, org)]
        late_children = [c.org.name for c in children if c.values is not None and c.late]
    notes: dict[str, str] = {}
    for spec in rf.ROWS:
        parts = []
        if spec.key in overrides:
            parts.append(f"Điều chỉnh: {overrides[spec.key]['reason']}")
        if not spec.summed:
            parts.append(SOURCE_NOTE)
        elif missing or missing_below:
            parts.append(missing_note(len(missing), len(missing_below)))
        if spec.key == "botnet_ips" and values.get("botnet_ips") is None:
            parts.append("chưa có dữ liệu botnet")
        notes[spec.key] = "; ".join(parts)
    phase, late, _ = _status_of(campaign, row, today)
    return View(
        campaign=campaign,
        org=org,
        report=row,
        status=status,
        deadline=phase.deadline,
        late=late,
        own=own,
        measured=measured,
        values=values,
        overrides=overrides,
        notes=notes,
        levels=levels,
        missing=missing,
        late_children=late_children,
        missing_below=missing_below,
        phase=phase,
    )


def _parse_dt(value: object) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value))


# -- the workflow ---------------------------------------------------------------------------------
def _editable(
    session: Session, principal: Principal, campaign: Campaign, org: Organisation
) -> Report:
    check_in_campaign(session, campaign, org)
    if not principal.can_see(org):
        raise NotFound(f"organisation {org.code} not found")
    if not can_edit(principal, org):
        raise Forbidden(f"only an officer of {org.code} fills its report")
    row = _ensure(session, campaign, org)
    if row.status in LOCKED:
        raise Locked(
            f"the report of {org.code} is {row.status}: it can change only after the parent "
            "returns it"
        )
    return row


def edit(
    session: Session,
    principal: Principal,
    campaign: Campaign,
    org: Organisation,
    fields: dict[str, str | None],
) -> Report:
    """Change Part 1 and the letter's details (number, place, addressee, signer)."""
    row = _editable(session, principal, campaign, org)
    changed = []
    for key, value in fields.items():
        if value is None:
            continue
        if key not in TEXT_FIELDS:
            raise InputError(f"unknown report field {key!r}: use one of {', '.join(TEXT_FIELDS)}")
        # PostgreSQL text cannot hold NUL; nobody types one on purpose.
        text = value.replace("\x00", "").replace("\r\n", "\n").strip()
        limit = TEXT_LIMITS.get(key, MAX_TEXT)
        if len(text) > limit:
            raise InputError(f"{key}: at most {limit} characters")
        if key in TEXT_LIMITS and "\n" in text:
            raise InputError(f"{key}: one line only")
        if getattr(row, key) != text:
            setattr(row, key, text)
            changed.append(key)
    if changed:
        row.updated_at = datetime.now(UTC)
        audit.record(
            session,
            principal.actor,
            "report.edit",
            f"report:{campaign.id}:{org.code}",
            org.id,
            {"fields": changed},
        )
    session.flush()
    return row


def _check_value(key: str, value: float) -> int | float:
    if value != value or value in (float("inf"), float("-inf")):  # NaN, infinities
        raise InputError(f"{key}: not a number")
    if value < 0:
        raise InputError(f"{key}: must not be negative")
    if rf.BY_KEY[key].unit == "%":
        if value > 100:
            raise InputError(f"{key}: a percentage is at most 100")
        return round(float(value), 1)
    if value != int(value):
        raise InputError(f"{key}: a count is a whole number")
    if value > 2**53:
        raise InputError(f"{key}: too large")
    return int(value)


# (smaller, larger, the message's words): a figure may not exceed the one it is a part of.
RELATIONS: tuple[tuple[str, str, str, str], ...] = (
    ("deployed", "received", "số đơn vị triển khai", "số đơn vị nhận được thông tin"),
    ("scanned", "devices", "số thiết bị đã rà quét", "tổng số thiết bị trong phạm vi"),
    ("infected", "scanned", "số thiết bị nhiễm mã độc", "số thiết bị đã rà quét"),
    ("cleaned", "infected", "số thiết bị đã bóc gỡ", "số thiết bị nhiễm mã độc"),
)


def check_consistent(values: rf.Figures, key: str) -> None:
    """Refuse a form whose figures contradict each other where `key` takes part: scanned ≤
    devices, infected ≤ scanned, cleaned ≤ infected, deployed ≤ received, coverage ≤ 100 (the
    values are what the form would say: overrides over measured values)."""
    from quet.reports.dates import vn_number

    for small, large, small_vi, large_vi in RELATIONS:
        if key not in (small, large):
            continue
        a, b = values.get(small), values.get(large)
        if a is not None and b is not None and a > b:
            raise InputError(
                f"Số liệu mâu thuẫn: {small_vi} ({vn_number(a)}) lớn hơn {large_vi} "
                f"({vn_number(b)}) / {small} ({a}) exceeds {large} ({b})"
            )
    cov = values.get("coverage")
    if key == "coverage" and cov is not None and cov > 100:
        raise InputError(f"Tỷ lệ cập nhật mẫu không vượt quá 100 % / coverage {cov} > 100")


def override(
    session: Session,
    principal: Principal,
    campaign: Campaign,
    org: Organisation,
    key: str,
    value: float | None,
    reason: str,
    *,
    now: datetime | None = None,
) -> Report:
    """Replace a measured figure by `value` (None: back to the measured one). A reason is
    required either way; it is kept, shown in Ghi chú, and written to the audit log."""
    if key not in rf.BY_KEY:
        raise InputError(f"unknown figure {key!r}: use one of {', '.join(rf.KEYS)}")
    reason = " ".join((reason or "").replace("\x00", "").split())
    if not reason:
        raise InputError(f"{key}: give a reason for changing a measured figure")
    if len(reason) > 1000:
        raise InputError(f"{key}: the reason is at most 1000 characters")
    row = _editable(session, principal, campaign, org)
    measured_all = view(session, campaign, org, now=now).measured
    measured = measured_all.get(key)
    overrides = dict(row.overrides)
    previous = overrides.get(key)
    when = (now or datetime.now(UTC)).isoformat()
    if value is None:
        if previous is None:
            return row
        del overrides[key]
        action, detail = "report.override_clear", {"key": key, "was": previous["value"]}
    else:
        checked = _check_value(key, value)
        overrides[key] = {"value": checked, "reason": reason, "by": principal.actor, "at": when}
        action, detail = "report.override", {"key": key, "value": checked, "measured": measured}
    # Against the other figures as the form would then say them (either side overridden).
    check_consistent(_effective(measured_all, overrides), key)
    row.overrides = overrides  # a new dict: JSON columns track assignment, not mutation
    row.updated_at = datetime.now(UTC)
    audit.record(
        session,
        principal.actor,
        action,
        f"report:{campaign.id}:{org.code}",
        org.id,
        detail | {"reason": reason},
    )
    session.flush()
    return row


def _snapshot(v: View, phase: PhaseInfo) -> dict[str, Any]:
    return {
        "values": v.values,
        "measured": v.measured,
        "missing": v.missing,
        "missing_below": v.missing_below,
        "late": v.late_children,
        "phase": phase.to_json(),
        "children": [
            {
                "code": c.org.code,
                "status": c.status,
                "late": c.late,
                "submitted_at": c.submitted_at.isoformat() if c.submitted_at else None,
                "values": c.values,
            }
            for c in v.children
        ],
    }


def submit(
    session: Session,
    principal: Principal,
    campaign: Campaign,
    org: Organisation,
    *,
    now: datetime | None = None,
) -> Report:
    """Freeze the figures and send the report up: timestamped, locked, and the organisation's
    participation marked reported."""
    now = now or datetime.now(UTC)
    row = _editable(session, principal, campaign, org)
    v = view(session, campaign, org, now=now)
    # The phase it answers to stays with it (a later phase must not relabel it).
    row.figures = _snapshot(v, deadline_for(campaign, now, now.date())[0])
    row.status = "submitted"
    row.submitted_at = now
    row.submitted_by = principal.actor
    row.decided_at, row.decided_by, row.return_reason = None, "", ""
    row.updated_at = now
    scope = campaigns.scope_of(session, campaign)
    if org.id != scope.id:
        part = session.scalars(
            sa.select(Participation).where(
                Participation.campaign_id == campaign.id, Participation.org_id == org.id
            )
        ).first()
        if part is None:
            part = Participation(campaign_id=campaign.id, org_id=org.id, report={})
            session.add(part)
        part.reported_at = now
        part.report = {"report_id": row.id, "values": v.values}
    audit.record(
        session,
        principal.actor,
        "report.submit",
        f"report:{campaign.id}:{org.code}",
        org.id,
        {"values": v.values, "missing": len(v.missing)},
    )
    session.flush()
    return row


def _decidable(
    session: Session, principal: Principal, campaign: Campaign, org: Organisation
) -> Report:
    check_in_campaign(session, campaign, org)
    if not principal.can_see(org):
        raise NotFound(f"organisation {org.code} not found")
    if not can_decide(principal, org):
        raise Forbidden(f"only an officer above {org.code} accepts or returns its report")
    row = get_report(session, campaign, org)
    if row is None or row.status not in COUNTED:
        raise InputError(f"the report of {org.code} has not been submitted")
    return row


def accept(
    session: Session,
    principal: Principal,
    campaign: Campaign,
    org: Organisation,
    *,
    now: datetime | None = None,
) -> Report:
    row = _decidable(session, principal, campaign, org)
    if row.status == "accepted":
        return row
    row.status = "accepted"
    row.decided_at = now or datetime.now(UTC)
    row.decided_by = principal.actor
    audit.record(
        session, principal.actor, "report.accept", f"report:{campaign.id}:{org.code}", org.id
    )
    session.flush()
    return row


def return_report(
    session: Session,
    principal: Principal,
    campaign: Campaign,
    org: Organisation,
    reason: str,
    *,
    now: datetime | None = None,
) -> Report:
    """Send the report back for changes: unlocked, no longer counted by the parent."""
    reason = (reason or "").replace("\x00", "").strip()
    if not reason:
        raise InputError("say why the report is returned")
    if len(reason) > 2000:
        raise InputError("the reason is at most 2000 characters")
    row = _decidable(session, principal, campaign, org)
    row.status = "returned"
    row.decided_at = now or datetime.now(UTC)
    row.decided_by = principal.actor
    row.return_reason = reason
    row.figures = {}
    part = session.scalars(
        sa.select(Participation).where(
            Participation.campaign_id == campaign.id, Participation.org_id == org.id
        )
    ).first()
    if part is not None:
        part.reported_at = None
    audit.record(
        session,
        principal.actor,
        "report.return",
        f"report:{campaign.id}:{org.code}",
        org.id,
        {"reason": reason},
    )
    session.flush()
    return row


def latest_campaign(session: Session, under: Organisation | None = None) -> Campaign | None:
    """The newest campaign whose scope contains `under` (or is inside it); any when None."""
    query = sa.select(Campaign).order_by(Campaign.year.desc(), Campaign.id.desc())
    for c in session.scalars(query):
        if under is None:
            return c
        scope = campaigns.scope_of(session, c)
        if under.path.startswith(scope.path) or scope.path.startswith(under.path):
            return c
    return None
