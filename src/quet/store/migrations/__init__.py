"""Alembic migrations of the store (run by quet.store.db.migrate; no alembic.ini needed)."""
