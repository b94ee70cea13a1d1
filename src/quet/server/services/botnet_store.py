"""Storing what `quet botnet import` computed: per-(ip, family) rows merged into botnet_ips,
statistics rows replacing their periods in botnet_stats, one botnet_imports row per file.

Rows go through a temporary staging table (PostgreSQL: COPY of the CSV Arrow writes; SQLite: one
executemany) and one set-based statement, the same on both databases (like quet.store.importer).
Nothing here commits: the engine commits once everything of an import is in.
"""

from __future__ import annotations

import io
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from quet.errors import InputError
from quet.store.models.botnet import DIMS, PERIODS, BotnetImport, BotnetStat

if TYPE_CHECKING:
    import pyarrow as pa

IP_STAGE = "quet_botnet_ip_stage"

_IP_COLS = (
    "ip",
    "family",
    "first_day",
    "last_day",
    "days",
    "org_id",
    "asn",
    "isp",
    "province",
    "country",
)
_STAT_COLS = ("period", "start", "dim", "key", "label", "ips")


# --- writing ------------------------------------------------------------------------------------


def _ip_stage() -> sa.Table:
    return sa.Table(
        IP_STAGE,
        sa.MetaData(),
        sa.Column("ip", sa.String(45), nullable=False),
        sa.Column("family", sa.String(100), nullable=False),
        sa.Column("first_day", sa.Date, nullable=False),
        sa.Column("last_day", sa.Date, nullable=False),
        sa.Column("days", sa.Integer, nullable=False),
        sa.Column("org_id", sa.BigInteger, nullable=True),
        sa.Column("asn", sa.BigInteger, nullable=True),
        sa.Column("isp", sa.String(200), nullable=False),
        sa.Column("province", sa.String(100), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        prefixes=["TEMPORARY"],
    )


def _temp_schema(conn: sa.Connection) -> str:
    return "pg_temp" if conn.dialect.name == "postgresql" else "temp"


def _normalise_ips(rows: pa.Table) -> pa.Table:
    """The staged shape: every column present and typed, text never null, one row per key."""
    import pyarrow as pa
    import pyarrow.compute as pc

    missing = {"ip", "first_day", "last_day"} - set(rows.column_names)
    if missing:
        raise InputError(f"botnet IP rows lack column(s): {', '.join(sorted(missing))}")
    n = rows.num_rows

    def col(name: str, kind: pa.DataType, default: Any) -> pa.Array:
        if name not in rows.column_names:
            return pa.array([default] * n, type=kind)
        value = rows.column(name).cast(kind)
        return value if default is None else pc.fill_null(value, default)

    table = pa.table(
        {
            "ip": col("ip", pa.string(), None),
            "family": pc.utf8_lower(col("family", pa.string(), "")),
            "first_day": col("first_day", pa.date32(), None),
            "last_day": col("last_day", pa.date32(), None),
            "days": col("days", pa.int64(), 1),
            "org_id": col("org_id", pa.int64(), None),
            "asn": col("asn", pa.int64(), None),
            "isp": col("isp", pa.string(), ""),
            "province": col("province", pa.string(), ""),
            "country": col("country", pa.string(), ""),
        }
    )
    for name in ("ip", "first_day", "last_day"):
        if table.column(name).null_count:
            raise InputError(f"botnet IP rows: {table.column(name).null_count} null {name!r}")
    keys = table.group_by(["ip", "family"]).aggregate([])
    if keys.num_rows < n:
        # One (ip, family) twice: fold it (PostgreSQL's upsert may touch a row only once). The
        # span and days combine; the attribution is the last such row's, nulls included.
        numbered = table.append_column("_row", pa.array(range(n), pa.int64()))
        folded = numbered.group_by(["ip", "family"]).aggregate(
            [("first_day", "min"), ("last_day", "max"), ("days", "sum"), ("_row", "max")]
        )
        last = numbered.take(folded.column("_row_max"))
        table = pa.table(
            {
                "ip": folded.column("ip"),
                "family": folded.column("family"),
                "first_day": folded.column("first_day_min"),
                "last_day": folded.column("last_day_max"),
                "days": folded.column("days_sum"),
                **{c: last.column(c) for c in ("org_id", "asn", "isp", "province", "country")},
            }
        )
    return table


def _copy_csv(conn: sa.Connection, table_name: str, rows: pa.Table) -> None:
    """PostgreSQL: COPY the rows as CSV written by Arrow (nulls are bare empty fields, text is
    always quoted, so '' stays an empty string)."""
    import pyarrow.csv as pacsv

    buf = io.BytesIO()
    pacsv.write_csv(rows, buf, pacsv.WriteOptions(include_header=False))
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    cols = ", ".join(f'"{c}"' for c in rows.column_names)
    with cursor.copy(f"COPY {table_name} ({cols}) FROM STDIN WITH (FORMAT csv)") as copy:
        view = buf.getbuffer()
        for at in range(0, len(view), 1 << 20):
            copy.write(view[at : at + (1 << 20)])
    cursor.close()


def _driver_rows(rows: pa.Table) -> list[tuple[Any, ...]]:
    """SQLite: plain tuples, dates as ISO text (the form SQLAlchemy's Date reads back)."""
    import pyarrow as pa

    columns = []
    for name in rows.column_names:
        column = rows.column(name)
        if pa.types.is_date(column.type):
            column = column.cast(pa.string())
        columns.append(column.to_pylist())
    return list(zip(*columns, strict=True))


def _bulk_insert(conn: sa.Connection, table_name: str, rows: pa.Table) -> None:
    if rows.num_rows == 0:
        return
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        _copy_csv(conn, table_name, rows)
        return
    mark = "?" if conn.dialect.name == "sqlite" else "%s"
    cols = ", ".join(f'"{c}"' for c in rows.column_names)
    marks = ", ".join([mark] * rows.num_columns)
    conn.exec_driver_sql(f"INSERT INTO {table_name} ({cols}) VALUES ({marks})", _driver_rows(rows))


def apply_ips(session: Session, rows: pa.Table) -> int:
    """Upsert per-(ip, family) rows into botnet_ips: first_seen = min, last_seen = max,
    days_seen += days, and the attribution (org, ASN, ISP, province, country) of this import
    replaces the stored one (it was computed from the current registered ranges). Not committed;
    returns the number of (ip, family) rows touched."""
    table = _normalise_ips(rows)
    if table.num_rows == 0:
        return 0
    conn = session.connection()
    pg = conn.dialect.name == "postgresql"
    stage = _ip_stage()
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {_temp_schema(conn)}.{IP_STAGE}")
    stage.create(conn)
    try:
        _bulk_insert(conn, IP_STAGE, table)
        hi, lo = ("GREATEST", "LEAST") if pg else ("MAX", "MIN")
        # SQLite needs a WHERE before ON CONFLICT in INSERT ... SELECT (a parser ambiguity).
        conn.exec_driver_sql(
            "INSERT INTO botnet_ips (ip, family, org_id, asn, isp, province, country, "
            "first_seen, last_seen, days_seen) "
            "SELECT ip, family, org_id, asn, isp, province, country, first_day, last_day, days "
            f"FROM {IP_STAGE} WHERE 1 = 1 "
            "ON CONFLICT (ip, family) DO UPDATE SET "
            f"first_seen = {lo}(botnet_ips.first_seen, excluded.first_seen), "
            f"last_seen = {hi}(botnet_ips.last_seen, excluded.last_seen), "
            "days_seen = botnet_ips.days_seen + excluded.days_seen, "
            "org_id = excluded.org_id, asn = excluded.asn, isp = excluded.isp, "
            "province = excluded.province, country = excluded.country"
        )
    finally:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {_temp_schema(conn)}.{IP_STAGE}")
    return int(table.num_rows)


def _normalise_stats(rows: pa.Table) -> pa.Table:
    import pyarrow as pa
    import pyarrow.compute as pc

    missing = set(_STAT_COLS) - {"label"} - set(rows.column_names)
    if missing:
        raise InputError(f"botnet statistics rows lack column(s): {', '.join(sorted(missing))}")
    n = rows.num_rows
    label = rows.column("label") if "label" in rows.column_names else pa.array([""] * n)
    table = pa.table(
        {
            "period": rows.column("period").cast(pa.string()),
            "start": rows.column("start").cast(pa.date32()),
            "dim": rows.column("dim").cast(pa.string()),
            "key": pc.fill_null(rows.column("key").cast(pa.string()), ""),
            "label": pc.fill_null(label.cast(pa.string()), ""),
            "ips": rows.column("ips").cast(pa.int64()),
        }
    )
    bad_period = pc.sum(pc.invert(pc.is_in(table.column("period"), pa.array(PERIODS)))).as_py()
    bad_dim = pc.sum(pc.invert(pc.is_in(table.column("dim"), pa.array(DIMS)))).as_py()
    if bad_period or bad_dim:
        raise InputError(
            f"botnet statistics: {bad_period or 0} row(s) with a period not in {PERIODS}, "
            f"{bad_dim or 0} with a dim not in {DIMS}"
        )
    return table


def apply_stats(session: Session, rows: pa.Table) -> int:
    """Replace the statistics of every (period, start) that `rows` carries with `rows`.
    Not committed; returns the number of rows written."""
    table = _normalise_stats(rows)
    if table.num_rows == 0:
        return 0
    periods = table.group_by(["period", "start"]).aggregate([])
    conn = session.connection()
    conn.execute(
        sa.delete(BotnetStat).where(
            BotnetStat.period == sa.bindparam("p"), BotnetStat.start == sa.bindparam("s")
        ),
        [
            {"p": p, "s": s}
            for p, s in zip(
                periods.column("period").to_pylist(),
                periods.column("start").to_pylist(),
                strict=True,
            )
        ],
    )
    _bulk_insert(conn, "botnet_stats", table)
    return int(table.num_rows)


_IMPORT_FIELDS = {
    "file": str,
    "sha256": str,
    "format": str,
    "rows": int,
    "bad_rows": int,
    "duplicates": int,
    "new_events": int,
    "attributed": int,
    "unattributed": int,
}


def record_import(session: Session, run: dict[str, Any]) -> int:
    """One botnet_imports row from the engine's run summary (unknown keys are ignored; errors
    keep the first 100). Not committed; returns the row's id."""
    values: dict[str, Any] = {}
    for key, kind in _IMPORT_FIELDS.items():
        if run.get(key) is not None:
            values[key] = kind(run[key])
    values["file"] = values.get("file", "")[-500:]
    for key in ("first_day", "last_day"):
        value = run.get(key)
        if isinstance(value, str) and value:
            value = date.fromisoformat(value[:10])
        if isinstance(value, datetime):
            value = value.date()
        values[key] = value if isinstance(value, date) else None
    if isinstance(run.get("imported_at"), datetime):
        values["imported_at"] = run["imported_at"]
    values["errors"] = [str(e) for e in list(run.get("errors") or [])[:100]]
    row = BotnetImport(**values)
    session.add(row)
    session.flush()
    return row.id
