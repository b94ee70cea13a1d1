"""`quet org`: the campaign server's organisation tree from the command line: import a CSV file,
add the provinces, list the tree, add people and make enrollment tokens for agents."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from quet.errors import InputError
from quet.i18n import register as tr
from quet.i18n import t

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from quet.server.services.org_import import ImportResult
    from quet.store.models import Organisation

tr("org.added", "Thêm mới", "Added")
tr("org.updated", "Cập nhật", "Updated")
tr("org.unchanged", "Không đổi", "Unchanged")
tr("org.rejected", "Dòng bị loại", "Rejected")
tr("org.admin", "Đã tạo tài khoản quản trị «admin», mật khẩu dùng một lần:", "Created the administrator 'admin', one-time password:")  # fmt: skip
tr("org.unknown", "Không có tổ chức mã {code}", "No organisation with code {code}")
tr("org.user", "Đã tạo {username} ({role}, {org}). Mật khẩu dùng một lần (chỉ hiện lần này):", "Created {username} ({role}, {org}). One-time password (shown only now):")  # fmt: skip
tr("org.token", "Mã đăng ký thiết bị cho {org} (chỉ hiện lần này):", "Enrollment token for {org} (shown only now):")  # fmt: skip
tr("org.col.code", "Mã", "Code")
tr("org.col.name", "Tên", "Name")
tr("org.col.kind", "Loại", "Kind")
tr("org.col.contact", "Thư điện tử", "E-mail")

app = typer.Typer(no_args_is_help=True, add_completion=False)
out = Console()
err = Console(stderr=True)

DbOption = Annotated[
    str,
    typer.Option(
        "--database-url",
        envvar="QUET_DATABASE_URL",
        help="SQLAlchemy URL (default: SQLite in the data folder)",
    ),
]


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@contextmanager
def _session(database_url: str) -> Iterator[Session]:
    """A session on the server's database, migrated and with its root organisation."""
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
            yield session
    finally:
        db.dispose()


def _org(session: Session, code: str) -> Organisation:
    from quet.server.services import orgs

    org = orgs.by_code(session, code)
    if org is None:
        raise InputError(t("org.unknown", code=code))
    return org


def _print_result(result: ImportResult) -> None:
    out.print(
        f"{t('org.added')}: [green]{len(result.added)}[/]   "
        f"{t('org.updated')}: {len(result.updated)}   "
        f"{t('org.unchanged')}: {len(result.unchanged)}   "
        f"{t('org.rejected')}: [red]{len(result.rejected)}[/]"
    )
    for line in result.rejected:
        err.print(f"[red]✗[/] {escape(line)}", highlight=False, soft_wrap=True)


@app.command("import")
def import_cmd(
    file: Annotated[Path, typer.Argument(help="CSV: code,name,parent_code,kind,ip_ranges,…")],
    database_url: DbOption = "",
    under: Annotated[str, typer.Option(help="Rows without a parent go here (default: root)")] = "",
) -> None:
    """Nhập cây tổ chức từ CSV (thêm mới hoặc cập nhật) / import organisations from a CSV file.

    Ví dụ / example:  quet org import donvi.csv
    """
    from quet.server.services import org_import, orgs

    with _session(database_url) as session:
        scope = _org(session, under) if under else orgs.root(session)
        assert scope is not None
        result = org_import.import_csv(session, _actor(), file, scope)
        session.commit()
    _print_result(result)


@app.command("provinces")
def provinces_cmd(
    edition: Annotated[str, typer.Option(help="2025 (34 provinces) or 2008 (63)")] = "2025",
    parent: Annotated[str, typer.Option(help="Parent organisation code")] = "VN",
    database_url: DbOption = "",
) -> None:
    """Thêm các tỉnh, thành phố vào cây / add the provinces under the national root.

    Ví dụ / example:  quet org provinces --edition 2025
    """
    from quet.server.services import org_import

    with _session(database_url) as session:
        result = org_import.import_provinces(session, _actor(), edition, _org(session, parent))
        session.commit()
    _print_result(result)


@app.command("list")
def list_cmd(
    database_url: DbOption = "",
    under: Annotated[str, typer.Option(help="Only this organisation's subtree")] = "",
) -> None:
    """Liệt kê cây tổ chức / list the organisation tree."""
    import sqlalchemy as sa

    from quet.server.services import orgs
    from quet.store.models import Organisation

    with _session(database_url) as session:
        top = _org(session, under) if under else orgs.root(session)
        assert top is not None
        found = session.scalars(
            sa.select(Organisation).where(orgs.subtree_clause(top)).order_by(Organisation.path)
        ).all()
        table = Table(show_edge=False)
        for key in ("org.col.code", "org.col.name", "org.col.kind", "org.col.contact"):
            table.add_column(t(key))
        for o in found:
            indent = "  " * (o.depth - top.depth)
            table.add_row(indent + escape(o.code), escape(o.name), o.kind, escape(o.contact_email))
    out.print(table)


@app.command("user-add")
def user_add_cmd(
    username: Annotated[str, typer.Argument(help="Sign-in name")],
    role: Annotated[str, typer.Option(help="admin, officer or viewer")],
    org: Annotated[str, typer.Option("--org", help="Organisation code")],
    full_name: Annotated[str, typer.Option(help="Full name")] = "",
    email: Annotated[str, typer.Option(help="E-mail address")] = "",
    database_url: DbOption = "",
) -> None:
    """Thêm người dùng với mật khẩu dùng một lần / add a person with a one-time password.

    Ví dụ / example:  quet org user-add lan --role officer --org VN-04
    """
    from quet.server import security
    from quet.server.services import users

    password = security.new_password()
    with _session(database_url) as session:
        users.create_user(
            session,
            username,
            password,
            role,
            _org(session, org),
            full_name=full_name,
            email=email,
            must_change_password=True,
            actor=_actor(),
        )
        session.commit()
    out.print(t("org.user", username=username, role=role, org=org))
    out.print(password, highlight=False)


@app.command("enroll-token")
def enroll_token_cmd(
    code: Annotated[str, typer.Argument(help="Organisation code")],
    label: Annotated[str, typer.Option(help="A note on who gets it")] = "",
    database_url: DbOption = "",
) -> None:
    """Tạo mã đăng ký thiết bị cho tác tử / make an enrollment token for an organisation's agents.

    Ví dụ / example:  quet org enroll-token VN-04-SYT --label "phòng máy chủ"
    """
    from quet.server.services import devices

    with _session(database_url) as session:
        token = devices.create_enrollment_token(session, _actor(), _org(session, code), label)
        session.commit()
    out.print(t("org.token", org=code))
    out.print(token, highlight=False)
