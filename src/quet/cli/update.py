"""`quet update`: fetch and install the newest signed content bundle (client side)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from quet.bundle import install, update
from quet.bundle.build import BundleError
from quet.i18n import register as tr
from quet.i18n import t

tr("update.error", "Lỗi cập nhật: {msg}", "Update error: {msg}")
tr("update.root", "Đã tin cậy root v{version} từ {path}.", "Now trusting root v{version} from {path}.")  # fmt: skip
tr("update.installed", "Đã cập nhật nội dung lên phiên bản {version} (trước: {previous}) từ {source}.",
   "Content updated to version {version} (was: {previous}) from {source}.")  # fmt: skip
tr("update.same", "Đã là bản mới nhất: phiên bản {version}.", "Already up to date: version {version}.")  # fmt: skip
tr("update.rolledback", "Đã quay lại phiên bản {version}.", "Rolled back to version {version}.")
tr("update.none", "Chưa cài gói nội dung nào.", "No content bundle installed.")
tr("update.status", "Phiên bản {version}, tạo {age} ngày trước, nguồn {source}; giữ: {kept}.",
   "Version {version}, built {age} day(s) ago, from {source}; kept: {kept}.")  # fmt: skip
tr("update.last", "Lần kiểm tra cuối: {time} — {result} {message}", "Last check: {time} — {result} {message}")  # fmt: skip

_out = Console(highlight=False)
_err = Console(stderr=True, highlight=False)

HELP = (
    "Cập nhật mẫu nhận diện từ kho ký số (TUF), qua mạng hoặc USB.\n\n"
    "Update signatures from the signed (TUF) repository, over HTTP or from a USB stick.\n\n"
    "Ví dụ / examples:\n\n"
    "  quet update --init-root root.json     (một lần / once)\n\n"
    "  quet update --url https://updates.example.vn/quet\n\n"
    "  quet update --from /media/usb/quet-repo\n\n"
    "  quet update --status"
)


def _fail(exc: Exception) -> typer.Exit:
    _err.print(f"[red]{escape(t('update.error', msg=exc))}[/red]", soft_wrap=True)
    return typer.Exit(2)


def _status(as_json: bool) -> None:
    info = update.status()
    if as_json:
        typer.echo(json.dumps(info, ensure_ascii=False, indent=2))
        return
    if info["current"] is None:
        _out.print(t("update.none"))
    else:
        _out.print(
            escape(
                t(
                    "update.status",
                    version=info["current"],
                    age=info["age_days"],
                    source=info["source"],
                    kept=", ".join(map(str, info["kept"])),
                )
            )
        )
    last = info["last_check"]
    if isinstance(last, dict):
        _out.print(
            escape(
                t(
                    "update.last",
                    time=last.get("time"),
                    result=last.get("result"),
                    message=last.get("message") or "",
                )
            ),
            soft_wrap=True,
        )


def update_cmd(
    url: Annotated[str | None, typer.Option("--url", help="Địa chỉ kho / repository URL.")] = None,
    from_dir: Annotated[
        Path | None,
        typer.Option("--from", help="Thư mục/USB chứa bản sao kho / folder or USB copy."),
    ] = None,
    init_root: Annotated[
        Path | None,
        typer.Option("--init-root", help="Tin cậy root.json này (một lần) / trust this root."),
    ] = None,
    status: Annotated[
        bool, typer.Option("--status", help="Xem phiên bản đang dùng / show the status.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Trạng thái dạng JSON.")] = False,
    rollback: Annotated[
        bool, typer.Option("--rollback", help="Quay về bản trước / back to the last good one.")
    ] = False,
    allow_downgrade: Annotated[
        bool, typer.Option("--allow-downgrade", help="Cho phép cài bản cũ hơn.")
    ] = False,
) -> None:
    try:
        if status:
            _status(as_json)
            return
        if rollback:
            version = install.rollback()
            _out.print(t("update.rolledback", version=version))
            return
        if init_root is not None:
            root_version = update.init_root(init_root)
            _out.print(escape(t("update.root", version=root_version, path=init_root)))
            if url is None and from_dir is None:
                return
        outcome = update.update(url, from_dir, allow_downgrade=allow_downgrade)
    except BundleError as exc:
        raise _fail(exc) from exc
    if outcome.changed:
        _out.print(
            escape(
                t(
                    "update.installed",
                    version=outcome.version,
                    previous=outcome.previous,
                    source=outcome.source,
                )
            )
        )
    else:
        _out.print(t("update.same", version=outcome.version))


def register(app: typer.Typer) -> None:
    app.command("update", help=HELP)(update_cmd)
