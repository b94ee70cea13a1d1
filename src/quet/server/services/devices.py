"""Devices: enrollment tokens, enrolling an agent for a per-device credential, heartbeats with
the machine's inventory, scoped listings and the coverage figure ("% protected, current content")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from quet.errors import InputError
from quet.server import security
from quet.server.services import audit, orgs, paging
from quet.server.services.errors import NotFound
from quet.store.models import Device, EnrollmentToken, Organisation
from quet.store.models.device import DEVICE_KINDS

if TYPE_CHECKING:
    from quet.server.deps import Principal

TOKEN_PREFIX = "qe_"
CREDENTIAL_PREFIX = "qd_"
_TEXT_LIMITS = {"hostname": 255, "os": 200, "agent_version": 50}


class EnrollmentError(InputError):
    """The enrollment token is unknown, revoked, expired or used up."""


def create_enrollment_token(
    session: Session,
    actor: str,
    org: Organisation,
    label: str = "",
    *,
    days: int | None = 90,
    max_uses: int = 1000,
) -> str:
    """A token an IT officer gives to the agents of `org`; shown once, stored as its SHA256."""
    token, digest = security.new_token(TOKEN_PREFIX)
    expires = datetime.now(UTC) + timedelta(days=days) if days else None
    session.add(
        EnrollmentToken(
            org_id=org.id,
            token_hash=digest,
            label=label[:200],
            created_by=actor[:100],
            expires_at=expires,
            max_uses=max_uses,
        )
    )
    audit.record(session, actor, "enrollment_token.create", f"org:{org.code}", org.id,
                 {"label": label, "expires_at": expires.isoformat() if expires else None})  # fmt: skip
    return token


def _clean_kind(kind: object) -> str:
    value = str(kind or "workstation").strip().lower()
    if value not in DEVICE_KINDS:
        raise InputError(f"device kind {value!r}: expected one of {', '.join(DEVICE_KINDS)}")
    return value


def _text(info: dict[str, Any], key: str) -> str | None:
    value = info.get(key)
    if value is None:
        return None
    # PostgreSQL refuses NUL in text; an agent's odd hostname must not become a 500.
    return str(value).replace("\x00", "")[: _TEXT_LIMITS[key]]


def _strings(value: object) -> list[str]:
    if not isinstance(value, list):
        return []
    return [str(v).replace("\x00", "")[:64] for v in value[:64]]


def enroll(session: Session, token: str, info: dict[str, Any]) -> tuple[Device, str]:
    """Exchange an enrollment token for a new device and its credential ("qd_…", shown once)."""
    row = session.scalars(
        sa.select(EnrollmentToken)
        .where(EnrollmentToken.token_hash == security.token_hash(token))
        .with_for_update()
    ).first()
    now = datetime.now(UTC)
    if row is None or row.revoked:
        raise EnrollmentError("unknown or revoked enrollment token")
    if row.expires_at is not None and row.expires_at < now:
        raise EnrollmentError("this enrollment token has expired: ask for a new one")
    if row.uses >= row.max_uses:
        raise EnrollmentError("this enrollment token has been used up: ask for a new one")
    hostname = (_text(info, "hostname") or "").strip()
    if not hostname:
        raise InputError("enrollment needs the machine's hostname")
    credential, digest = security.new_token(CREDENTIAL_PREFIX)
    device = Device(
        org_id=row.org_id,
        hostname=hostname,
        kind=_clean_kind(info.get("kind")),
        os=_text(info, "os") or "",
        ips=_strings(info.get("ips")),
        agent_version=_text(info, "agent_version") or "",
        credential_hash=digest,
        enrolled_at=now,
        last_seen=now,
    )
    row.uses += 1
    session.add(device)
    session.flush()
    audit.record(session, f"device:{device.id}", "device.enroll", f"device:{hostname}",
                 row.org_id, {"token": row.label, "kind": device.kind})  # fmt: skip
    return device, credential


def _when(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as exc:
            raise InputError(f"not an ISO 8601 time: {value!r}") from exc
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def heartbeat(session: Session, device: Device, info: dict[str, Any]) -> None:
    """Refresh the inventory a running agent reports; absent keys leave the stored value."""
    for key in ("hostname", "os", "agent_version"):
        value = _text(info, key)
        if value:
            setattr(device, key, value)
    if info.get("kind"):
        device.kind = _clean_kind(info["kind"])
    if "ips" in info:
        device.ips = _strings(info["ips"])
    if "antimalware" in info:
        device.antimalware = _strings(info["antimalware"])
    if "content_version" in info:
        version = info["content_version"]
        device.content_version = int(version) if isinstance(version, int) else None
    if "content_updated_at" in info:
        device.content_updated_at = _when(info["content_updated_at"])
    last_scan = _when(info.get("last_scan_at"))
    if last_scan is not None and (device.last_scan_at is None or last_scan > device.last_scan_at):
        device.last_scan_at = last_scan
    device.last_seen = datetime.now(UTC)


def scoped(under: Organisation) -> sa.Select[Device]:
    return (
        sa.select(Device)
        .join(Organisation, Organisation.id == Device.org_id)
        .where(orgs.subtree_clause(under))
    )


def listing(
    session: Session,
    under: Organisation,
    *,
    kind: str | None = None,
    hostname: str | None = None,
    infected: bool | None = None,
    stale_days: int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[int, list[Device]]:
    """Devices in `under`'s subtree with optional filters: (total matching, one page)."""
    query = scoped(under)
    if kind:
        query = query.where(Device.kind == _clean_kind(kind))
    if hostname:
        query = query.where(Device.hostname.contains(hostname, autoescape=True))
    if infected is not None:
        query = query.where(Device.open_findings > 0 if infected else Device.open_findings == 0)
    if stale_days is not None:
        cutoff = datetime.now(UTC) - timedelta(days=stale_days)
        query = query.where(
            sa.or_(Device.content_updated_at.is_(None), Device.content_updated_at < cutoff)
        )
    rows = session.scalars(query.order_by(Device.id).limit(limit).offset(offset)).all()
    return paging.count(session, query), list(rows)


def visible(session: Session, principal: Principal, device_id: int) -> tuple[Device, Organisation]:
    """The device and its organisation if `principal` may see them; NotFound otherwise."""
    device = session.get(Device, device_id)
    org = session.get(Organisation, device.org_id) if device is not None else None
    if device is None or org is None or not principal.can_see(org):
        raise NotFound(f"no device {device_id}")
    return device, org


def _pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def coverage(session: Session, under: Organisation, max_age_days: int = 7) -> dict[str, Any]:
    """The seed's figure: of the devices in the subtree, how many run anti-malware whose content
    was updated within `max_age_days` — overall and by kind (server, workstation, endpoint)."""
    cutoff = datetime.now(UTC) - timedelta(days=max_age_days)
    current = sa.and_(Device.content_updated_at.is_not(None), Device.content_updated_at >= cutoff)
    rows = session.execute(
        sa.select(
            Device.kind,
            sa.func.count(),
            sa.func.count().filter(current),
            sa.func.count().filter(Device.open_findings > 0),
            sa.func.count().filter(Device.last_scan_at.is_not(None)),
            sa.func.count().filter(Device.uploaded_only.is_(True)),
        )
        .join(Organisation, Organisation.id == Device.org_id)
        .where(orgs.subtree_clause(under))
        .group_by(Device.kind)
    ).all()
    by_kind: dict[str, dict[str, Any]] = {
        k: {"devices": 0, "protected_current": 0, "pct": 0.0} for k in DEVICE_KINDS
    }
    totals = {"devices": 0, "protected_current": 0, "infected": 0, "scanned": 0, "uploaded": 0}
    for kind, n, cur, infected, scanned, uploaded in rows:
        by_kind[kind] = {"devices": n, "protected_current": cur, "pct": _pct(cur, n)}
        for key, value in zip(totals, (n, cur, infected, scanned, uploaded), strict=True):
            totals[key] += value
    return {
        "devices": totals["devices"],
        "protected_current": totals["protected_current"],
        "pct": _pct(totals["protected_current"], totals["devices"]),
        "stale": totals["devices"] - totals["protected_current"],
        "infected": totals["infected"],
        "scanned": totals["scanned"],
        "uploaded_only": totals["uploaded"],
        "max_age_days": max_age_days,
        "by_kind": by_kind,
        "all_protected": totals["devices"] > 0 and totals["protected_current"] == totals["devices"],
    }


def device_for_upload(session: Session, org: Organisation, hostname: str, os_name: str) -> Device:
    """A machine without an agent: found by hostname in `org`, or created (uploaded_only)."""
    hostname = hostname.strip()[:255] or "unknown"
    device = session.scalars(
        sa.select(Device)
        .where(Device.org_id == org.id, Device.hostname == hostname)
        .order_by(Device.id)
    ).first()
    if device is None:
        device = Device(org_id=org.id, hostname=hostname, os=os_name[:200], uploaded_only=True)
        session.add(device)
        session.flush()
    return device
