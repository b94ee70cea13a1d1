"""`quet report`: official reports from the campaign server's database — generate an
organisation's campaign return or the centre's monthly technical report as DOCX, XLSX or PDF,
send the reminder e-mails owed before a deadline, and list who has reported."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from quet.cli.org import DbOption
from quet.errors import InputError
from quet.i18n import register as tr
from quet.i18n import t

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from quet.server.settings import Settings
    from quet.store.models import Campaign, Organisation

tr("report.written", "Đã ghi {path} ({size})", "Wrote {path} ({size})")
tr("report.no_campaign", "Chưa có chiến dịch nào", "There is no campaign yet")
tr("report.no_campaign_id", "Không có chiến dịch số {id}", "No campaign with id {id}")
tr("report.unknown_org", "Không có tổ chức mã {code}", "No organisation with code {code}")
tr("report.format", "Định dạng không rõ {fmt!r}: dùng docx, xlsx hoặc pdf (hoặc đặt đuôi tệp -o)", "Unknown format {fmt!r}: use docx, xlsx or pdf (or give -o a file name ending in one)")  # fmt: skip
tr(
    "report.sent",
    "Đã gửi {sent} thư nhắc, {failed} thư lỗi",
    "Sent {sent} reminders, {failed} failed",
)
tr("report.nothing_due", "Không có thư nhắc nào cần gửi hôm nay", "No reminders are due today")
tr("report.col.org", "Đơn vị", "Organisation")
tr("report.col.status", "Trạng thái", "Status")
tr("report.col.submitted", "Ngày gửi", "Submitted")
tr("report.col.late", "Quá hạn", "Late")
tr("report.title", "{campaign} — {phase}: hạn báo cáo {deadline}", "{campaign} — {phase}: report deadline {deadline}")  # fmt: skip
tr("report.col.deadline", "Hạn áp dụng", "Deadline")
tr("report.no_folder", "Không có thư mục {path}: tạo thư mục trước", "No folder {path}: create it first")  # fmt: skip
tr("report.summary", "{done}/{total} đơn vị đã báo cáo; {missing} chưa báo cáo; {late} quá hạn", "{done}/{total} units reported; {missing} missing; {late} late")  # fmt: skip
for _status, _vi, _en in (
    ("draft", "Nháp", "Draft"),
    ("submitted", "Đã gửi", "Submitted"),
    ("accepted", "Đã chấp nhận", "Accepted"),
    ("returned", "Bị trả lại", "Returned"),
    ("missing", "Chưa báo cáo", "Not reported"),
):
    tr(f"report.status.{_status}", _vi, _en)

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help=(
        "Báo cáo chính thức theo mẫu của chiến dịch / official campaign reports.\n\n"
        "Ví dụ / examples:\n\n"
        "  quet report generate -o bao-cao.docx            (chiến dịch mới nhất, đơn vị gốc)\n\n"
        "  quet report generate --org CB --format pdf -o cb.pdf\n\n"
        "  quet report generate --monthly 2026-10 -o ky-thuat-2026-10.xlsx\n\n"
        "  quet report status --org CB        quet report remind"
    ),
)
out = Console()
err = Console(stderr=True)

CampaignOption = Annotated[
    int | None, typer.Option("--campaign", help="Campaign id (default: the latest)")
]
OrgOption = Annotated[
    str, typer.Option("--org", help="Organisation code (default: the root organisation)")
]


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _settings(database_url: str) -> Settings:
    from quet.server.settings import Settings

    return Settings(database_url=database_url) if database_url else Settings()


@contextmanager
def _session(settings: Settings) -> Iterator[Session]:
    from quet.server.app import bootstrap
    from quet.server.db import Database

    db = Database(settings.resolved_database_url())
    try:
        bootstrap(db, settings)
        with db.sessions() as session:
            yield session
    finally:
        db.dispose()


def _org(session: Session, code: str) -> Organisation:
    from quet.server.services import orgs

    org = orgs.by_code(session, code) if code else orgs.root(session)
    if org is None:
        raise InputError(t("report.unknown_org", code=code))
    return org


def _campaign(session: Session, campaign_id: int | None, org: Organisation) -> Campaign:
    from quet.server.services import reports
    from quet.store.models import Campaign

    if campaign_id is not None:
        found = session.get(Campaign, campaign_id)
        if found is None:
            raise InputError(t("report.no_campaign_id", id=campaign_id))
        return found
    latest = reports.latest_campaign(session, org)
    if latest is None:
        raise InputError(t("report.no_campaign"))
    return latest


def _format(fmt: str, output: Path) -> str:
    chosen = (fmt or output.suffix.lstrip(".")).lower()
    if chosen not in ("docx", "xlsx", "pdf"):
        raise InputError(t("report.format", fmt=chosen))
    return chosen


def _size(n: int) -> str:
    from quet.units import human_size

    return human_size(n)


@app.command("generate")
def generate_cmd(
    output: Annotated[Path, typer.Option("-o", "--output", help="File to write")],
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="docx, xlsx or pdf (default: from -o)")
    ] = "",
    campaign: CampaignOption = None,
    org: OrgOption = "",
    monthly: Annotated[
        str,
        typer.Option(
            "--monthly", metavar="YYYY-MM", help="The monthly technical report for this month"
        ),
    ] = "",
    lang: Annotated[str, typer.Option(help="vi (official) or en labels")] = "vi",
    database_url: DbOption = "",
) -> None:
    """Xuất báo cáo ra DOCX/XLSX/PDF / write a report as DOCX, XLSX or PDF.

    The campaign report of --org (default: the root) for --campaign (default: the latest).
    The letter follows Nghị định 30/2020/NĐ-CP; then the appendix form and one annex per level.
    A draft prints live figures; a submitted report its frozen ones.
    With --monthly YYYY-MM: the centre's monthly technical report instead.

    Ví dụ / example:  quet report generate --org CB -o cb.docx
    """
    from quet.reports.document import CampaignReport, MonthlyTechnicalReport
    from quet.server.services import report_document, report_monthly

    chosen = _format(fmt, output)
    if not output.parent.is_dir():  # never create folders behind the person's back
        raise InputError(t("report.no_folder", path=str(output.parent)))
    with _session(_settings(database_url)) as session:
        where = _org(session, org)
        if monthly:
            month = report_monthly.parse_month(monthly)
            doc: CampaignReport | MonthlyTechnicalReport = report_monthly.build_monthly_report(
                session, month, where
            )
        else:
            doc = report_document.build_campaign_report(
                session, _campaign(session, campaign, where), where
            )
        content = report_document.render_bytes(doc, chosen, lang=lang)
    output.write_bytes(content)
    out.print(t("report.written", path=escape(str(output)), size=_size(output.stat().st_size)))


@app.command("remind")
def remind_cmd(
    campaign: CampaignOption = None,
    database_url: DbOption = "",
) -> None:
    """Gửi thư nhắc hạn báo cáo / send the reminder e-mails owed now.

    Units without a submitted report get one e-mail 3 days and one 1 day before the deadline,
    each once (the server also sends them by itself every hour).
    SMTP from QUET_SMTP_HOST, QUET_SMTP_PORT, QUET_SMTP_SENDER, …; links use QUET_PUBLIC_URL.

    Ví dụ / example:  QUET_SMTP_HOST=mail.example.vn quet report remind
    """
    from quet.server.services import report_reminders
    from quet.store.models import Campaign

    settings = _settings(database_url)
    with _session(settings) as session:
        chosen = session.get(Campaign, campaign) if campaign is not None else None
        if campaign is not None and chosen is None:
            raise InputError(t("report.no_campaign_id", id=campaign))
        deliveries = report_reminders.remind(session, settings, campaign=chosen, actor=_actor())
        session.commit()
    if not deliveries:
        out.print(t("report.nothing_due"))
        return
    sent = sum(d.ok for d in deliveries)
    out.print(t("report.sent", sent=sent, failed=len(deliveries) - sent))
    for d in deliveries:
        if not d.ok:
            err.print(f"[red]✗[/] {escape(d.org_code)}: {escape(d.error)}", highlight=False)
    if sent < len(deliveries):
        raise typer.Exit(1)


@app.command("status")
def status_cmd(
    campaign: CampaignOption = None,
    org: OrgOption = "",
    database_url: DbOption = "",
) -> None:
    """Ai đã báo cáo, ai chưa, ai quá hạn / who has reported, who is missing or late.

    Lists the children of --org (default: the root) with their report's status.

    Ví dụ / example:  quet report status --org CB
    """
    from quet.server.services import reports

    with _session(_settings(database_url)) as session:
        where = _org(session, org)
        chosen = _campaign(session, campaign, where)
        v = reports.view(session, chosen, where, now=datetime.now(UTC))
        phase = v.phase.label if v.phase is not None else ""
        table = Table(
            title=t(
                "report.title",
                campaign=escape(chosen.name),
                phase=escape(phase),
                deadline=v.deadline,
            ),
            show_edge=False,
        )
        for key in (
            "report.col.org",
            "report.col.status",
            "report.col.submitted",
            "report.col.deadline",
            "report.col.late",
        ):
            table.add_column(t(key))
        for line in v.children:
            colour = {"missing": "red", "submitted": "green", "accepted": "green"}.get(
                line.status, "yellow"
            )
            table.add_row(
                f"{escape(line.org.code)}  {escape(line.org.name)}",
                f"[{colour}]{t('report.status.' + line.status)}[/]",
                line.submitted_at.strftime("%Y-%m-%d %H:%M") if line.submitted_at else "—",
                f"{escape(line.phase.label)} {line.phase.deadline}" if line.phase else "—",
                "[red]✓[/]" if line.late else "",
            )
        done = sum(1 for line in v.children if line.values is not None)
        late = sum(1 for line in v.children if line.late)
    out.print(table)
    out.print(
        t(
            "report.summary",
            done=done,
            total=len(v.children),
            missing=len(v.missing),
            late=late,
        )
    )
