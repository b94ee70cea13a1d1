"""`quet signatures`: what the scanner will use, and installing signature files by hand."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from quet import paths
from quet.errors import InputError
from quet.i18n import register as tr
from quet.i18n import t
from quet.scanner import signatures

tr("sigs.where", "Thư mục mẫu nhận diện: {path}", "Signature folder: {path}")
tr("sigs.none", "Chưa cài mẫu nào: dùng bộ mẫu khởi đầu (chỉ tệp thử nghiệm).",
   "Nothing installed: the starter set (test files only) is used.")  # fmt: skip
tr("sigs.added", "Đã cài {n} tệp vào {path}", "Installed {n} file(s) into {path}")
tr("sigs.errors", "{n} dòng lỗi (bỏ qua, phần còn lại vẫn dùng):", "{n} bad line(s) (skipped, the rest is used):")  # fmt: skip
tr("sigs.ok", "Không có dòng lỗi.", "No bad lines.")

app = typer.Typer(
    help="Mẫu nhận diện đã cài / installed signatures: list, add.",
    no_args_is_help=True,
)
out = Console(stderr=True)


@app.command("list", help="Cho biết máy quét sẽ dùng những mẫu nào / show what scans will use.")
def list_cmd(
    rules: Annotated[list[Path] | None, typer.Option("--rules", "-r")] = None,
    hashes: Annotated[list[Path] | None, typer.Option("--hashes")] = None,
    iocs: Annotated[list[Path] | None, typer.Option("--iocs")] = None,
) -> None:
    out.print(t("sigs.where", path=paths.signatures_dir()))
    sigs = signatures.load(rules, hashes, iocs)
    if sigs.starter:
        out.print(f"[yellow]{t('sigs.none')}[/]")
    table = Table(show_header=False, box=None)
    for key, value in sigs.summary().items():
        if key != "sources":
            table.add_row(f"[dim]{key}[/]", escape(str(value)))
    out.print(table)
    for src in sigs.sources:
        out.print(f"  • {escape(src)}")
    if sigs.issues.count:
        out.print(f"[yellow]{t('sigs.errors', n=sigs.issues.count)}[/]")
        for issue in sigs.issues.issues[:50]:
            out.print(f"  [dim]{escape(str(issue))}[/]")
        raise typer.Exit(1)
    out.print(t("sigs.ok"))


@app.command("add", help="Cài tệp/thư mục mẫu (YARA, ClamAV, Loki, CSV) / install signature files.")
def add_cmd(
    sources: Annotated[list[Path], typer.Argument(help="files or folders")],
) -> None:
    dest = paths.signatures_dir()
    n = 0
    for src in sources:
        if not src.exists():
            raise InputError("no such file or folder", str(src))
        target = dest / src.name
        if src.is_dir():
            shutil.copytree(src, target, dirs_exist_ok=True)
        else:
            shutil.copy2(src, target)
        n += 1
    signatures.load()  # compile now, so the next scan starts warm, and show problems early
    out.print(t("sigs.added", n=n, path=dest))
