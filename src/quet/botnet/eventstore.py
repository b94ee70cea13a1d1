"""The botnet event store: one row per (ip, family, day) ever imported, as a Parquet dataset
partitioned by day (`$QUET_HOME/botnet/events/day=YYYY-MM-DD/part-*.parquet`).

New events are de-duplicated against what is stored for their days, written to a staging
folder, and moved into place only after the database has committed the import (`Staged`), so a
failed import can be run again without its events counting as duplicates."""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa

from quet import paths
from quet.botnet.feeds import EVENT_SCHEMA
from quet.errors import QuetError

STORED_COLUMNS = "ip, family, day, hi, lo"


class StoreBusy(QuetError):
    """Another import is writing the event store."""


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def parquet_sql(files: list[str]) -> str:
    """A DuckDB relation of stored events (ip, family, day, hi, lo) in `files`."""
    if not files:
        return (
            "(select NULL::VARCHAR as ip, NULL::VARCHAR as family, NULL::DATE as day, "
            "NULL::BIGINT as hi, NULL::BIGINT as lo where false)"
        )
    listed = ", ".join(_sql_str(f) for f in files)
    return (
        f"(select {STORED_COLUMNS} from read_parquet([{listed}], hive_partitioning = true, "
        "hive_types = {'day': DATE}))"
    )


class Staged:
    """New events written beside the store, not yet part of it."""

    def __init__(self, store: EventStore, folder: Path) -> None:
        self.store = store
        self.folder = folder

    def publish(self) -> int:
        """Move the staged files into the store; returns how many files."""
        moved = 0
        for file in sorted(self.folder.rglob("*.parquet")):
            target = self.store.root / file.relative_to(self.folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            file.replace(target)
            moved += 1
        shutil.rmtree(self.folder, ignore_errors=True)
        return moved

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


class EventStore:
    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root else paths.sub("botnet") / "events"
        self.root.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """One writer at a time (imports from two shells would double-count days)."""
        with open(self.root / ".lock", "w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise StoreBusy(f"another botnet import is running ({self.root})") from exc
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def days(self) -> list[date]:
        out = []
        for folder in self.root.glob("day=*"):
            try:
                out.append(date.fromisoformat(folder.name[4:]))
            except ValueError:
                continue
        return sorted(out)

    def files(self, first: date, last: date) -> list[str]:
        """The Parquet files of the days first..last (inclusive)."""
        out: list[str] = []
        for day in self.days():
            if first <= day <= last:
                out.extend(str(p) for p in sorted((self.root / f"day={day}").glob("*.parquet")))
        return out

    def files_of(self, days: list[date]) -> list[str]:
        wanted = set(days)
        return [f for d in sorted(wanted) for f in self.files(d, d)]

    def read(self, first: date, last: date) -> pa.Table:
        con = duckdb.connect()
        try:
            return con.sql(
                f"select * from {parquet_sql(self.files(first, last))} order by day, ip, family"
            ).to_arrow_table()
        finally:
            con.close()

    def new_events(self, con: duckdb.DuckDBPyConnection, events: str) -> pa.Table:
        """The distinct (ip, family, day) rows of the relation `events` (ip, family, day, hi, lo,
        src) that the store does not hold yet; a row found in several files keeps the first
        file's `src`."""
        days = [r[0] for r in con.sql(f"select distinct day from {events}").fetchall()]
        files = self.files_of(days)
        # An address is its two integer halves: grouping on them is cheaper than on the text.
        distinct = f"""
            select min(ip) as ip, family, day, hi, lo, min(src) as src
            from {events} group by hi, lo, family, day"""
        if not files:
            return con.sql(distinct).to_arrow_table()
        return con.sql(
            f"""
            select * from ({distinct}) e
            where not exists (select 1 from {parquet_sql(files)} s
                              where s.day = e.day and s.hi = e.hi and s.lo = e.lo
                                and s.family = e.family)
            """
        ).to_arrow_table()

    def stage(self, con: duckdb.DuckDBPyConnection, fresh: pa.Table) -> Staged:
        folder = self.root.parent / f".staging-{uuid.uuid4().hex}"
        folder.mkdir(parents=True)
        if fresh.num_rows:
            con.register("_stage", fresh.select([f.name for f in EVENT_SCHEMA]))
            con.execute(
                f"copy (select * from _stage order by day, ip) to {_sql_str(str(folder))} "
                "(format parquet, partition_by (day), filename_pattern 'part-{uuid}', "
                "compression zstd)"
            )
            con.unregister("_stage")
        return Staged(self, folder)
