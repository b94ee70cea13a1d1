"""The DuckDB runner of the botnet SQL (`sql.py`): one process, all cores, Arrow in and out."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from quet.botnet import sql
from quet.botnet.eventstore import parquet_sql

# DuckDB spells Spark's shiftright as an operator.
SHIMS = ("create or replace temp macro shiftright(a, b) as a >> b",)


@dataclass
class Inputs:
    """What one attribution run reads (see the relations in `sql.py`)."""

    stored_files: list[str]
    fresh: pa.Table
    ranges: pa.Table
    orgs: pa.Table
    periods: pa.Table

    def plens(self) -> list[int]:
        if self.ranges.num_rows == 0:
            return []
        return [int(p) for p in pc.unique(self.ranges.column("plen")).to_pylist()]


def connect(
    threads: int | None = None, memory_limit: str | None = None
) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    if threads:
        con.execute(f"set threads = {int(threads)}")
    if memory_limit:
        con.execute(f"set memory_limit = '{memory_limit}'")
    con.execute("set preserve_insertion_order = false")
    for shim in SHIMS:
        con.execute(shim)
    return con


def run(
    inputs: Inputs,
    con: duckdb.DuckDBPyConnection | None = None,
    threads: int | None = None,
    timings: dict[str, float] | None = None,
) -> dict[str, pa.Table]:
    """Run every statement; returns the OUTPUTS as Arrow tables (and each statement's seconds
    in `timings` when given)."""
    own = con is None
    con = con or connect(threads)
    try:
        con.register("fresh", inputs.fresh.select(sql.FRESH_SCHEMA.names))
        con.register("ranges", sql.unique_ranges(inputs.ranges.select(sql.RANGE_SCHEMA.names)))
        con.register("orgs", inputs.orgs.select(sql.ORG_SCHEMA.names))
        con.register("periods", inputs.periods.select(sql.PERIOD_SCHEMA.names))
        con.execute(
            f"create or replace temp view stored as select * from {parquet_sql(inputs.stored_files)}"
        )
        out: dict[str, pa.Table] = {}
        for name, text in sql.statements(inputs.plens()):
            started = time.perf_counter()
            if name in sql.OUTPUTS:
                out[name] = sql.conform(name, con.sql(text).to_arrow_table())
            else:
                con.execute(f"create or replace temp table {name} as {text}")
            if timings is not None:
                timings[name] = time.perf_counter() - started
        return out
    finally:
        for name in ("fresh", "ranges", "orgs", "periods"):
            with contextlib.suppress(duckdb.Error):
                con.unregister(name)
        if own:
            con.close()
