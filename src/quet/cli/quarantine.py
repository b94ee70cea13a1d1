"""`quet quarantine`: list, restore, delete and add entries of the quarantine vault."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from quet.errors import QuarantineError
from quet.i18n import register, t
from quet.scanner.quarantine import Vault
from quet.units import human_size

register("quarantine.error", "Lỗi: {msg}", "Error: {msg}")
register("quarantine.empty", "Kho cách ly trống.", "The quarantine vault is empty.")
register("quarantine.col.id", "Mã", "ID")
register("quarantine.col.date", "Ngày cách ly (UTC)", "Quarantined (UTC)")
register("quarantine.col.detection", "Phát hiện", "Detection")
register("quarantine.col.path", "Đường dẫn gốc", "Original path")
register("quarantine.col.size", "Kích thước", "Size")
register("quarantine.title", "Kho cách ly: {n} mục", "Quarantine vault: {n} entries")
register("quarantine.restored", "Đã khôi phục {id} về {path}", "Restored {id} to {path}")
register(
    "quarantine.confirm_delete",
    "Xoá vĩnh viễn {id} ({path})? Không thể hoàn tác.",
    "Permanently delete {id} ({path})? This cannot be undone.",
)
register("quarantine.aborted", "Đã huỷ, không xoá gì.", "Cancelled, nothing deleted.")
register("quarantine.deleted", "Đã xoá vĩnh viễn {id}", "Permanently deleted {id}")
register(
    "quarantine.added",
    "Đã cách ly {path} thành {id}",
    "Quarantined {path} as {id}",
)

app = typer.Typer(
    name="quarantine",
    help="Kho cách ly tệp nghi nhiễm / Quarantine vault of suspect files.",
    no_args_is_help=True,
    add_completion=False,
)

_out = Console(highlight=False)
_err = Console(stderr=True, highlight=False)


def _fail(exc: Exception) -> typer.Exit:
    _err.print(f"[red]{escape(t('quarantine.error', msg=exc))}[/red]", soft_wrap=True)
    return typer.Exit(2)


@app.command("list", help="Liệt kê các mục đã cách ly / List quarantined files.")
def list_cmd(
    as_json: Annotated[
        bool, typer.Option("--json", help="In mảng JSON / Print a JSON array.")
    ] = False,
) -> None:
    try:
        entries = Vault().list()
    except QuarantineError as exc:
        raise _fail(exc) from exc
    if as_json:
        typer.echo(json.dumps([e.to_dict() for e in entries], ensure_ascii=False, indent=2))
        return
    if not entries:
        _out.print(t("quarantine.empty"))
        return
    table = Table(title=t("quarantine.title", n=len(entries)))
    table.add_column(t("quarantine.col.id"), no_wrap=True)
    table.add_column(t("quarantine.col.date"), no_wrap=True)
    table.add_column(t("quarantine.col.detection"))
    table.add_column(t("quarantine.col.path"), overflow="fold")
    table.add_column(t("quarantine.col.size"), justify="right", no_wrap=True)
    for entry in entries:
        table.add_row(
            entry.id,
            entry.quarantined[:19].replace("T", " "),
            escape(entry.detection),
            escape(entry.original_path),
            human_size(entry.size),
        )
    _out.print(table)


@app.command(help="Khôi phục một mục về chỗ cũ (hoặc --to) / Restore an entry.")
def restore(
    entry_id: Annotated[str, typer.Argument(metavar="ID", help="Mã mục / Entry ID.")],
    to: Annotated[
        Path | None,
        typer.Option("--to", help="Khôi phục vào đường dẫn này / Restore to this path."),
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Ghi đè tệp đang có / Overwrite an existing file."),
    ] = False,
) -> None:
    try:
        path = Vault().restore(entry_id, to=to, force=force)
    except QuarantineError as exc:
        raise _fail(exc) from exc
    _out.print(escape(t("quarantine.restored", id=entry_id, path=path)), soft_wrap=True)


@app.command(help="Xoá vĩnh viễn một mục / Delete an entry permanently.")
def delete(
    entry_id: Annotated[str, typer.Argument(metavar="ID", help="Mã mục / Entry ID.")],
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Không hỏi lại / Do not ask for confirmation.")
    ] = False,
) -> None:
    vault = Vault()
    try:
        entry = vault.get(entry_id)
        if not yes and not typer.confirm(
            t("quarantine.confirm_delete", id=entry.id, path=entry.original_path)
        ):
            _out.print(t("quarantine.aborted"))
            raise typer.Exit(1)
        vault.delete(entry_id)
    except QuarantineError as exc:
        raise _fail(exc) from exc
    _out.print(escape(t("quarantine.deleted", id=entry_id)))


@app.command(help="Cách ly một tệp bằng tay / Quarantine a file by hand.")
def add(
    path: Annotated[Path, typer.Argument(help="Tệp cần cách ly / File to quarantine.")],
    detection: Annotated[
        str,
        typer.Option("--detection", "-d", help="Tên phát hiện / Detection name."),
    ],
) -> None:
    try:
        entry = Vault().quarantine(path, detection)
    except QuarantineError as exc:
        raise _fail(exc) from exc
    _out.print(escape(t("quarantine.added", path=path, id=entry.id)), soft_wrap=True)
