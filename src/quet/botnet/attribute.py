"""A botnet import from end to end: read feeds, keep the new (ip, family, day) events, attribute
them and recompute the statistics of the periods they touch (DuckDB or Spark, one SQL), hand
the results to the server store (`quet.server.services.botnet`), commit, then publish the new
events into the event store."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from quet.botnet import duck, sql
from quet.botnet.eventstore import EventStore
from quet.botnet.feeds import FeedRead, read_feed
from quet.botnet.geo import mmdb_ranges, org_ranges
from quet.botnet.sql import RANGE_SCHEMA
from quet.errors import InputError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

ENGINES = ("duckdb", "spark")
MAX_ERRORS = 100


@dataclass
class FileReport:
    """One feed file's import: what `record_import` stores."""

    file: str
    sha256: str
    format: str
    rows: int
    bad_rows: int
    duplicates: int
    new_events: int
    attributed: int
    unattributed: int
    first_day: date | None
    last_day: date | None
    errors: list[str] = field(default_factory=list)
    import_id: int | None = None

    def run_dict(self) -> dict[str, Any]:
        return {
            "file": self.file[-500:],
            "sha256": self.sha256,
            "format": self.format,
            "rows": self.rows,
            "bad_rows": self.bad_rows,
            "duplicates": self.duplicates,
            "new_events": self.new_events,
            "attributed": self.attributed,
            "unattributed": self.unattributed,
            "first_day": self.first_day,
            "last_day": self.last_day,
            "errors": self.errors[:MAX_ERRORS],
        }


@dataclass
class ImportReport:
    files: list[FileReport]
    engine: str
    ip_rows: int = 0
    stats_rows: int = 0
    seconds: float = 0.0
    attribute_seconds: float = 0.0
    bad_ranges: list[str] = field(default_factory=list)
    # files that could not be read at all: (file, why); the others are imported
    failed: list[tuple[str, str]] = field(default_factory=list)
    # the MaxMind ranges used per kind ('asn', 'geo'): "given: PATH", "saved: DATE" or "none"
    maxmind: dict[str, str] = field(default_factory=dict)

    @property
    def events(self) -> int:
        return sum(f.rows - f.bad_rows for f in self.files)


# -- pure helpers ------------------------------------------------------------------------------


def periods_of(days: Sequence[date]) -> tuple[pa.Table, date | None, date | None]:
    """The statistics periods that `days` touch (each day, its ISO week, its month) and the
    span of days they cover, which must all be read to recount them."""
    rows: set[tuple[str, date]] = set()
    first: date | None = None
    last: date | None = None
    for day in set(days):
        week = day - timedelta(days=day.weekday())
        month = day.replace(day=1)
        month_end = (month + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        rows |= {("day", day), ("week", week), ("month", month)}
        lo, hi = min(week, month), max(week + timedelta(days=6), month_end)
        first = lo if first is None else min(first, lo)
        last = hi if last is None else max(last, hi)
    ordered = sorted(rows, key=lambda r: (r[0], r[1]))
    table = pa.table(
        {"period": [r[0] for r in ordered], "start": [r[1] for r in ordered]},
        schema=sql.PERIOD_SCHEMA,
    )
    return table, first, last


def org_table(orgs: Sequence[tuple[int, int | None, str, str, str]]) -> pa.Table:
    """(id, parent_id, name, kind, sector) rows → (org_id, name, sector, province): the sector is
    the organisation's own or its nearest ancestor's non-empty one, the province the name of the
    organisation itself or its nearest ancestor of kind 'province'."""
    by_id = {o[0]: o for o in orgs}

    def up(org_id: int | None, pick: Any) -> str:
        seen = set()
        while org_id is not None and org_id in by_id and org_id not in seen:
            seen.add(org_id)
            found = pick(by_id[org_id])
            if found:
                return str(found)
            org_id = by_id[org_id][1]
        return ""

    ids = sorted(by_id)
    return pa.table(
        {
            "org_id": ids,
            "name": [by_id[i][2] for i in ids],
            "sector": [up(i, lambda o: o[4]) for i in ids],
            "province": [up(i, lambda o: o[2] if o[3] == "province" else "") for i in ids],
        },
        schema=sql.ORG_SCHEMA,
    )


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


# -- the MaxMind ranges kept between imports ------------------------------------------------------


def _saved_path(folder: Path, kind: str) -> Path:
    return folder / f"{kind}.parquet"


def maxmind_ranges(
    folder: Path, asn_db: Path | None, geo_db: Path | None
) -> tuple[list[pa.Table], dict[str, pa.Table], dict[str, str]]:
    """The ASN and geo range tables for this import: from the databases given, else the ones
    saved by an earlier import (so that an import without --asn-db/--geo-db never recounts the
    touched days without ISP and province). Returns the tables, those to save after the commit
    and, per kind, what was used."""
    tables: list[pa.Table] = []
    to_save: dict[str, pa.Table] = {}
    used: dict[str, str] = {}
    for kind, db in (("asn", asn_db), ("geo", geo_db)):
        if db is not None:
            table = mmdb_ranges(Path(db), kind)
            tables.append(table)
            to_save[kind] = table
            used[kind] = f"given: {db}"
            continue
        saved = _saved_path(folder, kind)
        if saved.is_file():
            try:
                tables.append(pq.read_table(saved, schema=RANGE_SCHEMA))
            except (pa.ArrowInvalid, OSError) as exc:
                raise InputError(
                    f"cannot read the saved {kind} ranges: {exc}", path=str(saved)
                ) from exc
            when = date.fromtimestamp(saved.stat().st_mtime).isoformat()
            used[kind] = f"saved: {saved} ({when})"
        else:
            used[kind] = "none"
    return tables, to_save, used


def save_ranges(folder: Path, tables: dict[str, pa.Table]) -> None:
    """Keep the flattened ranges of the databases given for the next imports."""
    if not tables:
        return
    folder.mkdir(parents=True, exist_ok=True)
    for kind, table in tables.items():
        target = _saved_path(folder, kind)
        tmp = target.with_suffix(".tmp")
        pq.write_table(table, tmp)
        tmp.replace(target)


# -- the database side ------------------------------------------------------------------------


def registered(session: Session) -> tuple[pa.Table, pa.Table, list[str]]:
    """The organisations (with inherited sector and province) and their registered ranges."""
    import sqlalchemy as sa

    from quet.store.models import Organisation, OrgNetwork

    query = sa.select(
        Organisation.id,
        Organisation.parent_id,
        Organisation.name,
        Organisation.kind,
        Organisation.sector,
    )
    orgs = [
        (int(i), None if p is None else int(p), str(n), str(k), str(sec or ""))
        for i, p, n, k, sec in session.execute(query)
    ]
    nets = [
        (int(r[0]), str(r[1]))
        for r in session.execute(sa.select(OrgNetwork.org_id, OrgNetwork.cidr))
    ]
    ranges, bad = org_ranges(nets)
    return org_table(orgs), ranges, bad


def run_engine(
    inputs: duck.Inputs, engine: str = "duckdb", threads: int | None = None
) -> dict[str, pa.Table]:
    if engine == "duckdb":
        return duck.run(inputs, threads=threads)
    if engine == "spark":
        from quet.botnet import spark

        return spark.run(inputs)
    raise InputError(f"unknown engine {engine!r}: use one of {', '.join(ENGINES)}")


def import_files(
    session: Session,
    files: Sequence[Path],
    asn_db: Path | None = None,
    geo_db: Path | None = None,
    engine: str = "duckdb",
    store: EventStore | None = None,
    threads: int | None = None,
) -> ImportReport:
    """Import feed files into the event store and the server database (committed)."""
    from quet.server.services import botnet as services

    started = time.perf_counter()
    if engine not in ENGINES:
        raise InputError(f"unknown engine {engine!r}: use one of {', '.join(ENGINES)}")
    store = store or EventStore()
    report = ImportReport(files=[], engine=engine)
    reads: list[FeedRead] = []
    for name in files:
        try:
            reads.append(read_feed(Path(name)))
        except InputError as exc:  # one unreadable file never loses the others
            why = str(exc)
            prefix = f"{exc.path}: " if exc.path else ""
            report.failed.append((str(name), why[len(prefix) :] if why.startswith(prefix) else why))
    ranges_folder = store.root.parent / "ranges"
    extra, to_save, report.maxmind = maxmind_ranges(ranges_folder, asn_db, geo_db)
    with store.locked():
        con = duck.connect(threads)
        try:
            tables = [
                r.events.append_column("src", pa.array([i] * r.events.num_rows, pa.int64()))
                for i, r in enumerate(reads)
            ]
            incoming = pa.concat_tables(tables) if tables else sql.FRESH_SCHEMA.empty_table()
            con.register("incoming", incoming)
            fresh = store.new_events(con, "incoming")
            con.unregister("incoming")
            days = [d for d in pc.unique(fresh.column("day")).to_pylist() if d is not None]
            out: dict[str, pa.Table] = {}
            if fresh.num_rows:
                periods, first, last = periods_of(days)
                assert first is not None and last is not None
                orgs, ranges, report.bad_ranges = registered(session)
                ranges = pa.concat_tables([ranges, *extra])
                inputs = duck.Inputs(store.files(first, last), fresh, ranges, orgs, periods)
                t0 = time.perf_counter()
                out = run_engine(inputs, engine, threads)
                report.attribute_seconds = time.perf_counter() - t0
            staged = store.stage(con, fresh)
        finally:
            con.close()
        counts = {r["src"]: r for r in out["counts"].to_pylist()} if out else {}
        for i, r in enumerate(reads):
            c = counts.get(i, {"new_events": 0, "attributed": 0})
            days_col = r.events.column("day")
            report.files.append(
                FileReport(
                    file=r.path,
                    sha256=_sha256(Path(r.path)),
                    format=r.format,
                    rows=r.rows,
                    bad_rows=r.bad_rows,
                    duplicates=r.events.num_rows - c["new_events"],
                    new_events=c["new_events"],
                    attributed=c["attributed"],
                    unattributed=c["new_events"] - c["attributed"],
                    first_day=pc.min(days_col).as_py() if r.events.num_rows else None,
                    last_day=pc.max(days_col).as_py() if r.events.num_rows else None,
                    errors=[str(i) for i in r.issues.issues[:MAX_ERRORS]],
                )
            )
        try:
            if out:
                report.ip_rows = services.apply_ips(session, out["ip_rows"])
                services.apply_stats(session, out["stats"])
                report.stats_rows = out["stats"].num_rows
            for f in report.files:
                f.import_id = services.record_import(session, f.run_dict())
            session.commit()
        except BaseException:
            session.rollback()
            staged.discard()
            raise
        staged.publish()
        save_ranges(ranges_folder, to_save)
    report.seconds = time.perf_counter() - started
    return report
