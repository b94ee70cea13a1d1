"""Opening the store: an Engine for SQLite (default, under QUET_HOME) or PostgreSQL, migrated to
the newest schema by Alembic before it is handed out."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event

from quet import paths

MIGRATIONS = Path(__file__).with_name("migrations")
_lock = threading.Lock()


def default_url() -> str:
    return f"sqlite:///{paths.home() / 'intel.sqlite'}"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets readers (a scan, the server) go on while an import writes.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA temp_store=MEMORY")
    cur.execute("PRAGMA cache_size=-65536")
    cur.close()


def alembic_config(url: str | None = None) -> Config:
    """Alembic's configuration built in code, so an installed Quét needs no alembic.ini."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(engine: sa.Engine) -> None:
    """Bring the schema to the newest revision (a no-op when it is already there)."""
    cfg = alembic_config()
    with _lock, engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def connect(url: str | None = None, **engine_kwargs: Any) -> sa.Engine:
    """An Engine on the intel store at `url` (default: sqlite:///$QUET_HOME/intel.sqlite), with
    every migration applied. PostgreSQL URLs use psycopg 3: postgresql+psycopg://user@host/db."""
    url = url or default_url()
    sa_url = sa.make_url(url)
    if sa_url.get_backend_name() == "sqlite":
        if sa_url.database and sa_url.database != ":memory:":
            Path(sa_url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(sa_url, **engine_kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine_kwargs.setdefault("pool_pre_ping", True)
        engine = sa.create_engine(sa_url, **engine_kwargs)
    migrate(engine)
    return engine
