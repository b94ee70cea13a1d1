"""The `quet` command: one subcommand per component; errors become one red line and exit code 2."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

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


def _register() -> None:
    from quet.cli import bundle, quarantine, scan, signatures, update

    scan.register(app)
    app.add_typer(signatures.app, name="signatures")
    update.register(app)
    app.add_typer(
        bundle.app,
        name="bundle",
        help="Gói nội dung cập nhật (TUF) / content bundles and the update repository.",
    )
    app.add_typer(
        quarantine.app,
        name="quarantine",
        help="Khu cách ly: xem, khôi phục, xoá tệp đã cách ly / the quarantine vault.",
    )


@app.command()
def version() -> None:
    """In phiên bản / print the version."""
    typer.echo(f"quet {__version__}")


def main() -> None:
    try:
        code = app(standalone_mode=False)
    except QuetError as exc:
        err.print(f"[bold red]Lỗi / error:[/] {exc}", highlight=False)
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


_register()
