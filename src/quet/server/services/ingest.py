"""Scan reports into the database: validation, idempotent writes by the report's UUID (many
reports per transaction), finding status changes, and the group-commit batcher the API uses."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal
from uuid import UUID

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from quet.errors import InputError, QuetError
from quet.server.services import audit, devices, rollups
from quet.store.models import Device, FindingRow, Organisation, ScanReport
from quet.store.models.device import FINDING_STATUSES

if TYPE_CHECKING:
    from quet.server.db import Database
    from quet.server.deps import Principal

MAX_FINDINGS = 100_000
FindingStatus = Literal["open", "remediated", "false_positive"]
_INT32 = 2**31 - 1
_INT64 = 2**63 - 1


class NotFound(QuetError):
    """No such record, or not in the asker's part of the tree."""


class Forbidden(QuetError):
    """The asker may see this but not change it."""


# -- validation ---------------------------------------------------------------------------------
class FindingIn(BaseModel):
    """One finding of docs/scan-json.md; unknown fields are ignored (later schema versions)."""

    model_config = ConfigDict(extra="ignore")

    kind: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=2000)
    path: str = Field("", max_length=65536)
    indicator: str = Field("", max_length=65536)
    source: str = Field("", max_length=65536)
    score: int = Field(100, ge=-_INT32, le=_INT32)
    sha256: str = Field("", max_length=64)
    pid: int | None = Field(None, ge=0, le=_INT64)
    detail: str = Field("", max_length=65536)
    action: str = Field("reported", max_length=32)
    quarantine_id: str = Field("", max_length=200)


def _time_ok(value: datetime) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if not 1970 <= value.year <= 9000:
        raise ValueError("time out of range (1970–9000)")
    return value.astimezone(UTC)


class ReportIn(BaseModel):
    """The scanner's JSON report (ScanResult.to_dict()), the fields the server keeps."""

    model_config = ConfigDict(extra="ignore")

    schema_version: int = Field(1, ge=1, le=1000)
    id: UUID
    started: datetime
    finished: datetime | None = None
    hostname: str = Field("", max_length=255)
    os: str = Field("", max_length=200)
    signatures: dict[str, Any] = Field(default_factory=dict)
    files_scanned: int = Field(0, ge=0, le=_INT64)
    bytes_scanned: int = Field(0, ge=0, le=_INT64)
    errors_count: int = Field(0, ge=0, le=_INT32)
    interrupted: bool = False
    findings: list[FindingIn] = Field(default_factory=list, max_length=MAX_FINDINGS)

    @field_validator("finished", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("started", "finished")
    @classmethod
    def _in_range(cls, value: datetime | None) -> datetime | None:
        return None if value is None else _time_ok(value)


def explain(exc: ValidationError, limit: int = 5) -> str:
    """A validation error in one line: field path and what is wrong, for the first few."""
    parts = []
    for err in exc.errors()[:limit]:
        where = ".".join(str(p) for p in err["loc"]) or "report"
        parts.append(f"{where}: {err['msg']}")
    more = exc.error_count() - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def parse(data: bytes | str | dict[str, Any]) -> ReportIn:
    """Validate a report (JSON text or an already-decoded dict); InputError says what is wrong."""
    try:
        if isinstance(data, dict):
            return ReportIn.model_validate(data)
        return ReportIn.model_validate_json(data)
    except ValidationError as exc:
        raise InputError(f"not a Quét scan report: {explain(exc)}") from exc


# -- preparing rows -----------------------------------------------------------------------------
def _clean(text: str, limit: int | None = None) -> str:
    # PostgreSQL text cannot hold NUL; a hostile path must not fail the whole batch.
    text = text.replace("\x00", "") if "\x00" in text else text
    return text[:limit] if limit else text


def _clean_json(value: Any) -> Any:
    if isinstance(value, str):
        return _clean(value)
    if isinstance(value, dict):
        return {_clean(str(k)): _clean_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean_json(v) for v in value]
    return value


@dataclass(slots=True)
class Prepared:
    """A validated report ready to write: the scan row's values and its findings' rows."""

    id: str
    device_id: int
    org_id: int
    started: datetime
    finished: datetime
    files_scanned: int
    bytes_scanned: int
    errors_count: int
    interrupted: bool
    signatures: dict[str, Any]
    # (kind, name, path, indicator, sha256, score, action)
    findings: list[tuple[str, str, str, str, str, int, str]]


def prepare(report: ReportIn, device_id: int, org_id: int, *, has_nul: bool = True) -> Prepared:
    """The rows of a validated report. `has_nul=False` (the JSON text held no \\u0000, the only
    way a JSON string carries NUL) skips the NUL scrubbing of every string."""
    if not has_nul:
        return Prepared(
            id=str(report.id),
            device_id=device_id,
            org_id=org_id,
            started=report.started,
            finished=report.finished or report.started,
            files_scanned=report.files_scanned,
            bytes_scanned=report.bytes_scanned,
            errors_count=report.errors_count,
            interrupted=report.interrupted,
            signatures=report.signatures,
            # kind, sha256 and action are already within their column widths (FindingIn).
            findings=[
                (f.kind, f.name[:300], f.path, f.indicator, f.sha256, f.score, f.action)
                for f in report.findings
            ],
        )
    return Prepared(
        id=str(report.id),
        device_id=device_id,
        org_id=org_id,
        started=report.started,
        finished=report.finished or report.started,
        files_scanned=report.files_scanned,
        bytes_scanned=report.bytes_scanned,
        errors_count=report.errors_count,
        interrupted=report.interrupted,
        signatures=_clean_json(report.signatures),
        findings=[
            (
                _clean(f.kind, 32),
                _clean(f.name, 300),
                _clean(f.path),
                _clean(f.indicator),
                _clean(f.sha256, 64),
                f.score,
                _clean(f.action, 32),
            )
            for f in report.findings
        ],
    )


# -- writing ------------------------------------------------------------------------------------
_PG_SCANS = """
INSERT INTO scan_reports (id, device_id, org_id, started, finished, received_at, files_scanned,
    bytes_scanned, findings_count, errors_count, interrupted, signatures)
SELECT t.id, t.dev, t.org, t.st, t.fi, now(), t.fs, t.bs, t.fc, t.ec, t.intr, t.sig::jsonb
FROM unnest(%s::varchar[], %s::bigint[], %s::bigint[], %s::timestamptz[], %s::timestamptz[],
    %s::bigint[], %s::bigint[], %s::int[], %s::int[], %s::bool[], %s::text[])
    AS t(id, dev, org, st, fi, fs, bs, fc, ec, intr, sig)
ON CONFLICT (id) DO NOTHING
RETURNING id
"""
_PG_FINDINGS = (
    "COPY findings (scan_id, device_id, org_id, observed_at, kind, name, path, indicator, sha256,"
    " score, action, status) FROM STDIN"
)
# The newest report sets the device's open findings; an older one arriving late only adds history.
_PG_DEVICES = """
UPDATE devices AS d SET
    open_findings = CASE WHEN d.last_scan_at IS NULL OR v.t >= d.last_scan_at
                         THEN v.n ELSE d.open_findings END,
    last_scan_at = GREATEST(d.last_scan_at, v.t),
    last_seen = now()
FROM unnest(%s::bigint[], %s::timestamptz[], %s::int[]) AS v(id, t, n)
WHERE d.id = v.id
"""


def write_batch(session: Session, items: Sequence[Prepared]) -> list[bool]:
    rollups.mark_dirty({item.org_id for item in items})
    return _write_batch(session, items)


def _write_batch(session: Session, items: Sequence[Prepared]) -> list[bool]:
    """Write reports in the session's transaction; for each item, True if its id was already
    stored (or repeated earlier in `items`). The caller commits."""
    first: dict[str, Prepared] = {}
    for item in items:
        first.setdefault(item.id, item)
    unique = sorted(first.values(), key=lambda p: p.id)  # one lock order for concurrent writers
    if not unique:
        return []
    if session.get_bind().dialect.name == "postgresql":
        new = _write_pg(session, unique)
    else:
        new = _write_generic(session, unique)
    fresh = [p for p in unique if p.id in new]
    _after(session, fresh)
    seen: set[str] = set()
    out = []
    for item in items:
        out.append(item.id not in new or item.id in seen)
        seen.add(item.id)
    return out


def _device_updates(fresh: Sequence[Prepared]) -> dict[int, tuple[datetime, int]]:
    latest: dict[int, tuple[datetime, int]] = {}
    for p in fresh:
        have = latest.get(p.device_id)
        if have is None or p.finished >= have[0]:
            latest[p.device_id] = (p.finished, len(p.findings))
    return latest


def _write_pg(session: Session, items: Sequence[Prepared]) -> set[str]:
    import json

    raw: Any = session.connection().connection.dbapi_connection  # psycopg's, for COPY
    with raw.cursor() as cur:
        # Devices first, in id order: concurrent server processes then never deadlock on them.
        dev_ids = sorted({p.device_id for p in items})
        cur.execute(
            "SELECT id FROM devices WHERE id = ANY(%s) ORDER BY id FOR NO KEY UPDATE", (dev_ids,)
        )
        cols: list[list[Any]] = [[] for _ in range(11)]
        for p in items:
            for col, value in zip(
                cols,
                (p.id, p.device_id, p.org_id, p.started, p.finished, p.files_scanned,
                 p.bytes_scanned, len(p.findings), p.errors_count, p.interrupted,
                 json.dumps(p.signatures, ensure_ascii=False)),
                strict=True,
            ):  # fmt: skip
                col.append(value)
        cur.execute(_PG_SCANS, cols)
        new = {row[0] for row in cur.fetchall()}
        fresh = [p for p in items if p.id in new]
        if any(p.findings for p in fresh):
            with cur.copy(_PG_FINDINGS) as copy:
                for p in fresh:
                    for f in p.findings:
                        copy.write_row((p.id, p.device_id, p.org_id, p.finished, *f, "open"))
        latest = _device_updates(fresh)
        if latest:
            ids = list(latest)
            cur.execute(
                _PG_DEVICES,
                (ids, [latest[i][0] for i in ids], [latest[i][1] for i in ids]),
            )
    return new


def _write_generic(session: Session, items: Sequence[Prepared]) -> set[str]:
    conn = session.connection()
    now = datetime.now(UTC)
    new: set[str] = set()
    for p in items:
        stmt = (
            sqlite_insert(ScanReport)
            .values(
                id=p.id,
                device_id=p.device_id,
                org_id=p.org_id,
                started=p.started,
                finished=p.finished,
                received_at=now,
                files_scanned=p.files_scanned,
                bytes_scanned=p.bytes_scanned,
                findings_count=len(p.findings),
                errors_count=p.errors_count,
                interrupted=p.interrupted,
                signatures=p.signatures,
            )
            .on_conflict_do_nothing(index_elements=["id"])
        )
        if conn.execute(stmt).rowcount == 1:
            new.add(p.id)
    names = ("kind", "name", "path", "indicator", "sha256", "score", "action")
    rows = [
        {"scan_id": p.id, "device_id": p.device_id, "org_id": p.org_id,
         "observed_at": p.finished, "status": "open", **dict(zip(names, f, strict=True))}
        for p in items if p.id in new for f in p.findings
    ]  # fmt: skip
    if rows:
        conn.execute(sa.insert(FindingRow), rows)
    for device_id, (when, count) in _device_updates([p for p in items if p.id in new]).items():
        newest = sa.or_(Device.last_scan_at.is_(None), Device.last_scan_at <= when)
        conn.execute(
            sa.update(Device)
            .where(Device.id == device_id)
            .values(
                open_findings=sa.case((newest, count), else_=Device.open_findings),
                last_scan_at=sa.case((newest, when), else_=Device.last_scan_at),
                last_seen=now,
            )
        )
    return new


# (database, organisation) -> when it was last marked deployed by this process: the marking
# costs a few queries, and at thousands of reports a second one per organisation now and then is
# plenty (it only records the first scan of a running campaign).
_MARKED: dict[tuple[str, int], float] = {}
MARK_EVERY = 10.0


def _after(session: Session, fresh: Sequence[Prepared]) -> None:
    """Campaign progress: an organisation with a scanned device has deployed the campaign."""
    if not fresh:
        return
    db = str(session.get_bind().engine.url)
    now = time.monotonic()
    first_scan: dict[int, datetime] = {}
    for p in fresh:
        if _MARKED.get((db, p.org_id), -MARK_EVERY) > now - MARK_EVERY:
            continue
        if p.org_id not in first_scan or p.finished < first_scan[p.org_id]:
            first_scan[p.org_id] = p.finished
    if not first_scan:
        return
    try:
        campaigns = importlib.import_module("quet.server.services.campaigns")
    except ModuleNotFoundError:
        return
    mark = getattr(campaigns, "mark_deployed", None)
    if mark is None:
        return
    for org_id, when in sorted(first_scan.items()):
        mark(session, org_id, when)
        _MARKED[(db, org_id)] = now
    if len(_MARKED) > 100_000:
        _MARKED.clear()


# -- the service functions ----------------------------------------------------------------------
def ingest(session: Session, device: Device, report: dict[str, Any]) -> tuple[str, bool]:
    """Store one report from an enrolled device: (its id, True if it was already stored)."""
    item = prepare(parse(report), device.id, device.org_id)
    (duplicate,) = write_batch(session, [item])
    session.expire(device)  # the UPDATE above changed last_scan_at / open_findings
    return item.id, duplicate


def upload(
    session: Session, principal: Principal, org: Organisation, report: dict[str, Any]
) -> tuple[str, bool]:
    """A `quet scan --json` file brought by a person for a machine without an agent: the
    device is found by hostname in `org` (or created, uploaded_only)."""
    if not principal.can_change(org):
        raise Forbidden(f"you may not upload scans for {org.code}")
    parsed = parse(report)
    device = devices.device_for_upload(session, org, _clean(parsed.hostname), _clean(parsed.os))
    item = prepare(parsed, device.id, org.id)
    (duplicate,) = write_batch(session, [item])
    if not duplicate:
        audit.record(session, principal.actor, "scan.upload", f"scan:{item.id}", org.id,
                     {"hostname": device.hostname, "findings": len(item.findings)})  # fmt: skip
    session.expire(device)
    return item.id, duplicate


def set_finding_status(
    session: Session, principal: Principal, finding_id: int, status: str
) -> FindingRow:
    """Mark a finding remediated, a false positive, or open again (scoped to the asker's tree)."""
    if status not in FINDING_STATUSES:
        raise InputError(f"status {status!r}: expected one of {', '.join(FINDING_STATUSES)}")
    row = session.get(FindingRow, finding_id)
    org = session.get(Organisation, row.org_id) if row is not None else None
    if row is None or org is None or not principal.can_see(org):
        raise NotFound(f"no finding {finding_id}")
    if not principal.can_change(org):
        raise Forbidden(f"you may not change findings of {org.code}")
    if row.status == status:
        return row
    device = session.get(Device, row.device_id)
    # Only findings of the device's latest scan are counted in its open_findings.
    latest = device.last_scan_at if device is not None else None
    if device is not None and latest is not None and row.observed_at >= latest:
        delta = 1 if status == "open" else (-1 if row.status == "open" else 0)
        device.open_findings = max(0, device.open_findings + delta)
    previous = row.status
    rollups.mark_dirty([org.id])
    row.status = status
    row.remediated_at = None if status == "open" else datetime.now(UTC)
    audit.record(session, principal.actor, "finding.status", f"finding:{finding_id}", org.id,
                 {"from": previous, "to": status})  # fmt: skip
    return row


# -- group commit -------------------------------------------------------------------------------
class Batcher:
    """Gathers reports from concurrent requests and writes them many to a transaction; each
    request's future resolves only after the commit, so a 2xx answer means the report is durable."""

    def __init__(self, db: Database, *, max_batch: int = 500, flushers: int = 1) -> None:
        self.db = db
        self.max_batch = max_batch
        self.queue: asyncio.Queue[tuple[Prepared, asyncio.Future[bool]]] = asyncio.Queue()
        self.loop = asyncio.get_running_loop()
        self._idle: list[sa.Connection] = []  # kept between batches, one per busy flusher
        self.tasks = [self.loop.create_task(self._run()) for _ in range(flushers)]
        self.batches = 0
        self.reports = 0

    async def submit(self, item: Prepared) -> bool:
        """Queue one report; returns True when it was a duplicate, once committed."""
        future: asyncio.Future[bool] = self.loop.create_future()
        self.queue.put_nowait((item, future))  # unbounded: never waits
        return await future

    async def _run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while len(batch) < self.max_batch and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            outcomes: list[bool | Exception]
            try:
                outcomes = await asyncio.to_thread(self._flush, [item for item, _ in batch])
            except Exception as exc:  # keep serving: this batch's requests get the error
                outcomes = [exc] * len(batch)
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():  # the client went away
                    continue
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

    def _flush(self, items: list[Prepared]) -> list[bool | Exception]:
        self.batches += 1
        self.reports += len(items)
        try:
            return list(self._write(items))
        except Exception:
            if len(items) == 1:
                raise
        # One bad report (a device deleted meanwhile, say) must not fail the others with it.
        out: list[bool | Exception] = []
        for item in items:
            try:
                out.extend(self._write([item]))
            except Exception as exc:
                out.append(exc)
        return out

    def _checkout(self) -> sa.Connection | None:
        """A kept connection on PostgreSQL (None elsewhere: use the pool). A pool checkout pings
        the server first, a round trip per batch for nothing."""
        if self.db.engine.dialect.name != "postgresql":
            return None
        try:
            return self._idle.pop()
        except IndexError:
            return self.db.engine.connect()

    @staticmethod
    def _discard(conn: sa.Connection | None) -> None:
        if conn is not None:
            # A broken connection is being thrown away: failing to close it changes nothing.
            with contextlib.suppress(Exception):
                conn.close()

    def _write(self, items: list[Prepared]) -> list[bool]:
        for attempt in range(5):
            conn = self._checkout()
            try:
                session = self.db.sessions() if conn is None else Session(bind=conn)
                with session, session.begin():
                    out = write_batch(session, items)
            except BaseException as exc:
                # After an error the connection may be broken: the next batch takes a fresh one.
                self._discard(conn)
                if not isinstance(exc, sa.exc.OperationalError):
                    raise
                # Deadlock or serialisation failure with another server process: try again.
                code = getattr(exc.orig, "sqlstate", "")
                if code not in ("40P01", "40001") or attempt == 4:
                    raise
                time.sleep(0.01 * (attempt + 1))
            else:
                if conn is not None:
                    self._idle.append(conn)
                return out
        raise AssertionError("unreachable")

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.release()

    def release(self) -> None:
        """Close the connections kept between batches."""
        while self._idle:
            self._discard(self._idle.pop())
