"""`quet scan`: parse the options, load signatures, run the engine, print and write the report."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from quet.errors import InputError
from quet.i18n import register as tr
from quet.i18n import t
from quet.scanner import engine, signatures
from quet.scanner.archives import ArchiveLimits
from quet.scanner.report_html import render
from quet.scanner.result import Finding, ScanResult
from quet.scanner.walk import WalkOptions
from quet.units import parse_size

tr("scan.counting", "Đang đếm tệp", "Counting files")
tr("scan.scanning", "Đang quét", "Scanning")
tr("scan.n_files", "{n} tệp", "{n} files")
tr("scan.processes", "Đang quét tiến trình", "Scanning processes")
tr("scan.persistence", "Đang kiểm tra điểm khởi động", "Checking persistence places")
tr("scan.quarantine", "Đang cách ly", "Quarantining")
tr("scan.clean", "Không phát hiện mã độc", "No malware found")
tr("scan.found", "Phát hiện {n} tệp nhiễm / {m} phát hiện", "{n} infected file(s), {m} finding(s)")
tr("scan.incomplete", "Quét chưa hoàn tất", "Scan incomplete")
tr("scan.interrupted", "Đã dừng giữa chừng — báo cáo một phần", "Stopped part-way — partial report")
tr("scan.files", "Tệp đã quét", "Files scanned")
tr("scan.objects", "Đối tượng (kể cả trong tệp nén)", "Objects (incl. archive members)")
tr("scan.data", "Dung lượng", "Data")
tr("scan.cached", "Không đổi, bỏ qua đọc", "Unchanged, not read")
tr("scan.too_large", "Quá lớn, chưa quét", "Too large, not scanned")
tr("scan.errors", "Lỗi đọc/quét", "Read/scan errors")
tr("scan.problems", "Tệp nén vượt giới hạn", "Archive limits hit")
tr("scan.time", "Thời gian", "Time")
tr("scan.sigs", "Mẫu nhận diện", "Signatures")
tr("scan.starter", "bộ mẫu khởi đầu, chỉ nhận diện tệp thử nghiệm", "starter set: test files only")
tr("scan.sig_errors", "{n} dòng mẫu lỗi bị bỏ qua", "{n} bad signature lines skipped")
tr("scan.more", "… và {n} tệp khác (xem --json/--html)", "… and {n} more files (see --json/--html)")
tr("scan.col_path", "Tệp", "File")
tr("scan.col_detection", "Nhận diện", "Detection")
tr("scan.col_action", "Xử lý", "Action")
tr("scan.written", "Đã ghi báo cáo: {path}", "Report written: {path}")
tr("scan.nothing", "Hãy chỉ ra đường dẫn cần quét, hoặc --processes/--persistence/--system",
   "Give paths to scan, or --processes/--persistence/--system")  # fmt: skip

SHOW_FILES = 12


class RichProgress:
    """Draws the engine's progress: a spinner while counting, then one bar by bytes with ETA."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            DownloadColumn(binary_units=True),
            TextColumn("{task.fields[files]}"),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self.task: TaskID | None = None
        self.files_total = 0
        self.files_done = 0
        self.shown: set[str] = set()

    def __enter__(self) -> RichProgress:
        self.progress.start()
        self.task = self.progress.add_task(t("scan.counting"), total=None, files="")
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def counted(self, files: int, nbytes: int) -> None:
        if self.task is not None:
            self.progress.update(self.task, files=t("scan.n_files", n=f"{files:,}"))

    def start(self, files: int, nbytes: int) -> None:
        self.files_total = files
        if self.task is not None:
            self.progress.update(
                self.task, description=t("scan.scanning"), total=max(nbytes, 1), completed=0
            )
            self._files()

    def advance(self, files: int, nbytes: int) -> None:
        self.files_done += files
        if self.task is not None:
            self.progress.advance(self.task, nbytes)
            self._files()

    def _files(self) -> None:
        assert self.task is not None
        text = t("scan.n_files", n=f"{self.files_done:,}/{self.files_total:,}")
        self.progress.update(self.task, files=text)

    def found(self, finding: Finding) -> None:
        where = (finding.path or finding.detail).split("!", 1)[0]
        if where in self.shown:
            return  # one line per infected file while scanning; the summary lists the rest
        self.shown.add(where)
        self.progress.console.print(
            f"[red]●[/] {escape(where)}  [bold]{escape(finding.name)}[/]",
            highlight=False,
        )

    def phase(self, name: str) -> None:
        if self.task is not None:
            self.progress.update(self.task, description=t(f"scan.{name}"))


def register(app: typer.Typer) -> None:
    @app.command(
        "scan",
        help=(
            "Quét tệp, thư mục, tệp nén, tiến trình và điểm khởi động tìm mã độc.\n\n"
            "Scan files, folders, archives, processes and persistence places for malware.\n\n"
            "Mã thoát / exit codes: 0 sạch / clean, 1 phát hiện / found, 2 lỗi / error.\n\n"
            "Ví dụ / examples:\n\n"
            "  quet scan ~/Downloads\n\n"
            "  quet scan --system --quarantine /\n\n"
            "  quet scan --rules signature-base/yara --iocs signature-base/iocs --json r.json /srv"
        ),
    )
    def scan_cmd(
        paths: Annotated[
            list[Path] | None, typer.Argument(help="Tệp/thư mục / files or folders")
        ] = None,
        rules: Annotated[
            list[Path] | None,
            typer.Option("--rules", "-r", help="YARA rule file or folder (repeatable)"),
        ] = None,
        hashes: Annotated[
            list[Path] | None,
            typer.Option(
                "--hashes", help="Hash list: ClamAV .hdb/.hsb/.fp/.sfp, Loki hash IOCs, CSV"
            ),
        ] = None,
        iocs: Annotated[
            list[Path] | None,
            typer.Option("--iocs", help="Loki IOC files (hash, filename, C2) or CSV"),
        ] = None,
        no_warninglists: Annotated[
            bool,
            typer.Option(
                "--no-warninglists", help="Keep C2 addresses that warninglists call benign"
            ),
        ] = False,
        no_installed: Annotated[
            bool, typer.Option("--no-installed", help="Use only the signatures given here")
        ] = False,
        include: Annotated[
            list[str] | None,
            typer.Option("--include", "-i", help="Only paths/names matching this glob"),
        ] = None,
        exclude: Annotated[
            list[str] | None,
            typer.Option("--exclude", "-x", help="Skip paths/names matching this glob"),
        ] = None,
        follow_symlinks: Annotated[
            bool, typer.Option("--follow-symlinks", help="Follow symbolic links")
        ] = False,
        cross_fs: Annotated[
            bool,
            typer.Option("--cross-filesystems", help="Descend into other mounted file systems"),
        ] = False,
        pseudo_fs: Annotated[
            bool,
            typer.Option("--pseudo-filesystems", help="Also walk /proc, /sys, /dev, /run"),
        ] = False,
        max_size: Annotated[
            str, typer.Option("--max-size", help="Larger files are listed, not scanned")
        ] = "100M",
        jobs: Annotated[
            int, typer.Option("--jobs", "-j", help="Worker processes (0 = all cores)")
        ] = 0,
        no_cache: Annotated[
            bool, typer.Option("--no-cache", help="Read every file even if unchanged")
        ] = False,
        no_archives: Annotated[
            bool, typer.Option("--no-archives", help="Do not look inside archives")
        ] = False,
        max_depth: Annotated[int, typer.Option("--max-depth", help="Archive nesting limit")] = 17,
        max_files: Annotated[
            int, typer.Option("--max-files", help="Files per archive limit")
        ] = 10_000,
        max_scansize: Annotated[
            str, typer.Option("--max-scansize", help="Bytes extracted per archive")
        ] = "400M",
        quarantine: Annotated[
            bool,
            typer.Option("--quarantine", help="Move infected files into the vault (restorable)"),
        ] = False,
        processes: Annotated[
            bool, typer.Option("--processes", help="Scan running processes and connections")
        ] = False,
        persistence: Annotated[
            bool,
            typer.Option("--persistence", help="Check autostart places (cron, systemd, Run keys…)"),
        ] = False,
        system: Annotated[
            bool, typer.Option("--system", help="= --processes --persistence")
        ] = False,
        json_out: Annotated[
            Path | None, typer.Option("--json", help="Write the JSON report here ('-' = stdout)")
        ] = None,
        html_out: Annotated[
            Path | None, typer.Option("--html", help="Write a one-page HTML report here")
        ] = None,
        quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar")] = False,
    ) -> None:
        targets = [str(p) for p in paths or []]
        if not targets and not (processes or persistence or system):
            raise InputError(t("scan.nothing"))
        console = Console(stderr=True)
        engine.warm_up()
        sigs = signatures.load(
            rules, hashes, iocs, use_installed=not no_installed, warninglists=not no_warninglists
        )
        limits = ArchiveLimits(
            max_depth=max_depth,
            max_files=max_files,
            max_total_bytes=parse_size(max_scansize),
            max_member_bytes=parse_size(max_size),
        )
        options = engine.ScanOptions(
            paths=targets,
            walk=WalkOptions(
                include=include or [],
                exclude=exclude or [],
                follow_symlinks=follow_symlinks,
                one_file_system=not cross_fs,
                skip_pseudo=not pseudo_fs,
            ),
            max_size=parse_size(max_size),
            jobs=jobs,
            use_cache=not no_cache,
            scan_archives=not no_archives,
            limits=limits,
            quarantine=quarantine,
            processes=processes or system,
            persistence=persistence or system,
        )
        show = not quiet and console.is_terminal and os.environ.get("CI") != "true"
        if show:
            with RichProgress(console) as bar:
                result = engine.scan(options, sigs, bar)
        else:
            result = engine.scan(options, sigs)
        if json_out is not None:
            text = json.dumps(result.to_dict(), ensure_ascii=False, indent=2)
            if str(json_out) == "-":
                typer.echo(text)
            else:
                _write(json_out, text)
        if html_out is not None:
            _write(html_out, render(result))
        summary(console, result, sigs)
        for out in (json_out, html_out):
            if out is not None and str(out) != "-":
                console.print(t("scan.written", path=out), style="dim")
        raise typer.Exit(result.exit_code())


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def summary(console: Console, result: ScanResult, sigs: signatures.SignatureSet) -> None:
    """One screen: the verdict, the counts, the first findings."""
    if result.findings:
        title = t("scan.found", n=result.infected_files, m=len(result.findings))
        style = "bold white on red"
    elif result.interrupted or result.errors_count:
        title, style = t("scan.incomplete"), "bold black on yellow"
    else:
        title, style = t("scan.clean"), "bold white on green"
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim")
    grid.add_column()
    grid.add_row(t("scan.files"), f"{result.files_scanned:,}")
    grid.add_row(t("scan.objects"), f"{result.objects_scanned:,}")
    grid.add_row(t("scan.data"), f"{result.bytes_scanned / 2**20:,.1f} MB")
    if result.files_cached:
        grid.add_row(t("scan.cached"), f"{result.files_cached:,}")
    if result.too_large:
        grid.add_row(t("scan.too_large"), f"[yellow]{len(result.too_large):,}[/]")
    if result.errors_count:
        grid.add_row(t("scan.errors"), f"[yellow]{result.errors_count:,}[/]")
    if result.problems:
        grid.add_row(t("scan.problems"), f"[yellow]{len(result.problems):,}[/]")
    sig_text = (
        f"{sigs.rules.count:,} YARA · {len(sigs.hashes):,} hash · "
        f"{len(sigs.filenames):,} filename · {len(sigs.c2_ips) + len(sigs.c2_domains):,} C2"
    )
    if sigs.starter:
        sig_text += f" — {t('scan.starter')}"
    grid.add_row(t("scan.sigs"), sig_text)
    if sigs.issues.count:
        grid.add_row("", f"[yellow]{t('scan.sig_errors', n=sigs.issues.count)}[/]")
        for issue in sigs.issues.issues[:3]:
            grid.add_row("", f"[dim]{issue}[/]")
    grid.add_row(t("scan.time"), f"{result.elapsed_seconds:.1f} s")
    if result.interrupted:
        grid.add_row("", f"[yellow]{t('scan.interrupted')}[/]")
    console.print(Panel(grid, title=f"[{style}] {title} [/]", title_align="left", expand=False))
    if result.findings:
        # One row per infected file (archive members and several detections folded together).
        by_file: dict[str, list[Finding]] = {}
        for f in result.findings:
            by_file.setdefault(f.path.split("!", 1)[0] or f.detail, []).append(f)
        table = Table(show_header=True, header_style="bold", expand=False)
        table.add_column("#", justify="right", style="dim")
        table.add_column(t("scan.col_path"), overflow="fold")
        table.add_column(t("scan.col_detection"), style="bold red", overflow="fold")
        table.add_column(t("scan.col_action"))
        for n, (path, found) in enumerate(list(by_file.items())[:SHOW_FILES], 1):
            names = sorted({f.name for f in found})
            inner = sorted({f.path.split("!", 1)[1] for f in found if "!" in f.path})
            where = path + (f"\n[dim]  ⤷ {', '.join(inner[:3])}[/]" if inner else "")
            actions = sorted({f.action for f in found})
            table.add_row(str(n), where, "\n".join(names[:4]), ", ".join(actions))
        console.print(table)
        if len(by_file) > SHOW_FILES:
            console.print(t("scan.more", n=len(by_file) - SHOW_FILES), style="dim")
