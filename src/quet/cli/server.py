"""`quet server`: run the campaign server (SQLite by default, PostgreSQL with --database-url)."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.console import Console
from rich.panel import Panel

from quet.i18n import register as tr
from quet.i18n import t

tr("server.admin", "Tài khoản quản trị đầu tiên — mật khẩu dùng một lần (hãy đổi ngay khi đăng nhập):",
   "First administrator — one-time password (change it when you sign in):")  # fmt: skip
tr("server.open", "Mở {url} trong trình duyệt", "Open {url} in a browser")
tr("server.demo", "Đã tạo dữ liệu minh hoạ", "Demo data created")

out = Console(stderr=True)


def register(app: typer.Typer) -> None:
    @app.command(
        "server",
        help=(
            "Chạy máy chủ chiến dịch (giao diện web + API) / run the campaign server.\n\n"
            "Mặc định dùng SQLite trong thư mục dữ liệu; dùng --database-url postgresql://… "
            "cho hệ thống thật.\n\n"
            "Ví dụ / examples:  quet server --demo    "
            "quet server --database-url postgresql://quet@db/quet --host 0.0.0.0"
        ),
    )
    def server_cmd(
        host: Annotated[str, typer.Option(help="Listen address")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="Listen port")] = 8440,
        database_url: Annotated[
            str, typer.Option("--database-url", envvar="QUET_DATABASE_URL", help="SQLAlchemy URL")
        ] = "",
        demo: Annotated[
            bool, typer.Option("--demo", help="Seed a believable demo campaign")
        ] = False,
        workers: Annotated[
            int, typer.Option(help="Server processes (PostgreSQL; SQLite allows one writer)")
        ] = 1,
    ) -> None:
        import uvicorn

        from quet.server.app import create_app
        from quet.server.settings import Settings

        settings = Settings(host=host, port=port, database_url=database_url)
        app = create_app(settings)
        if app.state.first_password:
            out.print(
                Panel(
                    f"{t('server.admin')}\n\n  user: [bold]admin[/]\n  password: [bold]"
                    f"{app.state.first_password}[/]",
                    border_style="yellow",
                )
            )
        if demo:
            from quet.server.services import demo as demo_data

            with app.state.db.sessions() as session:
                summary = demo_data.seed(session)
                session.commit()
            out.print(f"[green]{t('server.demo')}[/]: {summary}")
        out.print(t("server.open", url=f"http://{host}:{port}/"))
        if workers > 1:
            # Each worker builds its own app from the same settings (QUET_* environment); the
            # migrations and the first administrator are already done above, once.
            app.state.db.dispose()
            os.environ["QUET_DATABASE_URL"] = settings.resolved_database_url()
            uvicorn.run(
                "quet.server.app:create_app",
                factory=True,
                host=host,
                port=port,
                workers=workers,
                log_level="warning",
            )
        else:
            uvicorn.run(app, host=host, port=port, log_level="warning")
