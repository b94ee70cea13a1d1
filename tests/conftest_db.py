"""Test databases for the store: a SQLite file, or a fresh PostgreSQL schema dropped afterwards.
PostgreSQL missing is a skip on a developer machine and a failure in CI (CI=true)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

PG_URL = os.environ.get("QUET_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = ("sqlite", "postgresql")


@contextmanager
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty store database of `backend`, removed when the block ends."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'intel.sqlite'}"
        return
    admin = sa.create_engine(PG_URL, pool_pre_ping=True)
    schema = f"t_{secrets.token_hex(6)}"
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    except sa.exc.OperationalError as exc:
        admin.dispose()
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required in CI at {PG_URL}: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}")
    try:
        # Every connection of the store lands in the test's own schema.
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()
