"""`quet net`: which internal hosts talked to listed IPs, domains and URLs — in logs already
written (`scan`) or as they are written (`watch`: followed files, a syslog listener)."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import IO, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from quet.errors import InputError, QuetError
from quet.i18n import register as tr
from quet.i18n import t
from quet.indicators.model import Indicator, IssueLog, guess
from quet.indicators.sets import IndicatorSet
from quet.indicators.warninglists import WarninglistSet
from quet.netwatch.alerts import Aggregator, Alert, Poster, write_jsonl
from quet.netwatch.matcher import DEFAULT_INTERNAL, InternalNets, Matcher
from quet.netwatch.records import NetEvent

tr("net.title", "Máy nội bộ kết nối tới chỉ báo độc hại", "Internal hosts that touched listed indicators")  # fmt: skip
tr("net.col.client", "Máy nội bộ", "Client")
tr("net.col.indicator", "Chỉ báo", "Indicator")
tr("net.col.family", "Họ mã độc", "Family")
tr("net.col.count", "Số lần", "Count")
tr("net.col.first", "Lần đầu", "First seen")
tr("net.col.last", "Lần cuối", "Last seen")
tr("net.col.where", "Ở đâu", "Where")
tr("net.none", "Không có cảnh báo: không máy nào chạm tới chỉ báo đã biết.", "No alerts: no host touched a listed indicator.")  # fmt: skip
tr("net.alerts", "{n} cảnh báo (máy × chỉ báo).", "{n} alert(s) (host × indicator).")
tr("net.summary", "Đã đọc {events} sự kiện trong {secs:.1f} giây ({rate} sự kiện/giây).", "Read {events} events in {secs:.1f} s ({rate} events/s).")  # fmt: skip
tr("net.summary_batch", "Đã quét theo lô (DuckDB) trong {secs:.1f} giây.", "Scanned in batch (DuckDB) in {secs:.1f} s.")  # fmt: skip
tr("net.per_source", "  {source}: {n} sự kiện", "  {source}: {n} events")
tr("net.bad", "{n} dòng không đọc được (vài ví dụ):", "{n} line(s) could not be read (first few):")  # fmt: skip
tr("net.noind", "Không có chỉ báo nào để so khớp: nhập nguồn bằng `quet intel import` hoặc dùng --iocs.", "No indicators to match: import feeds with `quet intel import` or pass --iocs.")  # fmt: skip
tr("net.indicators", "{n} chỉ báo đã nạp.", "{n} indicators loaded.")
tr("net.reading", "Đang đọc {name}", "Reading {name}")
tr("net.batch_missing", "Chưa có chế độ lô (quet.netwatch.batch): đọc tuần tự.", "Batch mode (quet.netwatch.batch) not available: streaming.")  # fmt: skip
tr("net.watching", "Đang theo dõi {n} tệp{syslog}. Ctrl-C để dừng.", "Watching {n} file(s){syslog}. Ctrl-C to stop.")  # fmt: skip
tr("net.nothing_to_watch", "Không có gì để theo dõi: cho tệp hoặc --syslog-udp/--syslog-tcp.", "Nothing to watch: give files or --syslog-udp/--syslog-tcp.")  # fmt: skip
tr("net.post_failed", "Không gửi được cảnh báo tới {url}: {error} (sẽ thử lại).", "Could not post alerts to {url}: {error} (will retry).")  # fmt: skip
tr("net.stopped", "Đã dừng. {events} sự kiện, {alerts} cảnh báo.", "Stopped. {events} events, {alerts} alert(s).")  # fmt: skip

app = typer.Typer(
    help=(
        "Giám sát mạng: máy nội bộ nào kết nối tới IP, tên miền, URL độc hại / network watch.\n\n"
        "Ví dụ / examples:  quet net scan /var/log/zeek/    "
        "quet net scan dns.log --iocs iocs.txt --jsonl alerts.jsonl    "
        "quet net watch /var/log/zeek/current/dns.log --syslog-udp 5514"
    ),
    no_args_is_help=True,
)
out = Console()
err = Console(stderr=True)

LARGE = 64 << 20  # inputs above this go the batch way and get a progress bar

DbOpt = Annotated[
    str | None,
    typer.Option("--db", envvar="QUET_INTEL_DB", help="URL kho chỉ báo / intel store URL"),
]
IocsOpt = Annotated[
    list[Path] | None,
    typer.Option("--iocs", help="tệp chỉ báo thêm (mọi định dạng) / extra IOC files, any format"),
]
NoIntelOpt = Annotated[
    bool, typer.Option("--no-intel", help="không dùng kho chỉ báo / do not use the intel store")
]
InternalOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--internal",
        help="dải mạng nội bộ / internal networks (default: RFC 1918, CGNAT, ULA, loopback)",
    ),
]
NoWlOpt = Annotated[
    bool,
    typer.Option("--no-warninglists", help="không lọc giá trị vô hại / no warninglist filtering"),
]
FormatOpt = Annotated[
    str | None,
    typer.Option("--format", help="nguồn log (mặc định: tự nhận) / log source (default: sniffed)"),
]


def load_indicators(db: str | None, no_intel: bool, iocs: list[Path], issues: IssueLog) -> list[Indicator]:  # fmt: skip
    """Indicators from the intel store and/or IOC files (in any format the registry reads)."""
    from quet.indicators.formats import detect, read_path

    found: list[Indicator] = []
    for path in iocs:
        if path.is_file() and detect(path) is None:
            found.extend(_plain_list(path, issues))
        else:
            found.extend(read_path(path, issues))
    if not no_intel:
        from quet.store.db import connect
        from quet.store.intel import iter_indicators

        engine = connect(db)
        try:
            found.extend(iter_indicators(engine))
        finally:
            engine.dispose()
    if not found:
        raise InputError(t("net.noind"))
    return found


def _plain_list(path: Path, issues: IssueLog) -> Iterator[Indicator]:
    """A file no format claims, read as one value a line (IP, CIDR, domain, URL or hash)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=str(path)) from exc
    for n, line in enumerate(text.splitlines(), start=1):
        value = line.split("#", 1)[0].strip()
        if not value:
            continue
        try:
            kind, norm = guess(value)
        except InputError as exc:
            issues.add(str(path), n, str(exc))
            continue
        yield Indicator(kind, norm, source=path.name, line=n)


def _matcher(
    indicators: list[Indicator], no_wl: bool, internal: list[str] | None, issues: IssueLog
) -> tuple[Matcher, WarninglistSet | None]:
    iset = IndicatorSet.build(indicators, issues)
    wl = None if no_wl else WarninglistSet.default()
    return Matcher(iset, wl, InternalNets(internal or DEFAULT_INTERNAL)), wl


def _fail(exc: QuetError) -> typer.Exit:
    err.print(f"[bold red]Lỗi / error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
    return typer.Exit(2)


def _when(ts: datetime | None) -> str:
    return ts.strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def alerts_table(alerts: list[Alert]) -> Table:
    table = Table(title=t("net.title"))
    for col in ("client", "indicator", "family", "count", "first", "last", "where"):
        table.add_column(t(f"net.col.{col}"), justify="right" if col == "count" else "left")
    for a in alerts:
        where = ", ".join(f"{Path(f).name}:{n}" for f, n, _v in a.examples[:2])
        if a.count > 2:
            where += " …"
        label = a.name or a.source_feed
        table.add_row(
            escape(a.client),
            escape(f"{a.indicator} ({a.indicator_type})"),
            escape(a.family or label),
            f"{a.count:,}",
            _when(a.first_seen),
            _when(a.last_seen),
            escape(where),
        )
    return table


def _open_out(path: Path) -> IO[str]:
    if str(path) == "-":
        return sys.stdout
    try:
        return path.open("w", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror}", path=str(path)) from exc


def _lines(path: Path) -> int:
    total = 0
    with path.open("rb") as fh:
        while block := fh.read(1 << 22):
            total += block.count(b"\n")
    return total


def _size(paths: list[Path]) -> int:
    total = 0
    for p in paths:
        files = [p] if p.is_file() else [c for c in p.rglob("*") if c.is_file()]
        total += sum(f.stat().st_size for f in files)
    return total


def _events(
    paths: list[Path], fmt: str | None, issues: IssueLog, counts: Counter[str], progress: bool
) -> Iterator[NetEvent]:
    from quet.netwatch.sources import read_path

    for path in paths:
        bar: Progress | None = None
        if progress and path.is_file() and path.suffix != ".gz" and path.stat().st_size > LARGE:
            bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TimeElapsedColumn(),
                console=err,
                transient=True,
            )
        with bar if bar is not None else contextlib.nullcontext():
            task = (
                bar.add_task(t("net.reading", name=path.name), total=_lines(path)) if bar else None
            )
            for n, ev in enumerate(read_path(path, issues, fmt), start=1):
                counts[ev.kind] += 1
                if bar is not None and task is not None and not n & 0x3FFF:
                    bar.update(task, completed=ev.line)
                yield ev


def _scan_batch(paths: list[Path], indicators: list[Indicator], wl: WarninglistSet | None, internal: InternalNets, issues: IssueLog) -> list[Alert] | None:  # fmt: skip
    try:
        batch = importlib.import_module("quet.netwatch.batch")
    except ImportError:
        err.print(f"[yellow]{t('net.batch_missing')}[/]")
        return None
    matcher = batch.BatchMatcher(indicators, wl, internal=internal, issues=issues)
    try:
        alerts: list[Alert] = matcher.scan(paths, issues)
    finally:
        matcher.close()
    return alerts


def _summary(counts: Counter[str], issues: IssueLog, secs: float, alerts: int) -> dict[str, Any]:
    total = sum(counts.values())
    return {
        "events": total,
        "events_by_source": dict(sorted(counts.items())),
        "bad_lines": issues.count,
        "issues": [str(i) for i in issues.issues[:100]],
        "seconds": round(secs, 3),
        "events_per_second": int(total / secs) if secs > 0 else 0,
        "alerts": alerts,
    }


def _print_summary(summary: dict[str, Any], issues: IssueLog) -> None:
    if summary.get("mode") == "batch":
        err.print(t("net.summary_batch", secs=summary["seconds"]))
    else:
        _print_counts(summary)
    if issues.count:
        err.print(f"[yellow]{t('net.bad', n=issues.count)}[/]")
        for issue in issues.issues[:5]:
            err.print(f"  [yellow]{escape(str(issue))}[/]", highlight=False)


def _print_counts(summary: dict[str, Any]) -> None:
    rate = f"{summary['events_per_second']:,}"
    err.print(t("net.summary", events=f"{summary['events']:,}", secs=summary["seconds"], rate=rate))
    for source, n in summary["events_by_source"].items():
        err.print(t("net.per_source", source=source, n=f"{n:,}"), highlight=False)


@app.command(
    help="Quét log đã có: máy nào chạm tới chỉ báo / scan logs for hosts touching indicators. "
    "Mã thoát / exit: 0 sạch / clean, 1 có cảnh báo / alerts, 2 lỗi / error."
)
def scan(
    files: Annotated[list[Path], typer.Argument(help="tệp log hoặc thư mục / log files, folders")],
    iocs: IocsOpt = None,
    db: DbOpt = None,
    no_intel: NoIntelOpt = False,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="báo cáo JSON / JSON report ('-' stdout)")
    ] = None,
    jsonl: Annotated[
        Path | None, typer.Option("--jsonl", help="cảnh báo JSONL / alerts as JSON lines")
    ] = None,
    internal: InternalOpt = None,
    batch: Annotated[
        bool | None,
        typer.Option("--batch/--stream", help="DuckDB theo lô / batch (default for large input)"),
    ] = None,
    fmt: FormatOpt = None,
    no_wl: NoWlOpt = False,
) -> None:
    issues = IssueLog()
    try:
        missing = [p for p in files if not p.exists()]
        if missing:
            raise InputError("no such file or folder", path=str(missing[0]))
        indicators = load_indicators(db, no_intel, list(iocs or []), issues)
        matcher, wl = _matcher(indicators, no_wl, internal, issues)
        ind_issues = issues.count
        started = time.monotonic()
        counts: Counter[str] = Counter()
        alerts: list[Alert] | None = None
        use_batch = batch if batch is not None else _size(files) > LARGE
        mode = "stream"
        if use_batch and fmt is None:
            alerts = _scan_batch(files, indicators, wl, matcher.internal, issues)
            mode = "batch" if alerts is not None else mode
        if alerts is None:
            del indicators
            agg = Aggregator()
            events = _events(files, fmt, issues, counts, progress=True)
            for hit in _hits(matcher, events):
                agg.add(hit)
            alerts = agg.sorted()
        secs = time.monotonic() - started
    except QuetError as exc:
        raise _fail(exc) from exc
    summary = _summary(counts, issues, secs, len(alerts))
    summary["indicator_issues"] = ind_issues
    summary["mode"] = mode
    if mode == "batch":
        summary["events"] = summary["events_per_second"] = None  # DuckDB does not count them
    if alerts:
        out.print(alerts_table(alerts))
        out.print(f"[bold red]{t('net.alerts', n=len(alerts))}[/]")
    else:
        out.print(f"[green]{t('net.none')}[/]")
    _print_summary(summary, issues)
    try:
        if jsonl is not None:
            fh = _open_out(jsonl)
            with fh if fh is not sys.stdout else contextlib.nullcontext():
                write_jsonl(alerts, fh)
        if json_file is not None:
            fh = _open_out(json_file)
            with fh if fh is not sys.stdout else contextlib.nullcontext():
                report = {"summary": summary, "alerts": [a.to_dict() for a in alerts]}
                json.dump(report, fh, ensure_ascii=False, indent=2)
                fh.write("\n")
    except QuetError as exc:
        raise _fail(exc) from exc
    raise typer.Exit(1 if alerts else 0)


def _hits(matcher: Matcher, events: Iterator[NetEvent]) -> Iterator[Any]:
    from itertools import islice

    while chunk := list(islice(events, 8192)):
        yield from matcher.match_chunk(chunk)


@app.command(
    help="Theo dõi liên tục tệp log (qua xoay vòng) và syslog / follow logs and syslog live. "
    "Mã thoát / exit: 0 không cảnh báo / none, 1 có cảnh báo / alerts, 2 lỗi / error."
)
def watch(
    files: Annotated[
        list[Path] | None, typer.Argument(help="tệp cần theo dõi / files to follow")
    ] = None,
    syslog_udp: Annotated[
        int | None, typer.Option("--syslog-udp", help="cổng UDP syslog / syslog UDP port")
    ] = None,
    syslog_tcp: Annotated[
        int | None, typer.Option("--syslog-tcp", help="cổng TCP syslog / syslog TCP port")
    ] = None,
    syslog_host: Annotated[
        str, typer.Option("--syslog-host", help="địa chỉ lắng nghe / listen address")
    ] = "127.0.0.1",
    syslog_format: Annotated[
        str | None,
        typer.Option("--syslog-format", help="nguồn log của syslog / source for syslog lines"),
    ] = None,
    jsonl: Annotated[
        Path | None, typer.Option("--jsonl", help="ghi cảnh báo JSONL / append alerts as JSONL")
    ] = None,
    post: Annotated[
        str | None, typer.Option("--post", help="URL máy chủ nhận cảnh báo / server alert URL")
    ] = None,
    token: Annotated[
        str | None, typer.Option("--token", envvar="QUET_API_TOKEN", help="API token")
    ] = None,
    iocs: IocsOpt = None,
    db: DbOpt = None,
    no_intel: NoIntelOpt = False,
    internal: InternalOpt = None,
    fmt: FormatOpt = None,
    no_wl: NoWlOpt = False,
    from_start: Annotated[
        bool, typer.Option("--from-start", help="đọc từ đầu tệp / read files from the start")
    ] = False,
    interval: Annotated[float, typer.Option("--interval", help="giây / poll seconds")] = 0.5,
    update_every: Annotated[
        float, typer.Option("--update-every", help="giây giữa các cập nhật / update seconds")
    ] = 60.0,
    duration: Annotated[
        float | None, typer.Option("--duration", help="dừng sau N giây / stop after N seconds")
    ] = None,
) -> None:
    from quet.netwatch.follow import SyslogListener, Watcher

    paths = list(files or [])
    issues = IssueLog()
    listener: SyslogListener | None = None
    sink: IO[str] | None = None
    try:
        if not paths and syslog_udp is None and syslog_tcp is None:
            raise InputError(t("net.nothing_to_watch"))
        indicators = load_indicators(db, no_intel, list(iocs or []), issues)
        matcher, _wl = _matcher(indicators, no_wl, internal, issues)
        del indicators
        if syslog_udp is not None or syslog_tcp is not None:
            listener = SyslogListener(syslog_host, syslog_udp, syslog_tcp)
        if jsonl is not None:
            sink = jsonl.open("a", encoding="utf-8")
        poster = Poster(post, token or "") if post else None
        failed = [""]

        def emit(batch: list[Alert], new: bool) -> None:
            for a in batch if new else []:
                out.print(_alert_line(a), highlight=False)
            if sink is not None:
                write_jsonl(batch, sink)
            if poster is not None and not poster.post(batch) and poster.last_error != failed[0]:
                failed[0] = poster.last_error
                err.print(f"[yellow]{t('net.post_failed', url=post, error=poster.last_error)}[/]")

        watcher = Watcher(
            paths,
            matcher,
            source=fmt,
            syslog=listener,
            syslog_format=syslog_format,
            from_start=from_start,
            issues=issues,
            on_alert=lambda a, _new: emit([a], True),
        )
    except QuetError as exc:
        if listener is not None:
            listener.close()
        raise _fail(exc) from exc
    stop = threading.Event()
    if listener is not None:
        listener.start()
    extra = ""
    if listener is not None:
        extra = "".join(
            f", syslog {kind} {addr[0]}:{addr[1]}"
            for kind, addr in (("udp", listener.udp_address), ("tcp", listener.tcp_address))
            if addr is not None
        )
    err.print(t("net.watching", n=len(paths), syslog=extra))
    timer = threading.Timer(duration, stop.set) if duration is not None else None
    old = _on_term(stop)
    try:
        if timer is not None:
            timer.start()
        watcher.run(stop, interval, update_every, on_update=lambda b: emit(b, False))
    except KeyboardInterrupt:
        stop.set()
    finally:
        if timer is not None:
            timer.cancel()
        if old is not None:
            signal.signal(signal.SIGTERM, old)
        if listener is not None:
            listener.close()
        watcher.close()
        if sink is not None:
            sink.close()
    n = len(watcher.aggregator.alerts)
    err.print(t("net.stopped", events=f"{watcher.stats.total():,}", alerts=n))
    secs = time.monotonic() - watcher.stats.started
    _print_summary(_summary(Counter(watcher.stats.events), issues, secs, n), issues)
    raise typer.Exit(1 if n else 0)


def _alert_line(a: Alert) -> str:
    f, n, v = a.examples[0] if a.examples else ("", 0, "")
    family = f" [{a.family}]" if a.family else ""
    return (
        f"[bold red]![/] {_when(a.last_seen)} {escape(a.client)} → {escape(a.indicator)}"
        f"{escape(family)} ({escape(','.join(a.fields))}: {escape(v)}) {escape(f)}:{n}"
    )


def _on_term(stop: threading.Event) -> Any:
    """SIGTERM (a service manager stopping us) ends the loop like Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread() or os.name == "nt":
        return None

    def handler(_sig: int, _frame: FrameType | None) -> None:
        stop.set()

    return signal.signal(signal.SIGTERM, handler)
