"""The audit log: every change is recorded in the same transaction as the change itself."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from quet.store.models import AuditEntry


def record(
    session: Session,
    actor: str,
    action: str,
    target: str = "",
    org_id: int | None = None,
    detail: dict[str, Any] | None = None,
    ip: str = "",
) -> None:
    session.add(
        AuditEntry(
            actor=actor, action=action, target=target, org_id=org_id, detail=detail or {}, ip=ip
        )
    )
