"""The `quet` command: one subcommand per component; errors become one red line and exit code 2."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable

import typer
from rich.console import Console
from rich.markup import escape

from quet import __version__
from quet.errors import QuetError

app = typer.Typer(
    name="quet",
    help=(
        "Quét — công cụ rà quét, xử lý mã độc cho chiến dịch quốc gia.\n\n"
        "Quét — malware scanning and clean-up for a national campaign.\n\n"
        "Ví dụ / examples:  quet scan ~    quet scan --system /    quet quarantine list"
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)

err = Console(stderr=True)


# Each command's module, imported only when that command (or the full help) is asked for:
# `quet scan` should not pay for the TUF, SQL and STIX libraries at start-up.
def _scan() -> None:
    from quet.cli import scan

    scan.register(app)


def _server() -> None:
    from quet.cli import server

    server.register(app)


def _update() -> None:
    from quet.cli import update

    update.register(app)


def _group(module: str, help_text: str) -> Callable[[], None]:
    def add() -> None:
        sub = importlib.import_module(f"quet.cli.{module}")
        app.add_typer(sub.app, name=module, help=help_text)

    return add


COMMANDS: dict[str, Callable[[], None]] = {
    "scan": _scan,
    "quarantine": _group(
        "quarantine", "Khu cách ly: xem, khôi phục, xoá tệp đã cách ly / the quarantine vault."
    ),
    "signatures": _group(
        "signatures", "Mẫu nhận diện đã cài: xem, thêm / installed signatures: list, add."
    ),
    "intel": _group(
        "intel", "Kho chỉ dấu mối đe doạ: nhập, xuất, tra cứu / the threat-intel store."
    ),
    "bundle": _group(
        "bundle", "Gói nội dung cập nhật (TUF) / content bundles and the update repository."
    ),
    "update": _update,
    "server": _server,
    "share": _group(
        "share", "Chia sẻ dữ liệu ký số với cấp trên / signed sharing with the parent server."
    ),
    "org": _group("org", "Đơn vị, người dùng, mã đăng ký / organisations, people, enrollment."),
    "agent": _group("agent", "Tác tử trên máy: đăng ký, quét định kỳ / the device agent."),
    "net": _group("net", "Giám sát mạng: máy nội bộ kết nối tới địa chỉ độc hại / network watch."),
    "botnet": _group(
        "botnet",
        "IP botnet: nhập sinkhole, gán đơn vị, thống kê, tra cứu / botnet IPs.\n\n"
        "Ví dụ / examples:  quet botnet import sinkhole.csv.gz --geo-db GeoLite2-City.mmdb    "
        "quet botnet stats --month 2026-11    quet botnet lookup 203.0.113.7",
    ),
    "report": _group(
        "report", "Báo cáo chính thức: DOCX, XLSX, PDF, nhắc hạn / official reports, reminders."
    ),
}


def _register(argv: list[str]) -> None:
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, add in COMMANDS.items():
        if wanted is None or wanted == name or wanted not in COMMANDS:
            try:
                add()
            except ModuleNotFoundError as exc:
                if not exc.name or not exc.name.startswith("quet.cli."):
                    raise  # a missing third-party library is a real error


@app.command()
def version() -> None:
    """In phiên bản / print the version."""
    typer.echo(f"quet {__version__}")


def main() -> None:
    _register(sys.argv[1:])
    try:
        code = app(standalone_mode=False)
    except QuetError as exc:
        err.print(f"[bold red]Lỗi / error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("[red]Đã huỷ / aborted[/]")
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("[red]Đã dừng / interrupted[/]")
        sys.exit(2)
    except Exception as exc:  # click's usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(2)
        raise
    sys.exit(code if isinstance(code, int) else 0)
