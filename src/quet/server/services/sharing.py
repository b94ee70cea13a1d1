"""Sharing upward and downward between servers: a child (a province) pushes signed reports — its
figures, indicators and sightings — to its parent (the national centre), which verifies them
against the child's registered key and stores them; the parent serves a signed indicator feed."""

from __future__ import annotations

import base64
import json
import re
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from quet.errors import InputError, QuetError
from quet.indicators.model import Indicator, IndicatorType, IssueLog, guess, make
from quet.server import keys
from quet.server.keys import EnvelopeError, ServerKey
from quet.server.services import audit, orgs
from quet.store.importer import ImportSummary, import_indicators
from quet.store.models import (
    Device,
    FindingRow,
    Organisation,
    ShareReceipt,
    SharingPeer,
    UTCDateTime,
    indicators,
    sightings,
)

REPORT_KIND = "quet.share.report/1"
FEED_KIND = "quet.share.feed/1"
FEED_REQUEST_KIND = "quet.share.feed-request/1"
FEED_HEADER = "X-Quet-Envelope"
MAX_AGE = timedelta(minutes=10)  # older envelopes are refused as replays
MAX_INDICATORS = 100_000
FEED_PAGE = 20_000
SCANNED_DAYS = 7

# Words of detection names that say what kind of thing it is, not which family.
_GENERIC = {
    "win", "win32", "win64", "w32", "w64", "unix", "linux", "elf", "andr", "android", "osx",
    "macos", "multi", "html", "js", "vbs", "doc", "xls", "pdf", "trojan", "worm", "virus",
    "malware", "downloader", "dropper", "backdoor", "ransomware", "ransom", "botnet", "exploit",
    "pua", "heuristics", "heuristic", "heur", "generic", "agent", "test", "file", "sig", "hdb",
    "ndb", "ldb", "packed", "infostealer", "spyware", "coinminer", "miner", "rat", "yara",
}  # fmt: skip
_SPLIT = re.compile(r"[.\-_/:!\s]+")
_NETWORK = (IndicatorType.IPV4, IndicatorType.IPV6, IndicatorType.DOMAIN, IndicatorType.URL)


def family_of(name: str) -> str:
    """The malware family in a detection name: Unix.Trojan.Mirai-9976014-0 → Mirai."""
    for token in _SPLIT.split(name):
        generic = token.lower() in _GENERIC
        if len(token) >= 3 and token.isalnum() and not token.isdigit() and not generic:
            return token
    return ""


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


# --- peers (on the parent) -------------------------------------------------------------------


def register_peer(
    session: Session, org: Organisation, public_key: str, name: str = "", actor: str = "system"
) -> SharingPeer:
    """Allow the server holding `public_key` to report for `org` (replaces an earlier key)."""
    public = keys.parse_public(public_key)
    kid = keys.key_id(public)
    other = session.scalars(sa.select(SharingPeer).where(SharingPeer.key_id == kid)).first()
    if other is not None and other.org_id != org.id:
        raise InputError(f"this key is already registered for another organisation ({other.name})")
    peer = session.scalars(sa.select(SharingPeer).where(SharingPeer.org_id == org.id)).first()
    if peer is None:
        peer = SharingPeer(org_id=org.id)
        session.add(peer)
    peer.name = name or org.name
    peer.public_key = keys.public_text(public)
    peer.key_id = kid
    session.flush()
    audit.record(session, actor, "sharing.peer", f"org:{org.code}", org.id, {"key_id": kid})
    return peer


def peers(session: Session) -> list[tuple[SharingPeer, Organisation]]:
    rows = session.execute(
        sa.select(SharingPeer, Organisation)
        .join(Organisation, Organisation.id == SharingPeer.org_id)
        .order_by(Organisation.path)
    ).all()
    return [(p, o) for p, o in rows]


def _peer(session: Session, kid: str) -> tuple[SharingPeer, Organisation]:
    peer = session.scalars(sa.select(SharingPeer).where(SharingPeer.key_id == kid)).first()
    if peer is None:
        raise EnvelopeError(f"unknown key {kid[:32]!r}: register the sender's public key first")
    org = session.get(Organisation, peer.org_id)
    assert org is not None  # the foreign key cascades
    return peer, org


# --- building a report (on the child) --------------------------------------------------------


def summary_figures(
    session: Session, under: Organisation, now: datetime | None = None
) -> dict[str, Any]:
    """Devices, scanned in the last 7 days, infected (an open finding), cleaned (findings, all
    remediated), coverage (% scanned) for `under`'s subtree."""
    now = now or datetime.now(UTC)
    in_tree = Device.org_id.in_(orgs.subtree_ids(session, under))
    recent = sa.literal(now - timedelta(days=SCANNED_DAYS), UTCDateTime())
    devices, scanned = session.execute(
        sa.select(
            sa.func.count(),
            sa.func.count().filter(Device.last_scan_at >= recent),
        ).where(in_tree)
    ).one()
    f = FindingRow
    f_tree = f.org_id.in_(orgs.subtree_ids(session, under))
    infected = session.scalar(
        sa.select(sa.func.count(sa.distinct(f.device_id))).where(f_tree, f.status == "open")
    )
    open_devices = sa.select(f.device_id).where(f_tree, f.status == "open")
    cleaned = session.scalar(
        sa.select(sa.func.count(sa.distinct(f.device_id))).where(
            f_tree, f.status == "remediated", f.device_id.not_in(open_devices)
        )
    )
    by_status = dict(
        session.execute(sa.select(f.status, sa.func.count()).where(f_tree).group_by(f.status)).all()
    )
    return {
        "devices": int(devices),
        "scanned": int(scanned),
        "infected": int(infected or 0),
        "cleaned": int(cleaned or 0),
        "coverage": round(100.0 * scanned / devices, 1) if devices else 0.0,
        "findings": {k: int(v) for k, v in sorted(by_status.items())},
    }


def _finding_values(row: Any) -> Iterable[tuple[str, str]]:
    """The indicators a finding tells of: its file's SHA256, and a C2 address or domain."""
    if row.sha256:
        yield IndicatorType.SHA256.value, row.sha256.lower()
    if row.kind == "c2" and row.indicator:
        try:
            itype, value = guess(row.indicator)
        except InputError:
            return
        if itype in _NETWORK:
            yield itype.value, value


def report_payload(
    session: Session,
    under: Organisation,
    *,
    period: str = "",
    since: datetime | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """What a child sends up: its figures, the indicators its findings revealed (hashes with
    names and families, C2 addresses), and how often each was seen (devices, times)."""
    now = now or datetime.now(UTC)
    f = FindingRow
    stmt = (
        sa.select(f.kind, f.name, f.indicator, f.sha256, f.device_id, f.observed_at)
        .where(f.org_id.in_(orgs.subtree_ids(session, under)), f.status != "false_positive")
        .order_by(f.observed_at.desc())
    )
    if since is not None:
        stmt = stmt.where(f.observed_at >= sa.literal(since, UTCDateTime()))
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for row in session.execute(stmt):
        for key in _finding_values(row):
            item = seen.get(key)
            if item is None:
                if len(seen) >= MAX_INDICATORS:
                    continue
                at = row.observed_at
                item = seen[key] = {"name": row.name, "first": at, "last": at, "devices": set()}
                item["count"] = 0
            item["first"] = min(item["first"], row.observed_at)
            item["last"] = max(item["last"], row.observed_at)
            item["devices"].add(row.device_id)
            item["count"] += 1
    out_ind: list[dict[str, Any]] = []
    out_seen: list[dict[str, Any]] = []
    for (itype, value), item in sorted(seen.items()):
        name, first, last = item["name"], _iso(item["first"]), _iso(item["last"])
        fam = family_of(name)
        out_ind.append(dict(type=itype, value=value, name=name, family=fam, first_seen=first, last_seen=last))  # fmt: skip
        out_seen.append(dict(type=itype, value=value, devices=len(item["devices"]), count=item["count"], last_seen=last))  # fmt: skip
    return {
        "kind": REPORT_KIND,
        "org": under.code,
        "org_name": under.name,
        "period": period or now.strftime("%Y-%m"),
        "generated_at": _iso(now),
        "summary": summary_figures(session, under, now),
        "indicators": out_ind,
        "sightings": out_seen,
    }


def _client(verify: bool | str, timeout: float) -> httpx.Client:
    # A CA bundle file for a private PKI (a ministry's own CA in front of the national server).
    context: bool | ssl.SSLContext = (
        ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify
    )
    return httpx.Client(verify=context, timeout=timeout, follow_redirects=False)


def _endpoint(base_url: str, path: str) -> str:
    if not base_url:
        raise InputError("no parent server URL: set QUET_UPSTREAM_URL or pass --url")
    return base_url.rstrip("/") + path


def push(
    session: Session,
    base_url: str,
    key: ServerKey,
    *,
    under: Organisation | None = None,
    period: str = "",
    since: datetime | None = None,
    verify: bool | str = True,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """Sign this server's report and POST it to the parent; returns the parent's answer."""
    under = under or orgs.root(session)
    if under is None:
        raise InputError("this server has no organisation yet")
    envelope = keys.seal(key, report_payload(session, under, period=period, since=since))
    with _client(verify, timeout) as client:
        response = client.post(_endpoint(base_url, "/api/v1/sharing/reports"), json=envelope)
    if response.status_code != 200:
        raise QuetError(
            f"the parent server refused the report: {response.status_code} {response.text[:300]}"
        )
    answer: dict[str, Any] = response.json()
    return answer


# --- receiving a report (on the parent) ------------------------------------------------------


@dataclass
class Received:
    envelope_id: str
    org_code: str
    imported: dict[str, Any]
    sightings: int
    rejected: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "accepted": True,
            "id": self.envelope_id,
            "org": self.org_code,
            "indicators": self.imported,
            "sightings": self.sightings,
            "rejected": self.rejected[:20],
        }


def _indicators_in(payload: dict[str, Any], source: str, log: IssueLog) -> list[Indicator]:
    items = payload.get("indicators", [])
    if not isinstance(items, list):
        raise EnvelopeError("payload.indicators must be a list", 400)
    if len(items) > MAX_INDICATORS:
        raise EnvelopeError(f"more than {MAX_INDICATORS} indicators in one report", 400)
    out = []
    for n, item in enumerate(items, 1):
        try:
            if not isinstance(item, dict):
                raise InputError("not an object")
            out.append(
                make(
                    str(item.get("type", "")),
                    str(item.get("value", "")),
                    name=str(item.get("name", ""))[:300],
                    family=str(item.get("family", ""))[:200],
                    source=source,
                    confidence=max(0, min(100, int(item.get("confidence", 80)))),
                    first_seen=_time(item.get("first_seen")),
                    last_seen=_time(item.get("last_seen")),
                    expires=_time(item.get("expires")),
                    tags=tuple(str(t)[:100] for t in item.get("tags") or ["shared"])[:20],
                    line=n,
                )
            )
        except (InputError, ValueError, TypeError) as exc:
            log.add(f"{source}:indicators", n, str(exc))
    return out


def _store_sightings(
    engine: sa.Engine, items: Any, where: str, log: IssueLog, now: datetime
) -> int:
    if not isinstance(items, list):
        return 0
    rows = []
    with engine.begin() as conn:
        for n, item in enumerate(items[:MAX_INDICATORS], 1):
            try:
                itype, value = str(item["type"]), str(item["value"])
                ind = make(itype, value)
                devices, count = int(item.get("devices", 0)), int(item.get("count", 0))
            except (InputError, ValueError, KeyError, TypeError) as exc:
                log.add(f"{where}:sightings", n, str(exc))
                continue
            ind_id = conn.execute(
                sa.select(indicators.c.id).where(
                    indicators.c.type == ind.type.value, indicators.c.value == ind.value
                )
            ).scalar_one_or_none()
            if ind_id is None:
                log.add(f"{where}:sightings", n, f"{ind.value} was not among the indicators")
                continue
            rows.append(
                {
                    "indicator_id": ind_id,
                    "kind": "seen",
                    "observed_at": _time(item.get("last_seen")) or now,
                    "where": where,
                    "note": f"{devices} thiết bị / devices, {count} lần / times",
                }
            )
        if rows:
            conn.execute(sa.insert(sightings), rows)
    return len(rows)


def receive(session: Session, envelope: Any, *, now: datetime | None = None) -> Received:
    """Verify a child's envelope and store it: indicators (source share:<code>), sightings and
    its figures. Raises EnvelopeError (with the HTTP status) and stores nothing when refused."""
    now = now or datetime.now(UTC)
    envelope = keys.check_shape(envelope)
    peer, org = _peer(session, envelope["key_id"])
    payload = keys.verify(envelope, keys.parse_public(peer.public_key), max_age=MAX_AGE, now=now)
    if payload.get("kind") != REPORT_KIND:
        raise EnvelopeError(f"not a report: kind {str(payload.get('kind'))[:40]!r}", 400)
    if payload.get("org") != org.code:
        raise EnvelopeError(
            f"the key of {org.code} cannot report for {str(payload.get('org'))[:40]!r}", 403
        )
    if session.get(ShareReceipt, envelope["id"]) is not None:
        raise EnvelopeError("this envelope was already received: refused as a replay", 409)
    source = f"share:{org.code}"
    log = IssueLog()
    inds = _indicators_in(payload, source, log)
    summary = payload.get("summary")
    receipt = ShareReceipt(
        id=envelope["id"],
        org_id=org.id,
        key_id=peer.key_id,
        sent_at=keys.sent_time(envelope),
        received_at=now,
        period=str(payload.get("period", ""))[:64],
        summary=summary if isinstance(summary, dict) else {},
    )
    session.add(receipt)
    peer.last_received = now
    audit.record(
        session, f"peer:{org.code}", "sharing.receive", f"envelope:{envelope['id']}", org.id
    )
    try:
        # Committed before the import so that two copies racing in cannot both be stored.
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise EnvelopeError("this envelope was already received: refused as a replay", 409) from exc
    engine = session.get_bind()
    assert isinstance(engine, sa.Engine)
    result = import_indicators(engine, inds, source=source)
    seen = _store_sightings(engine, payload.get("sightings", []), source, log, now)
    receipt.indicators = result.added + result.updated
    receipt.sightings = seen
    session.commit()
    return Received(envelope["id"], org.code, result.to_dict(), seen, [str(i) for i in log.issues])


def latest_summaries(session: Session, under: Organisation) -> list[dict[str, Any]]:
    """The newest figures each child server sent, for organisations in `under`'s subtree."""
    newest = (
        sa.select(ShareReceipt.org_id, sa.func.max(ShareReceipt.received_at).label("at"))
        .group_by(ShareReceipt.org_id)
        .subquery()
    )
    rows = session.execute(
        sa.select(ShareReceipt, Organisation)
        .join(
            newest,
            sa.and_(
                newest.c.org_id == ShareReceipt.org_id, newest.c.at == ShareReceipt.received_at
            ),
        )
        .join(Organisation, Organisation.id == ShareReceipt.org_id)
        .where(orgs.subtree_clause(under))
        .order_by(Organisation.path)
    ).all()
    return [
        {
            "org": o.code,
            "name": o.name,
            "period": r.period,
            "received_at": _iso(r.received_at),
            "summary": r.summary,
            "indicators": r.indicators,
            "sightings": r.sightings,
        }
        for r, o in rows
    ]


# --- the feed (parent → children) ------------------------------------------------------------


def feed(
    session: Session,
    key: ServerKey,
    *,
    since: datetime | None = None,
    after: int = 0,
    limit: int = FEED_PAGE,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A signed page of this server's active indicators changed after the cursor (since, after:
    the last page's updated_at and id — many share one updated_at, so the id breaks ties)."""
    now = now or datetime.now(UTC)
    root = orgs.root(session)
    i = indicators
    active = sa.and_(
        i.c.status == "active",
        sa.or_(i.c.expires.is_(None), i.c.expires > sa.literal(now, UTCDateTime())),
    )
    stmt = sa.select(i).where(active).order_by(i.c.updated_at, i.c.id).limit(limit + 1)
    if since is not None:
        at = sa.literal(since, UTCDateTime())
        stmt = stmt.where(
            sa.or_(i.c.updated_at > at, sa.and_(i.c.updated_at == at, i.c.id > after))
        )
    rows = session.execute(stmt).all()
    more = len(rows) > limit
    rows = rows[:limit]
    items = [
        {
            "type": r.type,
            "value": r.value,
            "name": r.name,
            "family": r.family,
            "confidence": r.confidence,
            "first_seen": _iso(r.first_seen),
            "last_seen": _iso(r.last_seen),
            "expires": _iso(r.expires),
            "tags": list(r.tags or []),
        }
        for r in rows
    ]
    cursor = (
        {"since": _iso(rows[-1].updated_at), "after": rows[-1].id}
        if rows
        else {
            "since": _iso(since),
            "after": after,
        }
    )
    payload = {
        "kind": FEED_KIND,
        "org": root.code if root else "",
        "indicators": items,
        "next": cursor,
        "more": more,
    }
    return keys.seal(key, payload, sent_at=now)


def feed_request_header(key: ServerKey, since: str | None, after: int) -> str:
    """The child proves who asks for the feed: a small envelope it signs, sent as a header."""
    env = keys.seal(key, {"kind": FEED_REQUEST_KIND, "since": since, "after": after})
    return base64.urlsafe_b64encode(keys.canonical(env)).decode()


def check_feed_request(session: Session, header: str, now: datetime | None = None) -> Organisation:
    """The organisation of the registered child whose signed request this is."""
    try:
        envelope = json.loads(base64.urlsafe_b64decode(header.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise EnvelopeError(f"{FEED_HEADER} is not base64 JSON", 400) from exc
    envelope = keys.check_shape(envelope)
    peer, org = _peer(session, envelope["key_id"])
    payload = keys.verify(envelope, keys.parse_public(peer.public_key), max_age=MAX_AGE, now=now)
    if payload.get("kind") != FEED_REQUEST_KIND:
        raise EnvelopeError("not a feed request", 400)
    return org


@dataclass
class Pulled:
    pages: int = 0
    read: int = 0
    added: int = 0
    updated: int = 0
    rejected: int = 0
    cursor: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def pull_feed(
    session: Session,
    base_url: str,
    parent_key: str,
    key: ServerKey,
    *,
    cursor: dict[str, Any] | None = None,
    verify: bool | str = True,
    timeout: float = 120.0,
    page: int = FEED_PAGE,
    max_pages: int = 1000,
) -> Pulled:
    """Fetch the parent's feed page by page from `cursor`, verify each page with the parent's
    public key (configured once), and import it (source feed:<parent code>). A page that fails
    verification stops the pull with EnvelopeError before anything of it is stored."""
    public = keys.parse_public(parent_key, "parent key")
    engine = session.get_bind()
    assert isinstance(engine, sa.Engine)
    cursor = dict(cursor or {})
    out = Pulled(cursor=cursor)
    url = _endpoint(base_url, "/api/v1/sharing/feed")
    with _client(verify, timeout) as client:
        while out.pages < max_pages:
            since, after = cursor.get("since"), int(cursor.get("after") or 0)
            params: dict[str, str | int] = {"after": after, "limit": page}
            if since:
                params["since"] = since
            headers = {FEED_HEADER: feed_request_header(key, since, after)}
            response = client.get(url, params=params, headers=headers)
            if response.status_code != 200:
                raise QuetError(
                    f"the parent server refused the feed: {response.status_code} {response.text[:300]}"
                )
            payload = keys.verify(response.json(), public, max_age=MAX_AGE)
            if payload.get("kind") != FEED_KIND:
                raise EnvelopeError("the parent's answer is not a feed", 400)
            out.source = f"feed:{payload.get('org') or 'parent'}"
            log = IssueLog()
            inds = _indicators_in(payload, out.source, log)
            result: ImportSummary = import_indicators(engine, inds, source=out.source, issues=log)
            out.pages += 1
            out.read += result.read
            out.added += result.added
            out.updated += result.updated
            out.rejected += result.rejected
            nxt = payload.get("next")
            if isinstance(nxt, dict):
                cursor = {"since": nxt.get("since"), "after": int(nxt.get("after") or 0)}
                out.cursor = cursor
            if not payload.get("more"):
                break
    return out
