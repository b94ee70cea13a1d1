"""/api/v1/reports: an organisation's official report for a campaign (figures from data, Part 1
text, overrides with reasons), its workflow (submit, accept, return) and downloads as DOCX, XLSX
or PDF; and the centre's monthly technical report."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, status
from fastapi.responses import Response
from sqlalchemy.orm import Session

from quet.server.deps import CurrentUser, Principal, SessionDep, find_org, service_errors
from quet.server.schemas.reports import (
    FigurePublic,
    LinePublic,
    OverrideIn,
    OverridePublic,
    ReportPublic,
    ReportUpdate,
    ReturnIn,
)
from quet.server.services import campaigns, report_document, report_monthly, reports
from quet.server.services import report_figures as rf
from quet.store.models import Campaign, Organisation

router = APIRouter(tags=["reports"])
CampaignId = Annotated[int, Path(ge=1, le=2**62)]
Format = Literal["docx", "xlsx", "pdf"]
FIGURE_KEYS = Literal[
    "received",
    "deployed",
    "devices",
    "scanned",
    "infected",
    "cleaned",
    "coverage",
    "net_hosts",
    "botnet_ips",
]
assert set(FIGURE_KEYS.__args__) == set(rf.KEYS)  # type: ignore[attr-defined]


@contextmanager
def _errors() -> Iterator[None]:
    """Service errors as answers; a refused value (no reason, a negative count, a bad month) is
    400 with a sentence, leaving 422 to request validation's documented shape."""
    with service_errors(invalid=status.HTTP_400_BAD_REQUEST):
        try:
            yield
        except reports.Locked as exc:  # before service_errors makes every InputError a 422
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc


def _campaign(session: Session, principal: Principal, campaign_id: int) -> Campaign:
    with service_errors():
        return campaigns.get_visible(session, principal, campaign_id)


def _target(
    session: Session, principal: Principal, campaign_id: int, code: str | None
) -> tuple[Campaign, Organisation]:
    campaign = _campaign(session, principal, campaign_id)
    if code is None:
        return campaign, reports.home_org(session, principal, campaign)
    org = find_org(session, principal, code)
    with service_errors():
        reports.check_in_campaign(session, campaign, org)
    return campaign, org


def public(v: reports.View, session: Session) -> ReportPublic:
    doc = report_document.document(session, v)
    row = v.report
    return ReportPublic(
        campaign_id=v.campaign.id,
        campaign_name=v.campaign.name,
        org_code=v.org.code,
        org_name=v.org.name,
        status=v.status,
        locked=v.locked,
        phase=v.phase.label if v.phase is not None else "",
        deadline=v.deadline,
        late=v.late,
        number=row.number if row else "",
        place=doc.place,
        addressee="\n".join(doc.recipients_to),
        signer_title=doc.signer_title,
        signer_name=doc.signer_name,
        evaluation=doc.evaluation,
        proposals=doc.proposals,
        submitted_at=row.submitted_at if row else None,
        submitted_by=row.submitted_by if row else "",
        decided_at=row.decided_at if row else None,
        decided_by=row.decided_by if row else "",
        return_reason=row.return_reason if row else "",
        figures=[
            FigurePublic(
                key=f.key,
                number=f.number,
                label=f.label,
                label_en=f.label_en,
                value=f.value,
                measured=f.measured,
                unit=f.unit,
                overridden=f.overridden,
                note=f.note,
            )
            for f in doc.figures
        ],
        overrides={k: OverridePublic(**o) for k, o in v.overrides.items()},
        missing=v.missing,
        missing_below=v.missing_below,
        late_children=v.late_children,
        children=[
            LinePublic(
                code=line.org.code,
                name=line.org.name,
                level=line.level,
                status=line.status,
                late=line.late,
                submitted_at=line.submitted_at,
                values=line.values,
            )
            for line in v.children
        ],
    )


def _answer(session: Session, campaign: Campaign, org: Organisation) -> ReportPublic:
    with _errors():
        return public(reports.view(session, campaign, org), session)


def _file(content: bytes, fmt: str, name: str) -> Response:
    return Response(
        content,
        media_type=report_document.MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/reports/monthly/{month}.{fmt}", response_class=Response)
def monthly_file(
    month: Annotated[str, Path(pattern=r"^\d{4}-\d{2}$")],
    fmt: Format,
    session: SessionDep,
    principal: CurrentUser,
) -> Response:
    """The monthly technical report on `month` (YYYY-MM) for your subtree."""
    with _errors():
        doc = report_monthly.build_monthly_report(
            session, report_monthly.parse_month(month), principal.org
        )
        return _file(
            report_document.render_bytes(doc, fmt), fmt, report_document.filename(doc, fmt)
        )


@router.get("/reports/{campaign_id}", response_model=ReportPublic)
def my_report(campaign_id: CampaignId, session: SessionDep, principal: CurrentUser) -> ReportPublic:
    """Your organisation's report for the campaign (or its scope's, when launched below you),
    with your children's status: who submitted, who is late, who is missing."""
    campaign, org = _target(session, principal, campaign_id, None)
    return _answer(session, campaign, org)


@router.get("/reports/{campaign_id}/{code}.{fmt}", response_class=Response)
def download(
    campaign_id: CampaignId, code: str, fmt: Format, session: SessionDep, principal: CurrentUser
) -> Response:
    """The report as an official document: DOCX (Nghị định 30/2020 layout), XLSX or PDF."""
    campaign, org = _target(session, principal, campaign_id, code)
    with _errors():
        doc = report_document.build_campaign_report(session, campaign, org)
        return _file(
            report_document.render_bytes(doc, fmt), fmt, report_document.filename(doc, fmt)
        )


@router.get("/reports/{campaign_id}/{code}", response_model=ReportPublic)
def get_report(
    campaign_id: CampaignId, code: str, session: SessionDep, principal: CurrentUser
) -> ReportPublic:
    campaign, org = _target(session, principal, campaign_id, code)
    return _answer(session, campaign, org)


@router.patch("/reports/{campaign_id}/{code}", response_model=ReportPublic)
def update(
    campaign_id: CampaignId,
    code: str,
    body: ReportUpdate,
    session: SessionDep,
    principal: CurrentUser,
) -> ReportPublic:
    """Change Part 1 (evaluation, proposals) and the letter's number, place, addressee, signer.
    Only an officer of the organisation; not while submitted or accepted (409)."""
    campaign, org = _target(session, principal, campaign_id, code)
    with _errors():
        reports.edit(session, principal, campaign, org, body.model_dump(exclude_none=True))
    session.commit()
    return _answer(session, campaign, org)


@router.put("/reports/{campaign_id}/{code}/overrides/{key}", response_model=ReportPublic)
def set_override(
    campaign_id: CampaignId,
    code: str,
    key: FIGURE_KEYS,
    body: OverrideIn,
    session: SessionDep,
    principal: CurrentUser,
) -> ReportPublic:
    """Replace a measured figure; the reason is required, kept, shown in Ghi chú and audited.
    `value: null` goes back to the measured value."""
    campaign, org = _target(session, principal, campaign_id, code)
    with _errors():
        reports.override(session, principal, campaign, org, key, body.value, body.reason)
    session.commit()
    return _answer(session, campaign, org)


@router.post("/reports/{campaign_id}/{code}/submit", response_model=ReportPublic)
def submit(
    campaign_id: CampaignId, code: str, session: SessionDep, principal: CurrentUser
) -> ReportPublic:
    """Freeze the figures and send the report up (locked until the parent returns it)."""
    campaign, org = _target(session, principal, campaign_id, code)
    with _errors():
        reports.submit(session, principal, campaign, org)
    session.commit()
    return _answer(session, campaign, org)


@router.post("/reports/{campaign_id}/{code}/accept", response_model=ReportPublic)
def accept(
    campaign_id: CampaignId, code: str, session: SessionDep, principal: CurrentUser
) -> ReportPublic:
    """Accept a submitted report (an officer of the parent or above)."""
    campaign, org = _target(session, principal, campaign_id, code)
    with _errors():
        reports.accept(session, principal, campaign, org)
    session.commit()
    return _answer(session, campaign, org)


@router.post("/reports/{campaign_id}/{code}/return", response_model=ReportPublic)
def return_report(
    campaign_id: CampaignId,
    code: str,
    body: ReturnIn,
    session: SessionDep,
    principal: CurrentUser,
) -> ReportPublic:
    """Return a report for changes, with the reason (an officer of the parent or above)."""
    campaign, org = _target(session, principal, campaign_id, code)
    with _errors():
        reports.return_report(session, principal, campaign, org, body.reason)
    session.commit()
    return _answer(session, campaign, org)
