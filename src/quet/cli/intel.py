"""`quet intel`: import indicator feeds into the intel store, export them, look values up, keep
the store clean (expiry, false positives)."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from quet.errors import InputError, QuetError
from quet.i18n import register as tr
from quet.i18n import t
from quet.indicators import formats
from quet.indicators.model import Indicator, IndicatorType, IssueLog
from quet.store import intel
from quet.store.db import connect
from quet.store.importer import ImportSummary, Matcher

tr("intel.importing", "Đang nhập {name}", "Importing {name}")
tr("intel.summary", "Kết quả nhập", "Import summary")
tr("intel.col.file", "Tệp", "File")
tr("intel.col.source", "Nguồn", "Source")
tr("intel.col.read", "Đã đọc", "Read")
tr("intel.col.added", "Thêm mới", "Added")
tr("intel.col.updated", "Cập nhật", "Updated")
tr("intel.col.suppressed", "Bị lọc", "Suppressed")
tr("intel.col.rejected", "Dòng lỗi", "Rejected")
tr("intel.suppressed", "Bị danh sách cảnh báo lọc bỏ (vài ví dụ):", "Dropped by warning lists (first few):")  # fmt: skip
tr("intel.rejected", "Dòng không đọc được (vài ví dụ):", "Lines that could not be read (first few):")  # fmt: skip
tr("intel.nothing", "Không đọc được chỉ báo nào.", "No indicator could be read.")
tr("intel.missing", "Không có tệp/thư mục: {path}", "No such file or folder: {path}")
tr("intel.lookup_suppressed", "{value} nằm trong danh sách cảnh báo «{name}» (giá trị vô hại): không tính là trúng. Dùng --no-warninglists để xem.", "{value} is on the warning list “{name}” (known benign): not a hit. Use --no-warninglists to see it.")  # fmt: skip
tr("intel.nowl", "Không có danh sách cảnh báo (warninglists): không lọc.", "No warning lists available: nothing filtered.")  # fmt: skip
tr("intel.exported", "Đã ghi {n} chỉ báo vào {path} (định dạng {fmt})", "Wrote {n} indicator(s) to {path} ({fmt})")  # fmt: skip
tr("intel.notfound", "Không tìm thấy {value} trong kho chỉ báo.", "{value} is not in the intel store.")  # fmt: skip
tr("intel.expired", "Đã đánh dấu hết hạn {n} chỉ báo.", "Marked {n} indicator(s) expired.")
tr("intel.sighting", "Đã ghi nhận ({kind}) cho {value}.", "Recorded ({kind}) for {value}.")
tr("intel.kind", "Chọn đúng một: --false-positive hoặc --seen", "Choose exactly one: --false-positive or --seen")  # fmt: skip
tr("intel.total", "Tổng số chỉ báo: {n}", "Indicators stored: {n}")
tr("intel.expiring", "Hết hạn trong 7 ngày: {n}", "Expiring within 7 days: {n}")

app = typer.Typer(
    help=(
        "Kho chỉ báo (IOC): nhập nguồn, xuất, tra cứu / the intel store: import, export, lookup.\n\n"
        "Ví dụ / examples:  quet intel import feeds/*.csv    quet intel lookup evil.com    "
        "quet intel export --format csv -o iocs.csv"
    ),
    no_args_is_help=True,
)
out = Console()
err = Console(stderr=True)

DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="QUET_INTEL_DB",
        help="URL kho / store URL (sqlite:///path, postgresql+psycopg://...). "
        "Mặc định / default: $QUET_HOME/intel.sqlite",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="In JSON / print JSON")]


class _Chain:
    """Several warning-list sets as one: the first that matches names the list."""

    def __init__(self, sets: list[Matcher]) -> None:
        self.sets = sets

    def match(self, ind: Indicator) -> str | None:
        for s in self.sets:
            hit = s.match(ind)
            if hit is not None:
                return hit
        return None


def _warninglists(disabled: bool, extra: list[Path], issues: IssueLog) -> Matcher | None:
    if disabled:
        return None
    try:
        mod = importlib.import_module("quet.indicators.warninglists")
    except ImportError:
        err.print(f"[yellow]{t('intel.nowl')}[/]")
        return None
    sets: list[Matcher] = [mod.WarninglistSet.default()]
    if extra:
        sets.append(mod.WarninglistSet.load(extra, issues))
    return _Chain(sets)


def _lines(path: Path) -> int:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    total = 0
    for f in files:
        with f.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                total += chunk.count(b"\n")
    return total


def _import_one(
    engine: sa.Engine, path: Path, fmt: str | None, source: str, lists: Matcher | None
) -> tuple[ImportSummary, IssueLog]:
    issues = IssueLog()
    size = path.stat().st_size if path.is_file() else 1 << 30
    rows = formats.read_path(path, issues, fmt)
    if size < 4 << 20:
        return intel.import_indicators(
            engine, rows, source=source, warninglists=lists, issues=issues
        ), issues
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    with progress:
        task = progress.add_task(t("intel.importing", name=path.name), total=_lines(path))
        summary = intel.import_indicators(
            engine,
            rows,
            source=source,
            warninglists=lists,
            issues=issues,
            progress=lambda n: progress.update(task, completed=n),
        )
    return summary, issues


@app.command("import", help="Nhập tệp chỉ báo vào kho / import indicator files into the store.")
def import_cmd(
    files: Annotated[list[Path], typer.Argument(help="tệp hoặc thư mục / files or folders")],
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="định dạng (mặc định: tự nhận) / format (default: sniffed)"),
    ] = None,
    source: Annotated[
        str | None, typer.Option("--source", help="tên nguồn / source name (default: file name)")
    ] = None,
    no_warninglists: Annotated[
        bool, typer.Option("--no-warninglists", help="không lọc / do not filter")
    ] = False,
    warninglist: Annotated[
        list[Path] | None,
        typer.Option("--warninglist", help="thêm danh sách MISP / extra MISP list.json"),
    ] = None,
    db: DbOpt = None,
) -> None:
    if fmt is not None and fmt not in formats.FORMATS:
        raise InputError(f"unknown format {fmt!r}; known: {', '.join(sorted(formats.FORMATS))}")
    wl_issues = IssueLog()
    lists = _warninglists(no_warninglists, list(warninglist or []), wl_issues)
    for issue in wl_issues.issues[:5]:
        err.print(f"[yellow]{escape(str(issue))}[/]")
    engine = connect(db)
    results: list[tuple[Path, ImportSummary, IssueLog]] = []
    try:
        for path in files:
            if not path.exists():
                err.print(f"[red]{escape(t('intel.missing', path=path))}[/]")
                continue
            summary, issues = _import_one(engine, path, fmt, source or path.name, lists)
            results.append((path, summary, issues))
    finally:
        engine.dispose()
    _print_summary(results)
    if sum(s.read for _p, s, _i in results) == 0:
        err.print(f"[red]{t('intel.nothing')}[/]")
        raise typer.Exit(2)


def _print_summary(results: list[tuple[Path, ImportSummary, IssueLog]]) -> None:
    if not results:
        return
    cols = ("file", "source", "read", "added", "updated", "suppressed", "rejected")
    table = Table(title=t("intel.summary"))
    for c in cols:
        table.add_column(
            t(f"intel.col.{c}"), justify="left" if c in ("file", "source") else "right"
        )
    for path, s, _issues in results:
        table.add_row(
            escape(str(path)),
            escape(s.source),
            *(f"{n:,}" for n in (s.read, s.added, s.updated, s.suppressed, s.rejected)),
        )
    out.print(table)
    examples = [e for _p, s, _i in results for e in s.suppressed_examples][:5]
    if examples:
        out.print(t("intel.suppressed"))
        for kind, value, name in examples:
            out.print(f"  [dim]{kind}[/] {escape(value)} — {escape(name)}")
    bad = [issue for _p, _s, issues in results for issue in issues.issues][:5]
    if bad:
        out.print(t("intel.rejected"))
        for issue in bad:
            out.print(f"  [yellow]{escape(str(issue))}[/]")


@app.command(
    "export",
    help=f"Xuất chỉ báo đang hiệu lực / export active indicators. Formats: {', '.join(formats.writers())}",
)
def export_cmd(
    fmt: Annotated[str, typer.Option("--format", help=", ".join(formats.writers()))],
    output: Annotated[Path, typer.Option("-o", "--output", help="tệp ra / output file")],
    types: Annotated[
        list[str] | None, typer.Option("--type", help="ipv4, domain, url, ...")
    ] = None,
    source: Annotated[str | None, typer.Option("--source")] = None,
    family: Annotated[str | None, typer.Option("--family")] = None,
    min_confidence: Annotated[int, typer.Option("--min-confidence", min=0, max=100)] = 0,
    db: DbOpt = None,
) -> None:
    if fmt not in formats.writers():
        raise InputError(f"no writer for format {fmt!r}; writers: {', '.join(formats.writers())}")
    kinds: list[IndicatorType] | None = None
    if types:
        try:
            kinds = [IndicatorType(k.strip().lower()) for k in types]
        except ValueError as exc:
            known = ", ".join(k.value for k in IndicatorType)
            raise InputError(f"unknown type in --type {types}; one of: {known}") from exc
    engine = connect(db)
    try:
        rows = intel.iter_indicators(
            engine, types=kinds, source=source, family=family, min_confidence=min_confidence
        )
        n = formats.write_path(rows, output, fmt)
    finally:
        engine.dispose()
    out.print(t("intel.exported", n=n, path=escape(str(output)), fmt=fmt))


@app.command("stats", help="Thống kê kho / store statistics.")
def stats_cmd(as_json: JsonOpt = False, db: DbOpt = None) -> None:
    engine = connect(db)
    try:
        data = intel.stats(engine)
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    out.print(t("intel.total", n=f"{data['total']:,}"))
    for key in ("by_type", "by_status", "by_source", "top_families"):
        table = Table(title=key, show_header=False)
        for name, n in data[key].items():
            table.add_row(escape(name), f"{n:,}")
        out.print(table)
    out.print(t("intel.expiring", n=f"{data['expiring_7d']:,}"))


def _on_warninglist(value: str) -> str | None:
    """The warning list that marks `value` as known-benign, if any."""
    from quet.indicators.model import guess
    from quet.indicators.warninglists import WarninglistSet

    try:
        kind, norm = guess(value)
    except QuetError:
        return None
    return WarninglistSet.default().match(Indicator(kind, norm))


@app.command("lookup", help="Tra cứu một giá trị / look a value up (IP, domain, URL, hash).")
def lookup_cmd(
    value: Annotated[str, typer.Argument(help="IP, CIDR, tên miền, URL, hash")],
    as_json: JsonOpt = False,
    all_: Annotated[
        bool, typer.Option("--all", help="cả chỉ báo hết hạn/nhầm / include expired, FPs")
    ] = False,
    no_warninglists: Annotated[
        bool, typer.Option("--no-warninglists", help="không lọc / do not suppress benign values")
    ] = False,
    db: DbOpt = None,
) -> None:
    engine = connect(db)
    try:
        records = intel.lookup(engine, value, include_inactive=all_)
    finally:
        engine.dispose()
    suppressed = None if no_warninglists else _on_warninglist(value)
    if suppressed and records:
        # Match-time suppression: a known-benign value is never a hit, whatever a feed says.
        err.print(t("intel.lookup_suppressed", value=escape(value), name=escape(suppressed)))
        records = []
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in records], ensure_ascii=False, indent=2))
    elif records:
        table = Table()
        for col in ("type", "value", "matched", "status", "name", "family", "conf", "sources"):
            table.add_column(col)
        for r in records:
            ind = r.indicator
            srcs = ", ".join(f"{s.source} ({s.last_seen:%Y-%m-%d})" for s in r.sources)
            table.add_row(
                ind.type.value, escape(ind.value), r.matched, r.status, escape(ind.name),
                escape(ind.family), str(ind.confidence), escape(srcs),
            )  # fmt: skip
        out.print(table)
    elif not suppressed:
        err.print(t("intel.notfound", value=escape(value)))
    if not records:
        raise typer.Exit(1)


@app.command("expire", help="Đánh dấu chỉ báo hết hạn / mark stale indicators expired.")
def expire_cmd(
    ttl: Annotated[
        list[str] | None,
        typer.Option("--ttl", help="TYPE=30d|12h|never, e.g. ipv4=30d (default: docs/intel.md)"),
    ] = None,
    db: DbOpt = None,
) -> None:
    ttls: dict[str, Any] = dict(intel.DEFAULT_TTL)
    for text in ttl or []:
        kind, span = intel.parse_ttl(text)
        ttls[kind] = span
    engine = connect(db)
    try:
        n = intel.expire(engine, default_ttl=ttls)
    finally:
        engine.dispose()
    out.print(t("intel.expired", n=n))


@app.command("sighting", help="Ghi nhận đã thấy / báo nhầm / record a sighting or false positive.")
def sighting_cmd(
    value: Annotated[str, typer.Argument(help="giá trị đã lưu / a stored value")],
    false_positive: Annotated[bool, typer.Option("--false-positive", help="báo nhầm")] = False,
    seen: Annotated[bool, typer.Option("--seen", help="đã thấy trên máy / seen")] = False,
    where: Annotated[str, typer.Option("--where", help="máy, đơn vị / host, unit")] = "",
    note: Annotated[str, typer.Option("--note")] = "",
    db: DbOpt = None,
) -> None:
    if false_positive == seen:
        raise InputError(t("intel.kind"))
    kind = "false_positive" if false_positive else "seen"
    engine = connect(db)
    try:
        intel.add_sighting(engine, value, kind, where=where, note=note)
    finally:
        engine.dispose()
    out.print(t("intel.sighting", kind=kind, value=escape(value)))
