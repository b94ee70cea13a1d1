"""The FastAPI application: database (migrated at start), API, web pages, static assets."""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import pkgutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from quet import __version__
from quet.server import api
from quet.server.api.scans import FastIngest
from quet.server.db import Database
from quet.server.services import orgs, rollups, users
from quet.server.settings import Settings

STATIC = Path(__file__).parent / "web" / "static"
log = logging.getLogger("quet.server")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from quet.server.services import botnet, report_reminders

        jobs = [
            # The pages' roll-up tables, for the organisations that changed.
            _every(settings.rollup_seconds, "roll-up refresh",
                   lambda: rollups.refresh_dirty(app.state.db.sessions)),
            # The daily botnet digests, once the newest feed day is in (idempotent per day).
            _every(botnet.DIGEST_CHECK_SECONDS, "botnet digests",
                   lambda: botnet.digests_due(app.state.db.sessions, settings)),
            # Units whose campaign report is due in 3 days or 1 day (each reminder once).
            _every(report_reminders.REMIND_EVERY_S, "report reminders",
                   lambda: report_reminders.remind_all(app.state.db.sessions, settings)),
        ]  # fmt: skip
        tasks = [asyncio.create_task(job) for job in jobs]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            app.state.db.dispose()

    app = FastAPI(
        title="Quét",
        version=__version__,
        description="Quét campaign server: organisations, campaigns, agents, scan results.",
        lifespan=lifespan,
        docs_url="/api/docs",
        openapi_url="/api/v1/openapi.json",
    )
    app.state.settings = settings
    app.add_exception_handler(RequestValidationError, _invalid)
    app.state.db = Database(settings.resolved_database_url())
    app.state.first_password = bootstrap(app.state.db, settings)
    app.include_router(api.router())
    # Scan reports skip the router: at thousands a second, matching every route costs more than
    # storing the report (the route in api/scans.py stays for the OpenAPI document).
    app.add_middleware(FastIngest)
    if STATIC.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _include_pages(app)
    return app


async def _invalid(request: Request, exc: Exception) -> Response:
    """422 with the errors, safe to encode even when the input held lone surrogates or bytes
    (ASCII-escaped JSON: a lone surrogate becomes \\udXXX instead of failing to encode)."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    body = json.dumps({"detail": errors}, default=repr, ensure_ascii=True)
    return Response(body, status_code=422, media_type="application/json")


async def _every(seconds: float, what: str, job: Callable[[], object]) -> None:
    """Run `job` in a worker thread every `seconds`; a failure is logged, the loop goes on."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await asyncio.to_thread(job)
        except Exception:
            log.exception("%s failed", what)


def bootstrap(db: Database, settings: Settings) -> str | None:
    """This server's own organisation and, on the first start, an administrator."""
    with db.sessions() as session:
        root = orgs.root(session)
        if root is None:
            root = orgs.create(session, settings.org_code, settings.org_name, "national")
        password = users.ensure_admin(session, root)
        session.commit()
    return password


def _include_pages(app: FastAPI) -> None:
    try:
        pages = importlib.import_module("quet.server.web.pages")
    except ModuleNotFoundError:
        return
    for mod in sorted(m.name for m in pkgutil.iter_modules(pages.__path__)):
        module = importlib.import_module(f"{pages.__name__}.{mod}")
        router = getattr(module, "router", None)
        if router is not None:
            app.include_router(router)
