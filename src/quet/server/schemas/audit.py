"""Audit log shapes: one entry, and a page of them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class AuditPublic(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    org_code: str | None
    ip: str
    detail: dict[str, Any] | list[Any]


class AuditPage(BaseModel):
    total: int
    page: int
    per_page: int
    items: list[AuditPublic]
