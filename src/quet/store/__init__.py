"""The store: SQLAlchemy models, migrations and services over SQLite or PostgreSQL."""

from quet.store.db import connect

__all__ = ["connect"]
