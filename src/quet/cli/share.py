"""`quet share`: this server's signing key, registering a child server's key, pushing the signed
report to the parent server, pulling the parent's signed indicator feed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from quet.errors import QuetError
from quet.i18n import register as tr
from quet.i18n import t

tr("share.key", "Khoá công khai của máy chủ này (gửi cho máy chủ cấp trên để đăng ký):", "This server's public key (send it to the parent server to register):")  # fmt: skip
tr("share.registered", "Đã đăng ký khoá {kid} cho {org}.", "Registered key {kid} for {org}.")
tr("share.noorg", "Không có đơn vị {org}.", "No organisation {org}.")
tr("share.pushed", "Đã gửi báo cáo: {n} chỉ báo, {s} lần ghi nhận.", "Report sent: {n} indicator(s), {s} sighting(s).")  # fmt: skip
tr("share.pulled", "Đã nhận {read} chỉ báo ({added} mới) trong {pages} trang từ {source}.", "Received {read} indicator(s) ({added} new) in {pages} page(s) from {source}.")  # fmt: skip

app = typer.Typer(
    help=(
        "Chia sẻ dữ liệu có ký số với máy chủ cấp trên / signed sharing with the parent server.\n\n"
        "Ví dụ / examples:  quet share keygen    quet share register-peer CB cb.pub    "
        "quet share push --url https://giamsat.example.vn    quet share pull --parent-key vn.pub"
    ),
    no_args_is_help=True,
)
out = Console()
err = Console(stderr=True)

UrlOpt = Annotated[str, typer.Option("--url", envvar="QUET_UPSTREAM_URL", help="Parent server URL")]
CaOpt = Annotated[
    Path | None, typer.Option("--ca", help="CA bundle (PEM) for the parent's HTTPS certificate")
]
DbOpt = Annotated[
    str, typer.Option("--database-url", envvar="QUET_DATABASE_URL", help="SQLAlchemy URL")
]


def _fail(exc: QuetError) -> None:
    err.print(f"[red]{exc}[/]")
    raise typer.Exit(2)


def _cursor_file() -> Path:
    from quet.server import keys

    return keys.key_dir() / "feed-cursor.json"


@app.command("keygen")
def keygen() -> None:
    """Tạo (lần đầu) và in khoá công khai / create (once) and print this server's public key."""
    from quet.server import keys

    key = keys.load_or_create()
    err.print(t("share.key"))
    out.print(key.public_text, soft_wrap=True)


@app.command("register-peer")
def register_peer(
    org: Annotated[str, typer.Argument(help="Organisation code of the child server")],
    pubkey: Annotated[Path, typer.Argument(help="File with the child's 'ed25519:…' public key")],
    name: Annotated[str, typer.Option(help="A label for the child server")] = "",
    database_url: DbOpt = "",
) -> None:
    """Cho phép máy chủ cấp dưới gửi báo cáo / allow a child server to send reports for ORG."""
    from quet.server.db import Database
    from quet.server.services import orgs, sharing
    from quet.server.settings import Settings

    db = Database(Settings(database_url=database_url).resolved_database_url())
    try:
        with db.sessions() as session:
            found = orgs.by_code(session, org)
            if found is None:
                err.print(f"[red]{t('share.noorg', org=org)}[/]")
                raise typer.Exit(2)
            peer = sharing.register_peer(session, found, pubkey.read_text(), name, "cli")
            session.commit()
            out.print(t("share.registered", kid=peer.key_id, org=org))
    except (QuetError, OSError) as exc:
        _fail(exc if isinstance(exc, QuetError) else QuetError(str(exc)))
    finally:
        db.dispose()


@app.command("push")
def push(
    url: UrlOpt = "",
    period: Annotated[str, typer.Option(help="Reporting period label, e.g. 2026-dot-2")] = "",
    ca: CaOpt = None,
    database_url: DbOpt = "",
) -> None:
    """Gửi báo cáo có ký số lên máy chủ cấp trên / sign and send this server's report upward."""
    from quet.server import keys
    from quet.server.db import Database
    from quet.server.services import sharing
    from quet.server.settings import Settings

    settings = Settings(database_url=database_url)
    db = Database(settings.resolved_database_url())
    try:
        with db.sessions() as session:
            answer = sharing.push(
                session,
                url or settings.upstream_url,
                keys.load_or_create(),
                period=period,
                verify=str(ca) if ca else True,
            )
        imported = answer.get("indicators", {})
        n = int(imported.get("added", 0)) + int(imported.get("updated", 0))
        out.print(t("share.pushed", n=n, s=answer.get("sightings", 0)))
    except QuetError as exc:
        _fail(exc)
    finally:
        db.dispose()


@app.command("pull")
def pull(
    url: UrlOpt = "",
    parent_key: Annotated[
        Path | None,
        typer.Option("--parent-key", help="The parent's public key file (remembered after once)"),
    ] = None,
    ca: CaOpt = None,
    full: Annotated[bool, typer.Option("--full", help="Start again from the beginning")] = False,
    database_url: DbOpt = "",
) -> None:
    """Nhận nguồn chỉ báo có ký số từ cấp trên / pull and verify the parent's indicator feed."""
    from quet.server import keys
    from quet.server.db import Database
    from quet.server.services import sharing
    from quet.server.settings import Settings

    settings = Settings(database_url=database_url)
    db = Database(settings.resolved_database_url())
    cursor_path = _cursor_file()
    try:
        if parent_key is not None:
            keys.save_upstream(parent_key.read_text())
        cursor = {} if full or not cursor_path.exists() else json.loads(cursor_path.read_text())
        with db.sessions() as session:
            pulled = sharing.pull_feed(
                session,
                url or settings.upstream_url,
                keys.load_upstream(),
                keys.load_or_create(),
                cursor=cursor,
                verify=str(ca) if ca else True,
            )
        cursor_path.write_text(json.dumps(pulled.cursor))
        out.print(t("share.pulled", **pulled.to_dict()))
    except QuetError as exc:
        _fail(exc)
    except OSError as exc:
        _fail(QuetError(str(exc)))
    finally:
        db.dispose()
