"""The server's database: one Engine (migrated at start) and a session per request."""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from quet.store.db import connect


class Database:
    def __init__(self, url: str) -> None:
        kwargs: dict[str, object] = {}
        if not url.startswith("sqlite"):
            kwargs.update(pool_size=10, max_overflow=20)
        self.engine: sa.Engine = connect(url, **kwargs)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def session(self) -> Iterator[Session]:
        with self.sessions() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
