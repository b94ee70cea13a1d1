"""Network-watch alerts on the server: upsert by the alert's stable id (idempotent), map each
internal host to a device and an organisation of the poster's subtree, list and triage them."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.orm import Session

from quet.errors import InputError
from quet.netwatch.alerts import EXAMPLES
from quet.server.services import audit, orgs, paging
from quet.server.services.errors import Forbidden, NotFound
from quet.store.models import Device, NetAlertRow, Organisation, OrgNetwork
from quet.store.models.netalert import NET_ALERT_STATUSES

if TYPE_CHECKING:
    from quet.server.deps import Principal

MAX_ALERTS = 5000  # per request; `quet net watch` posts far fewer at a time
NetAlertStatus = Literal["open", "resolved", "false_positive"]
Result = Literal["created", "updated", "unchanged", "refused"]
POSTERS = ("admin", "officer")
__all__ = ["Forbidden", "NetAlertBatch", "NetAlertIn", "NotFound", "listing", "map_ip",
           "post_alerts", "set_status", "visible"]  # fmt: skip


def _no_nul(value: str) -> str:
    # PostgreSQL refuses NUL in text and JSONB: refuse it here as a 422, not a 500 there.
    if "\x00" in value:
        raise ValueError("NUL characters are not allowed")
    return value


class ExampleIn(BaseModel):
    """Where the alert was seen: a log file, its line, the matched value."""

    file: str = Field("", max_length=1000)
    line: int = Field(0, ge=0, le=2**62)
    value: str = Field("", max_length=4096)

    _nul = field_validator("file", "value")(_no_nul)


class NetAlertIn(BaseModel):
    """One alert as `quet.netwatch.alerts.Alert.to_dict` writes it (its `device`/`org` are ignored:
    the server maps the host itself)."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 hex, stable across posts")
    client: str = Field(min_length=1, max_length=64, description="the internal host's IP")
    indicator_type: str = Field(min_length=1, max_length=16)
    indicator: str = Field(min_length=1, max_length=4096)
    name: str = Field("", max_length=300)
    family: str = Field("", max_length=200)
    source_feed: str = Field("", max_length=300)
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    count: int = Field(ge=1, le=2**62)
    fields: list[Annotated[str, Field(max_length=16)]] = Field(default_factory=list, max_length=16)
    examples: list[ExampleIn] = Field(default_factory=list, max_length=50)

    _nul = field_validator("client", "indicator_type", "indicator", "name", "family",
                           "source_feed")(_no_nul)  # fmt: skip

    @field_validator("fields")
    @classmethod
    def _fields_nul(cls, values: list[str]) -> list[str]:
        return [_no_nul(v) for v in values]

    @field_validator("client")
    @classmethod
    def _compress(cls, value: str) -> str:
        try:
            return ipaddress.ip_address(value.strip()).compressed
        except ValueError:
            return value.strip()

    @field_validator("first_seen", "last_seen")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        try:
            return value.astimezone(UTC)
        except OverflowError as exc:
            raise ValueError("time out of range") from exc


class NetAlertBatch(BaseModel):
    """The body `quet net watch --post` sends."""

    model_config = ConfigDict(populate_by_name=True)

    schema_: Literal["quet.net.alert/1"] = Field("quet.net.alert/1", alias="schema")
    alerts: list[NetAlertIn] = Field(max_length=MAX_ALERTS)


@dataclass
class Mapping:
    """Where an internal host belongs: the organisation the alert is filed under, the device."""

    org: Organisation
    device: Device | None
    note: str  # "" | "unregistered" | "outside_scope" (then `org` is the poster's own)


@dataclass
class Posted:
    id: str
    result: Result
    org: str = ""
    device: str = ""
    device_id: int | None = None
    note: str = ""


def _network_owner(session: Session, under: Organisation, ip: str) -> Organisation | None:
    """The narrowest registered range holding `ip` among the organisations of `under`'s subtree
    (private ranges are registered by many agencies: the poster's own tree decides)."""
    h = orgs.ip_hex(ip)
    row = session.execute(
        sa.select(OrgNetwork.org_id)
        .join(Organisation, Organisation.id == OrgNetwork.org_id)
        .where(OrgNetwork.start_hex <= h, OrgNetwork.end_hex >= h, orgs.subtree_clause(under))
        .order_by(sa.desc(OrgNetwork.start_hex), OrgNetwork.end_hex)
        .limit(1)
    ).first()
    return session.get(Organisation, row[0]) if row else None


def _device_of(
    session: Session, under: Organisation, ip: str, prefer: Organisation | None
) -> Device | None:
    """A device of `under`'s subtree that reports `ip`: one of `prefer` first, then the most
    recently seen. The LIKE narrows candidates on both backends; the exact test is in Python."""
    rows = session.scalars(
        sa.select(Device)
        .join(Organisation, Organisation.id == Device.org_id)
        .where(orgs.subtree_clause(under), sa.cast(Device.ips, sa.Text).like(f'%"{ip}"%'))
        .limit(200)
    ).all()
    found = [d for d in rows if ip in (d.ips or [])]
    if not found:
        return None
    never = datetime.min.replace(tzinfo=UTC)
    found.sort(
        key=lambda d: (prefer is None or d.org_id != prefer.id, -(d.last_seen or never).timestamp())
    )
    return found[0]


def map_ip(session: Session, under: Organisation, ip: str) -> Mapping:
    """Map an internal host to an organisation (by registered range) and a device (by its reported
    IPs), both within `under`'s subtree. An IP registered outside it, or nowhere, is filed under
    `under` itself, with a note saying which."""
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        return Mapping(under, None, "unregistered")  # a name, not an address: nothing to map
    owner = _network_owner(session, under, ip)
    device = _device_of(session, under, ip, owner)
    if owner is not None:
        return Mapping(owner, device, "")
    if device is not None:
        org = session.get(Organisation, device.org_id)
        assert org is not None
        return Mapping(org, device, "")
    elsewhere = orgs.owner_of_ip(session, ip)
    return Mapping(under, None, "outside_scope" if elsewhere is not None else "unregistered")


def _examples(items: Iterable[ExampleIn | dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for item in items:
        ex = item.model_dump() if isinstance(item, ExampleIn) else dict(item)
        if ex not in out:
            out.append(ex)
        if len(out) >= EXAMPLES:
            break
    return out


def _new_row(alert: NetAlertIn, mapping: Mapping, reporter: str, now: datetime) -> NetAlertRow:
    return NetAlertRow(
        id=alert.id,
        client=alert.client,
        org_id=mapping.org.id,
        device_id=mapping.device.id if mapping.device else None,
        note=mapping.note,
        indicator_type=alert.indicator_type,
        indicator=alert.indicator,
        name=alert.name,
        family=alert.family,
        source_feed=alert.source_feed,
        first_seen=alert.first_seen,
        last_seen=alert.last_seen,
        count=alert.count,
        fields=list(dict.fromkeys(alert.fields)),
        examples=_examples(alert.examples),
        status="open",
        received_at=now,
        updated_at=now,
        reporter=reporter,
    )


def _merge(row: NetAlertRow, alert: NetAlertIn, mapping: Mapping, now: datetime) -> bool:
    """Fold a repeat into the stored alert; False (nothing written) unless it brings news: a
    higher count, a later sighting, or a device found since."""
    grew = alert.count > row.count
    later = alert.last_seen is not None and (
        row.last_seen is None or alert.last_seen > row.last_seen
    )
    found = row.device_id is None and mapping.device is not None
    if not (grew or later or found):
        return False
    if found and mapping.device is not None:
        row.device_id = mapping.device.id
    if grew or later:
        row.count = max(row.count, alert.count)
        if later:
            row.last_seen = alert.last_seen
            if row.status == "resolved":
                row.status = "open"  # seen again after it was cleaned up
        if alert.first_seen is not None and (
            row.first_seen is None or alert.first_seen < row.first_seen
        ):
            row.first_seen = alert.first_seen
        row.fields = list(dict.fromkeys([*(row.fields or []), *alert.fields]))
        row.examples = _examples([*(row.examples or []), *alert.examples])
        for attr in ("name", "family", "source_feed"):
            if getattr(alert, attr):
                setattr(row, attr, getattr(alert, attr))
    row.updated_at = now
    return True


def post_alerts(
    session: Session, principal: Principal, alerts: Iterable[NetAlertIn]
) -> list[Posted]:
    """Upsert `alerts` posted by `principal` (an officer or administrator); one answer per alert.
    Posting the same alerts again writes nothing. The caller commits."""
    if principal.user.role not in POSTERS:
        raise Forbidden("only officers and administrators may post network alerts")
    under = principal.org
    now = datetime.now(UTC)
    mapped: dict[str, Mapping] = {}
    codes: dict[int, str] = {under.id: under.code}
    answers: list[Posted] = []
    for alert in alerts:
        mapping = mapped.get(alert.client)
        if mapping is None:
            mapping = mapped[alert.client] = map_ip(session, under, alert.client)
        codes[mapping.org.id] = mapping.org.code
        row = session.get(NetAlertRow, alert.id)
        if row is None:
            row = _new_row(alert, mapping, principal.user.username, now)
            session.add(row)
            session.flush()  # a later alert with the same id in this batch finds it
            result: Result = "created"
        else:
            org = session.get(Organisation, row.org_id) if row.org_id is not None else None
            if org is None or not principal.can_see(org):
                # The same id filed by another subtree (a shared private range): never touched.
                answers.append(Posted(alert.id, "refused", note="another organisation's alert"))
                continue
            codes[org.id] = org.code
            result = "updated" if _merge(row, alert, mapping, now) else "unchanged"
        device = session.get(Device, row.device_id) if row.device_id is not None else None
        answers.append(
            Posted(
                id=row.id,
                result=result,
                org=codes.get(row.org_id, "") if row.org_id is not None else "",
                device=device.hostname if device else "",
                device_id=row.device_id,
                note=row.note,
            )
        )
    counts = {k: sum(1 for a in answers if a.result == k) for k in ("created", "updated")}
    if any(counts.values()):
        audit.record(session, principal.actor, "net_alert.post", "net_alerts", under.id, counts)
    return answers


def listing(
    session: Session,
    under: Organisation,
    *,
    status: str | None = None,
    family: str | None = None,
    client: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[int, list[NetAlertRow]]:
    """Alerts filed under `under`'s subtree, the latest sighting first; (total, one page)."""
    if status is not None and status not in NET_ALERT_STATUSES:
        raise InputError(f"status {status!r}: expected one of {', '.join(NET_ALERT_STATUSES)}")
    query = sa.select(NetAlertRow).join(Organisation, Organisation.id == NetAlertRow.org_id)
    query = query.where(orgs.subtree_clause(under))
    if status is not None:
        query = query.where(NetAlertRow.status == status)
    if family:
        query = query.where(sa.func.lower(NetAlertRow.family) == family.lower())
    if client:
        query = query.where(NetAlertRow.client == client)
    total = paging.count(session, query)
    rows = session.scalars(
        query.order_by(
            NetAlertRow.last_seen.desc().nulls_last(),
            NetAlertRow.received_at.desc(),
            NetAlertRow.id,
        )
        .limit(limit)
        .offset(offset)
    ).all()
    return total, list(rows)


def visible(session: Session, principal: Principal, alert_id: str) -> NetAlertRow:
    row = session.get(NetAlertRow, alert_id)
    org = session.get(Organisation, row.org_id) if row is not None and row.org_id else None
    if row is None or org is None or not principal.can_see(org):
        raise NotFound(f"no network alert {alert_id}")
    return row


def set_status(session: Session, principal: Principal, alert_id: str, status: str) -> NetAlertRow:
    """Mark an alert resolved, a false positive, or open again (scoped to the asker's tree)."""
    if status not in NET_ALERT_STATUSES:
        raise InputError(f"status {status!r}: expected one of {', '.join(NET_ALERT_STATUSES)}")
    row = visible(session, principal, alert_id)
    org = session.get(Organisation, row.org_id) if row.org_id is not None else None
    if org is None or not principal.can_change(org):
        raise Forbidden(f"you may not change alerts of {org.code if org else '?'}")
    if row.status == status:
        return row
    previous, row.status = row.status, status
    row.updated_at = datetime.now(UTC)
    audit.record(session, principal.actor, "net_alert.status", f"net_alert:{alert_id}", org.id,
                 {"from": previous, "to": status})  # fmt: skip
    return row
