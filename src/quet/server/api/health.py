"""GET /api/v1/health: 200 once the database is migrated and answering."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter
from pydantic import BaseModel

from quet import __version__
from quet.server.deps import SessionDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    version: str
    database: str


@router.get("/health", response_model=Health)
def health(session: SessionDep) -> Health:
    session.execute(sa.text("SELECT 1"))
    return Health(status="ok", version=__version__, database=session.get_bind().dialect.name)
