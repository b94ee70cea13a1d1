"""`quet botnet`: import sinkhole and botnet feeds (attributed to the organisations that own the
addresses), the national figures, the daily digests and one address's status."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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

tr("bn.col.file", "Tệp", "File")
tr("bn.col.format", "Định dạng", "Format")
tr("bn.col.rows", "Dòng", "Rows")
tr("bn.col.bad", "Lỗi", "Bad")
tr("bn.col.dup", "Trùng", "Duplicates")
tr("bn.col.new", "Sự kiện mới", "New events")
tr("bn.col.attr", "Đã gán đơn vị", "Attributed")
tr("bn.col.unattr", "Chưa gán", "Unattributed")
tr("bn.col.days", "Ngày", "Days")
tr("bn.done", "{ips} cặp IP × họ mã độc cập nhật, {stats} dòng thống kê; {events} sự kiện trong {secs:.1f} giây (gán đơn vị và thống kê: {attr:.2f} giây, {engine}).", "{ips} (IP, family) rows updated, {stats} statistics rows; {events} events in {secs:.1f} s (attribution and statistics: {attr:.2f} s, {engine}).")  # fmt: skip
tr("bn.bad", "{n} dòng không đọc được trong {file} (vài ví dụ):", "{n} row(s) could not be read in {file} (first few):")  # fmt: skip
tr("bn.bad_ranges", "{n} dải IP đăng ký không hợp lệ bị bỏ qua: {first}", "{n} registered range(s) could not be read and were skipped: {first}")  # fmt: skip
tr("bn.month", "Tháng {month}", "Month {month}")
tr("bn.scope", "Phạm vi: {name} ({code})", "Scope: {name} ({code})")
tr("bn.national", "Phạm vi: toàn quốc", "Scope: the whole country")
tr("bn.ips", "IP botnet (duy nhất) trong tháng: {n}", "Unique botnet IPs this month: {n}")
tr("bn.vs_month", "So với tháng trước ({n}): {pct}", "vs last month ({n}): {pct}")
tr(
    "bn.vs_year",
    "So với cùng kỳ năm trước ({n}): {pct}",
    "vs the same month last year ({n}): {pct}",
)
tr("bn.latest", "Ngày dữ liệu mới nhất: {day} ({n} IP)", "Newest feed day: {day} ({n} IPs)")
tr("bn.none", "Chưa có dữ liệu botnet: nhập bằng `quet botnet import`.", "No botnet data yet: import feeds with `quet botnet import`.")  # fmt: skip
tr("bn.top.family", "Họ mã độc", "Families")
tr("bn.top.province", "Tỉnh, thành phố", "Provinces")
tr("bn.top.isp", "Nhà mạng (ASN)", "ISPs (ASN)")
tr("bn.top.sector", "Lĩnh vực", "Sectors")
tr("bn.top.org", "Đơn vị", "Organisations")
tr("bn.unknown", "(không rõ)", "(unknown)")
tr("bn.listed", "{ip} CÓ trong mạng botnet ngày {day}: {families}", "{ip} IS in a botnet on {day}: {families}")  # fmt: skip
tr("bn.not_listed", "{ip} không có trong mạng botnet ngày {day}.", "{ip} is not in a botnet on {day}.")  # fmt: skip
tr("bn.no_day", "Chưa có dữ liệu botnet để tra cứu.", "No botnet data to look up yet.")
tr("bn.stale", "Lưu ý: dữ liệu mới nhất đã cũ.", "Note: the newest data is old.")
tr("bn.sent", "Đã gửi bản tin ngày {day} cho {n} đơn vị.", "Sent the digest of {day} to {n} organisation(s).")  # fmt: skip
tr("bn.skipped", "Bỏ qua {code}: {reason}", "Skipped {code}: {reason}")
tr("bn.failed", "Gửi thất bại: {what}", "Delivery failed: {what}")
tr("bn.channel.email", "thư điện tử", "e-mail")
tr("bn.channel.webhook", "webhook", "webhook")
tr("bn.unknown_org", "Không có tổ chức mã {code}", "No organisation with code {code}")
tr("bn.failed_file", "Không đọc được {file}: {why}", "Could not read {file}: {why}")
tr("bn.failed_files", "{n} tệp không nhập được (các tệp khác đã được nhập).", "{n} file(s) could not be imported (the others were).")  # fmt: skip
tr("bn.maxmind", "Dữ liệu MaxMind ({kind}): {used}", "MaxMind data ({kind}): {used}")
tr("bn.maxmind.none", "không có (chưa từng cung cấp)", "none (never given)")
tr("bn.no_data_short", "chưa có dữ liệu", "no data")
tr("bn.period.day", "Ngày {start}", "Day {start}")
tr("bn.period.week", "Tuần {start} – {end}", "Week {start} – {end}")
tr("bn.ips.day", "IP botnet (duy nhất) trong ngày: {n}", "Unique botnet IPs that day: {n}")
tr("bn.ips.week", "IP botnet (duy nhất) trong tuần: {n}", "Unique botnet IPs that week: {n}")
tr("bn.vs_prev.day", "So với ngày trước ({n}): {pct}", "vs the day before ({n}): {pct}")
tr("bn.vs_prev.week", "So với tuần trước ({n}): {pct}", "vs last week ({n}): {pct}")
tr("bn.unattributed", "Chưa xác định đơn vị", "Unattributed")
tr("bn.unknown_label", "Không rõ", "Unknown")
tr("bn.sector.government", "Cơ quan nhà nước", "Government")
tr("bn.sector.finance", "Tài chính, ngân hàng", "Finance")
tr("bn.sector.education", "Giáo dục", "Education")
tr("bn.sector.health", "Y tế", "Health")
tr("bn.sector.energy", "Năng lượng", "Energy")
tr("bn.sector.telecom", "Viễn thông", "Telecommunications")
tr("bn.sector.other", "Khác", "Other")
tr("bn.sector.", "(chưa xác định)", "(not set)")

app = typer.Typer(
    help=(
        "IP botnet: nhập dữ liệu sinkhole, gán cho đơn vị sở hữu, thống kê, bản tin hằng ngày.\n\n"
        "Botnet IPs: import sinkhole feeds, attribute them to the owning organisations, national "
        "figures, daily digests.\n\n"
        "Ví dụ / examples:  quet botnet import event4_sinkhole-2026-11-24.csv "
        "--asn-db GeoLite2-ASN.mmdb --geo-db GeoLite2-City.mmdb    "
        "quet botnet stats --month 2026-11    quet botnet lookup 203.0.113.7"
    ),
    no_args_is_help=True,
)
out = Console()
err = Console(stderr=True)


@contextmanager
def _session(database_url: str) -> Iterator[tuple[Session, Settings]]:
    """A session on the server's database (migrated, with its root organisation)."""
    from quet.server.app import bootstrap
    from quet.server.db import Database
    from quet.server.settings import Settings

    settings = Settings(database_url=database_url) if database_url else Settings()
    db = Database(settings.resolved_database_url())
    try:
        password = bootstrap(db, settings)
        if password:
            err.print(f"[yellow]{t('org.admin')}[/] [bold]{password}[/]")
        with db.sessions() as session:
            yield session, settings
    finally:
        db.dispose()


def _day(text: str | None, what: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text if len(text) > 7 else text + "-01")
    except ValueError as exc:
        raise InputError(f"{what}: expected YYYY-MM-DD or YYYY-MM, got {text!r}") from exc


def _span(first: date | None, last: date | None) -> str:
    if first is None or last is None:
        return ""
    if first == last:
        return first.isoformat()
    same = 8 if first.strftime("%Y-%m") == last.strftime("%Y-%m") else 5 if first.year == last.year else 0  # fmt: skip
    return f"{first.isoformat()}…{last.isoformat()[same:]}"


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _plain(asdict(value))
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value


@app.command("import")
def import_cmd(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="Shadowserver event4_sinkhole[_http] CSV, IntelMQ JSON events, or CSV "
            "ip,timestamp,family (sniffed; .gz read as is)"
        ),
    ],
    database_url: DbOption = "",
    asn_db: Annotated[
        Path | None,
        typer.Option(
            "--asn-db", envvar="QUET_ASN_DB", help="MaxMind ASN database (GeoLite2-ASN.mmdb)"
        ),
    ] = None,
    geo_db: Annotated[
        Path | None,
        typer.Option(
            "--geo-db",
            envvar="QUET_GEO_DB",
            help="MaxMind City database (GeoLite2-City.mmdb): province and country",
        ),
    ] = None,
    engine: Annotated[
        str, typer.Option(help="duckdb (one machine) or spark (QUET_SPARK_MASTER, default local)")
    ] = "duckdb",
    threads: Annotated[int, typer.Option(help="DuckDB threads (0 = all cores)")] = 0,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Nhập dữ liệu botnet/sinkhole, gán IP cho đơn vị, cập nhật thống kê / import feeds.

    Each (IP, family, day) is kept once: importing the same file twice adds nothing. Every
    address goes to the organisation that registered the smallest range holding it
    (`quet org import`, column ip_ranges); ASN/ISP and province come from the MaxMind databases.
    The databases given are remembered (their ranges are saved in the data folder) and used by
    later imports that do not name them, so a recount never loses ISP or province. The
    statistics of every day, ISO week and month touched are recounted.

    A file that cannot be read (missing, a folder, empty, unknown format) is named and skipped;
    the other files are imported and the exit code is 1. Bad rows never stop a file.

    Ví dụ / example:  quet botnet import sinkhole-2026-11-24.csv.gz --geo-db GeoLite2-City.mmdb
    """
    from quet.botnet.attribute import import_files

    with _session(database_url) as (session, _settings):
        report = import_files(
            session, files, asn_db=asn_db, geo_db=geo_db, engine=engine, threads=threads or None
        )
    if json_out:
        typer.echo(json.dumps(_plain(report), ensure_ascii=False, indent=2))
        if report.failed:
            raise typer.Exit(1)
        return
    table = Table(show_edge=False)
    for key in ("file", "format", "rows", "bad", "dup", "new", "attr", "unattr", "days"):
        table.add_column(t(f"bn.col.{key}"), justify="left" if key in ("file", "format") else "right")  # fmt: skip
    for f in report.files:
        span = _span(f.first_day, f.last_day)
        table.add_row(
            escape(Path(f.file).name), f.format, f"{f.rows:,}", f"{f.bad_rows:,}",
            f"{f.duplicates:,}", f"{f.new_events:,}", f"{f.attributed:,}",
            f"{f.unattributed:,}", span,
        )  # fmt: skip
    out.print(table)
    for f in report.files:
        if f.bad_rows:
            err.print(f"[yellow]{t('bn.bad', n=f.bad_rows, file=escape(f.file))}[/]")
            for line in f.errors[:5]:
                err.print(f"  {escape(line)}", highlight=False, soft_wrap=True)
    if report.bad_ranges:
        first = escape(", ".join(report.bad_ranges[:3]))
        err.print(f"[yellow]{t('bn.bad_ranges', n=len(report.bad_ranges), first=first)}[/]")
    for kind, used in report.maxmind.items():
        shown = t("bn.maxmind.none") if used == "none" else used
        out.print(t("bn.maxmind", kind=kind, used=escape(shown)), highlight=False)
    out.print(
        t(
            "bn.done",
            ips=f"{report.ip_rows:,}",
            stats=f"{report.stats_rows:,}",
            events=f"{report.events:,}",
            secs=report.seconds,
            attr=report.attribute_seconds,
            engine=report.engine,
        )
    )
    _report_failed(report.failed)


def _report_failed(failed: list[tuple[str, str]]) -> None:
    """Name each file that could not be read; exit 1 when there was one (the rest imported)."""
    for file, why in failed:
        err.print(f"[red]{escape(t('bn.failed_file', file=file, why=why))}[/]", soft_wrap=True)
    if failed:
        err.print(f"[red]{t('bn.failed_files', n=len(failed))}[/]")
        raise typer.Exit(1)


def _pct(value: float | None) -> str:
    if value is None:
        return "—"
    arrow = "▲" if value > 0 else "▼" if value < 0 else "="
    return f"{arrow} {value:+.1f} %"


def _n(value: int | None) -> str:
    return t("bn.no_data_short") if value is None else f"{value:,}"


def _row_label(key: str, row: dict[str, Any]) -> str:
    """How a breakdown row is named: sectors translated, ASN with the ISP, the unknown and
    unattributed buckets in words."""
    raw_key = str(row.get("key") or "")
    if key == "top_sectors":
        return t(f"bn.sector.{raw_key}") if raw_key else t("bn.unknown_label")
    if not raw_key:
        return t("bn.unattributed") if key == "top_orgs" else t("bn.unknown_label")
    if key == "top_isps":
        return f"AS{raw_key} {row.get('label') or ''}".strip()
    if key == "top_orgs":
        label = str(row.get("label") or "")
        code = str(row.get("code") or "")
        return f"{label} ({code})" if code and label else label or code or raw_key
    return str(row.get("label") or raw_key)


_TOPS = (
    ("top_families", "bn.top.family"),
    ("top_provinces", "bn.top.province"),
    ("top_isps", "bn.top.isp"),
    ("top_sectors", "bn.top.sector"),
    ("top_orgs", "bn.top.org"),
)


def _json_figures(figures: dict[str, Any]) -> dict[str, Any]:
    """The figures for --json: organisations keyed by their code (the database id kept as
    `id`), every row with a readable label."""
    data = dict(figures)
    for key, _title in _TOPS:
        rows = []
        for row in figures.get(key) or []:
            item = dict(row)
            if key == "top_orgs":
                item["id"] = row.get("key") or None
                item["key"] = row.get("code") or ""
                item.pop("code", None)
            item["label"] = _row_label(key, row)
            rows.append(item)
        data[key] = rows
    return data


@app.command("stats")
def stats_cmd(
    database_url: DbOption = "",
    month: Annotated[
        str | None, typer.Option(help="YYYY-MM (default: the newest feed month)")
    ] = None,
    period: Annotated[
        str,
        typer.Option(
            help="month, week (ISO, Monday to Sunday) or day; with --day for a week or a day"
        ),
    ] = "month",
    day: Annotated[
        str | None,
        typer.Option(help="YYYY-MM-DD: a day of the week/day to show (default: the newest)"),
    ] = None,
    org: Annotated[str, typer.Option("--org", help="Only this organisation's subtree (code)")] = "",
    json_out: Annotated[bool, typer.Option("--json", help="Print the figures as JSON")] = False,
) -> None:
    """Số IP botnet: kỳ này, so với kỳ trước và cùng kỳ năm trước / the figures.

    A month by default (--period week or day for an ISO week or one day). A period without any
    imported feed data prints "chưa có dữ liệu" / "no data" (null in --json), not 0; the changes
    need data on both sides. In --json, organisations are keyed by their code.

    Ví dụ / examples:  quet botnet stats --month 2026-11 --org VN-01
    quet botnet stats --period week --day 2026-11-18
    """
    from quet.server.services import botnet, orgs

    if period not in ("day", "week", "month"):
        raise InputError(f"--period: one of day, week, month, got {period!r}")
    wanted = _day(day, "--day") if day and period != "month" else _day(month, "--month")
    with _session(database_url) as (session, _settings):
        under = None
        if org:
            under = orgs.by_code(session, org)
            if under is None:
                raise InputError(t("bn.unknown_org", code=org))
        figures = botnet.summary(session, under, wanted, period)
    if json_out:
        typer.echo(json.dumps(_plain(_json_figures(figures)), ensure_ascii=False, indent=2))
        return
    if not figures.get("latest_day"):
        out.print(t("bn.none"))
        return
    scope = figures.get("scope")
    out.print(t("bn.scope", **scope) if scope else t("bn.national"))
    if period == "month":
        out.print(f"[bold]{t('bn.month', month=figures['month'])}[/]")
        out.print(t("bn.ips", n=_n(figures["ips"])))
        vs = "bn.vs_month"
    else:
        out.print(f"[bold]{t(f'bn.period.{period}', start=figures['start'], end=figures['end'])}[/]")  # fmt: skip
        out.print(t(f"bn.ips.{period}", n=_n(figures["ips"])))
        vs = f"bn.vs_prev.{period}"
    out.print(t(vs, n=_n(figures["last_month"]), pct=_pct(figures.get("change_month_pct"))))
    out.print(t("bn.vs_year", n=_n(figures["last_year"]), pct=_pct(figures.get("change_year_pct"))))  # fmt: skip
    out.print(t("bn.latest", day=figures["latest_day"], n=f"{figures.get('latest_day_ips', 0):,}"))
    for key, title in _TOPS:
        rows = figures.get(key) or []
        if not rows:
            continue
        table = Table(title=t(title), show_edge=False, title_justify="left")
        table.add_column("")
        table.add_column("IP", justify="right")
        ordered = sorted(rows, key=lambda r: (not r.get("key"), -int(r["ips"])))
        for row in ordered[:10]:
            table.add_row(escape(_row_label(key, row)), f"{row['ips']:,}")
        out.print(table)


@app.command("notify")
def notify_cmd(
    database_url: DbOption = "",
    day: Annotated[
        str | None, typer.Option(help="YYYY-MM-DD (default: the newest feed day)")
    ] = None,
) -> None:
    """Gửi bản tin IP botnet hằng ngày cho từng đơn vị (thư + webhook) / send the daily digests.

    Each organisation with at least its threshold of IPs active that day gets one e-mail (CSV
    attached) and one signed webhook, once per day; opted-out organisations are skipped.

    Ví dụ / example:  quet botnet notify --day 2026-11-24
    """
    from quet.server.services import botnet

    with _session(database_url) as (session, settings):
        result = botnet.send_digests(session, settings, _day(day, "--day"))
    data = _plain(result.to_dict() if hasattr(result, "to_dict") else result)
    out.print(t("bn.sent", day=data.get("day") or "—", n=len(data.get("sent") or [])))
    for code, reason in (data.get("skipped") or {}).items():
        out.print(t("bn.skipped", code=escape(str(code)), reason=escape(str(reason))))
    for failed in result.failed:
        channel = t(f"bn.channel.{failed.channel}") if failed.channel in ("email", "webhook") else failed.channel  # fmt: skip
        tries = f", {failed.attempts}×" if failed.attempts > 1 else ""
        what = f"{failed.org_code} — {channel}{tries}: {failed.error or '?'}"
        err.print(f"[red]{t('bn.failed', what=escape(what))}[/]", soft_wrap=True)
    if result.failed:
        raise typer.Exit(1)


@app.command("lookup")
def lookup_cmd(
    ip: Annotated[str, typer.Argument(help="IPv4 or IPv6 address")],
    database_url: DbOption = "",
    json_out: Annotated[bool, typer.Option("--json", help="Print the answer as JSON")] = False,
) -> None:
    """Một IP có trong mạng botnet hôm nay không? / is this address in a botnet today?

    The answer is about the newest feed day only (what the public lookup page says). Exit code
    1 when it is listed.

    Ví dụ / example:  quet botnet lookup 203.0.113.7
    """
    from quet.server.services import botnet

    with _session(database_url) as (session, _settings):
        result = botnet.lookup(session, ip)
    if json_out:
        typer.echo(json.dumps(_plain(result.to_dict()), ensure_ascii=False))
    elif result.day is None:
        out.print(t("bn.no_day"))
    elif result.listed:
        families = ", ".join(result.families) or t("bn.unknown")
        out.print(f"[bold red]{t('bn.listed', ip=result.ip, day=result.day, families=families)}[/]")
    else:
        out.print(f"[green]{t('bn.not_listed', ip=result.ip, day=result.day)}[/]")
    if result.stale and not json_out:
        out.print(f"[yellow]{t('bn.stale')}[/]")
    if result.listed:
        raise typer.Exit(1)
