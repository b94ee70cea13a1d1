"""Bulk import of indicators into the store: batches staged in a temporary table, then merged with
set-based SQL (one INSERT, one UPDATE, one UPSERT per batch) that runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

from quet.indicators.model import Indicator, IssueLog
from quet.store.models import UTCDateTime, import_runs, indicator_sources, indicators
from quet.store.models.base import utcnow

BATCH = 50_000
EXAMPLES = 1000
STAGE = "quet_stage"


class Matcher(Protocol):
    """What import needs of a warning-list set (quet.indicators.warninglists.WarninglistSet)."""

    def match(self, ind: Indicator) -> str | None: ...


@dataclass
class ImportSummary:
    """What one import read and changed. `added` + `updated` count distinct indicators."""

    source: str
    read: int = 0
    added: int = 0
    updated: int = 0
    suppressed: int = 0
    rejected: int = 0
    suppressed_examples: list[tuple[str, str, str]] = field(default_factory=list)
    by_type: dict[str, int] = field(default_factory=dict)  # accepted (not suppressed) per type
    run_id: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "read": self.read,
            "added": self.added,
            "updated": self.updated,
            "suppressed": self.suppressed,
            "rejected": self.rejected,
            "suppressed_examples": [list(e) for e in self.suppressed_examples],
            "by_type": dict(self.by_type),
            "run_id": self.run_id,
            "seconds": round(self.seconds, 3),
        }


def _stage_table() -> sa.Table:
    return sa.Table(
        STAGE,
        sa.MetaData(),
        sa.Column("type", sa.String(16), primary_key=True),
        sa.Column("value", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("family", sa.String(200), nullable=False),
        sa.Column("confidence", sa.Integer, nullable=False),
        sa.Column("first_seen", UTCDateTime, nullable=True),
        sa.Column("last_seen", UTCDateTime, nullable=True),
        sa.Column("expires", UTCDateTime, nullable=True),
        sa.Column("tags", sa.Text, nullable=False),  # a JSON list, sorted
        sa.Column("campaign", sa.String(200), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=True),
        sa.Column("fp_regex", sa.Text, nullable=False),
        prefixes=["TEMPORARY"],
    )


_COLS = (
    "type",
    "value",
    "name",
    "family",
    "confidence",
    "first_seen",
    "last_seen",
    "expires",
    "tags",
    "campaign",
    "size",
    "fp_regex",
)
_NAME, _FAMILY, _CONF, _FIRST, _LAST, _EXPIRES, _TAGS, _CAMPAIGN, _SIZE, _FP = range(2, 12)


def _row(ind: Indicator) -> list[Any]:
    return [
        ind.type.value,
        ind.value,
        ind.name,
        ind.family,
        ind.confidence,
        ind.first_seen,
        ind.last_seen,
        ind.expires,
        ind.tags,
        ind.campaign,
        ind.size,
        ind.fp_regex,
    ]


def _merge_row(old: list[Any], ind: Indicator) -> None:
    """Fold a duplicate of the same (type, value) within one batch into the row staged first."""
    for pos, attr in (
        (_NAME, "name"),
        (_FAMILY, "family"),
        (_CAMPAIGN, "campaign"),
        (_FP, "fp_regex"),
    ):
        if not old[pos]:
            old[pos] = getattr(ind, attr)
    old[_CONF] = max(old[_CONF], ind.confidence)
    if old[_SIZE] is None:
        old[_SIZE] = ind.size
    if ind.first_seen and (old[_FIRST] is None or ind.first_seen < old[_FIRST]):
        old[_FIRST] = ind.first_seen
    if ind.last_seen and (old[_LAST] is None or ind.last_seen > old[_LAST]):
        old[_LAST] = ind.last_seen
    if ind.expires and (old[_EXPIRES] is None or ind.expires > old[_EXPIRES]):
        old[_EXPIRES] = ind.expires
    if ind.tags:
        old[_TAGS] = tuple(set(old[_TAGS]) | set(ind.tags))


def _sqlite_time(value: datetime | None) -> str | None:
    # The text form SQLAlchemy's SQLite DATETIME reads back (and that sorts as time does).
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


def _pg_time(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _driver_rows(rows: Iterable[list[Any]], dialect: str) -> list[tuple[Any, ...]]:
    """Rows ready for the DB-API driver: staged through executemany without SQLAlchemy's
    per-parameter processing, which costs more than the insert itself at a million rows."""
    conv = _sqlite_time if dialect == "sqlite" else _pg_time
    out = []
    for r in rows:
        if r[_FIRST] is not None or r[_LAST] is not None or r[_EXPIRES] is not None:
            r[_FIRST], r[_LAST], r[_EXPIRES] = conv(r[_FIRST]), conv(r[_LAST]), conv(r[_EXPIRES])
        r[_TAGS] = json.dumps(sorted(set(r[_TAGS]))) if r[_TAGS] else "[]"
        out.append(tuple(r))
    return out


def _stage_insert(dialect: str) -> str:
    mark = "?" if dialect == "sqlite" else "%s"
    return f"INSERT INTO {STAGE} ({', '.join(_COLS)}) VALUES ({', '.join([mark] * len(_COLS))})"


class _Sql:
    """The statements of one import, built once for the connection's dialect."""

    def __init__(self, dialect: str, stage: sa.Table, source: str, now: datetime) -> None:
        pg = dialect == "postgresql"
        i, s, src = indicators, stage, indicator_sources
        self.greatest: Callable[..., ColumnElement[Any]] = sa.func.greatest if pg else sa.func.max
        self.least: Callable[..., ColumnElement[Any]] = sa.func.least if pg else sa.func.min
        now_lit = sa.literal(now, UTCDateTime())
        same = sa.and_(i.c.type == s.c.type, i.c.value == s.c.value)
        first = sa.func.coalesce(s.c.first_seen, s.c.last_seen, now_lit)
        last = sa.func.coalesce(s.c.last_seen, now_lit)

        self.count = (
            sa.select(
                sa.func.count(),
                sa.func.coalesce(
                    sa.func.sum(
                        # Rows this run already added or updated (a key seen in two batches)
                        # count once.
                        sa.case(
                            (sa.or_(i.c.created_at == now_lit, i.c.updated_at == now_lit), 0),
                            else_=1,
                        )
                    ),
                    0,
                ),
            )
            .select_from(s)
            .join(i, same)
        )

        def fill(col: str) -> ColumnElement[Any]:
            return sa.case((i.c[col] == "", s.c[col]), else_=i.c[col])

        self.update = (
            sa.update(i)
            .where(same)
            .values(
                name=fill("name"),
                family=fill("family"),
                campaign=fill("campaign"),
                fp_regex=fill("fp_regex"),
                size=sa.func.coalesce(i.c.size, s.c.size),
                confidence=self.greatest(i.c.confidence, s.c.confidence),
                first_seen=self.least(i.c.first_seen, first),
                last_seen=self.greatest(i.c.last_seen, last),
                expires=sa.case(
                    (i.c.expires.is_(None), s.c.expires),
                    (s.c.expires.is_(None), i.c.expires),
                    else_=self.greatest(i.c.expires, s.c.expires),
                ),
                # Listed again: an expired indicator comes back; a false positive stays one.
                status=sa.case((i.c.status == "expired", "active"), else_=i.c.status),
                tags=sa.case((s.c.tags == "[]", i.c.tags), else_=_merged_tags(pg)),
                updated_at=now_lit,
            )
        )

        tags_in: ColumnElement[Any] = (
            sa.cast(s.c.tags, postgresql.JSONB) if pg else sa.type_coerce(s.c.tags, sa.Text)
        )
        self.insert = sa.insert(i).from_select(
            [
                "type",
                "value",
                "name",
                "family",
                "confidence",
                "first_seen",
                "last_seen",
                "expires",
                "tags",
                "campaign",
                "size",
                "fp_regex",
                "status",
                "created_at",
                "updated_at",
            ],
            sa.select(
                s.c.type,
                s.c.value,
                s.c.name,
                s.c.family,
                s.c.confidence,
                first,
                last,
                s.c.expires,
                tags_in,
                s.c.campaign,
                s.c.size,
                s.c.fp_regex,
                sa.literal("active"),
                now_lit,
                now_lit,
            ).where(~sa.exists().where(same)),
        )

        ins = (postgresql.insert if pg else sqlite.insert)(src)
        cols = ["indicator_id", "source", "first_seen", "last_seen", "confidence"]
        # SQLite needs a WHERE before ON CONFLICT in INSERT ... SELECT (a parser ambiguity).
        sel = (
            sa.select(i.c.id, sa.literal(source), first, last, s.c.confidence)
            .select_from(s)
            .join(i, same)
            .where(sa.true())
        )
        upsert = ins.from_select(cols, sel)
        self.sources = upsert.on_conflict_do_update(
            index_elements=["indicator_id", "source"],
            set_={
                "first_seen": self.least(src.c.first_seen, upsert.excluded.first_seen),
                "last_seen": self.greatest(src.c.last_seen, upsert.excluded.last_seen),
                "confidence": upsert.excluded.confidence,
            },
        )


def _merged_tags(pg: bool) -> ColumnElement[Any]:
    if pg:
        sql = (
            "(SELECT coalesce(jsonb_agg(v ORDER BY v), '[]'::jsonb) FROM ("
            "SELECT jsonb_array_elements_text(indicators.tags) AS v UNION "
            f"SELECT jsonb_array_elements_text(CAST({STAGE}.tags AS jsonb))) AS x)"
        )
    else:
        sql = (
            "(SELECT json_group_array(value) FROM ("
            "SELECT value FROM json_each(indicators.tags) UNION "
            f"SELECT value FROM json_each({STAGE}.tags) ORDER BY 1))"
        )
    return sa.literal_column(sql)


def import_indicators(
    engine: sa.Engine,
    indicators_in: Iterable[Indicator],
    *,
    source: str,
    warninglists: Matcher | None = None,
    progress: Callable[[int], None] | None = None,
    issues: IssueLog | None = None,
    batch: int = BATCH,
) -> ImportSummary:
    """Add or refresh indicators listed by `source`. Values on a warning list are counted and
    dropped; `issues` (the reader's log) gives the rejected count once the input is consumed."""
    import time

    started = time.perf_counter()
    source = source.strip() or "unknown"
    summary = ImportSummary(source=source)
    now = utcnow()
    stage = _stage_table()
    with engine.connect() as conn:
        run_id = conn.execute(
            sa.insert(import_runs).values(
                source=source, started=now, read=0, added=0, updated=0, suppressed=0, rejected=0
            )
        ).inserted_primary_key
        summary.run_id = int(run_id[0]) if run_id else 0
        _drop_stage(conn)
        stage.create(conn)
        conn.commit()
        sql = _Sql(conn.dialect.name, stage, source, now)
        try:
            pending: dict[tuple[str, str], list[Any]] = {}
            by_type = summary.by_type
            for ind in indicators_in:
                summary.read += 1
                if warninglists is not None:
                    hit = warninglists.match(ind)
                    if hit is not None:
                        summary.suppressed += 1
                        if len(summary.suppressed_examples) < EXAMPLES:
                            summary.suppressed_examples.append((ind.type.value, ind.value, hit))
                        continue
                key = (ind.type.value, ind.value)
                by_type[key[0]] = by_type.get(key[0], 0) + 1
                old = pending.get(key)
                if old is None:
                    pending[key] = _row(ind)
                else:
                    _merge_row(old, ind)
                if len(pending) >= batch:
                    _flush(conn, sql, stage, pending, summary)
                    pending = {}
                    if progress is not None:
                        progress(summary.read)
            if pending:
                _flush(conn, sql, stage, pending, summary)
            if progress is not None:
                progress(summary.read)
        finally:
            conn.rollback()
            _drop_stage(conn)
            conn.commit()
        summary.rejected = issues.count if issues is not None else 0
        conn.execute(
            sa.update(import_runs)
            .where(import_runs.c.id == summary.run_id)
            .values(
                finished=utcnow(),
                read=summary.read,
                added=summary.added,
                updated=summary.updated,
                suppressed=summary.suppressed,
                rejected=summary.rejected,
            )
        )
        conn.commit()
    summary.seconds = time.perf_counter() - started
    return summary


def _drop_stage(conn: sa.Connection) -> None:
    # Qualified, so that only the temporary table can ever be dropped.
    conn.execute(sa.text(f"DROP TABLE IF EXISTS {_temp_schema(conn)}.{STAGE}"))


def _temp_schema(conn: sa.Connection) -> str:
    return "pg_temp" if conn.dialect.name == "postgresql" else "temp"


def _flush(
    conn: sa.Connection,
    sql: _Sql,
    stage: sa.Table,
    pending: dict[tuple[str, str], list[Any]],
    summary: ImportSummary,
) -> None:
    dialect = conn.dialect.name
    rows = _driver_rows(pending.values(), dialect)
    if dialect == "postgresql" and conn.dialect.driver == "psycopg":
        # COPY is several times faster than even pipelined INSERTs on PostgreSQL.
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY {STAGE} ({', '.join(_COLS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.close()
    else:
        conn.exec_driver_sql(_stage_insert(dialect), rows)
    # Fresh statistics make both planners walk the small staging table and probe the big one.
    conn.exec_driver_sql(f"ANALYZE {_temp_schema(conn)}.{STAGE}")
    matched, before_run = conn.execute(sql.count).one()
    if matched:
        conn.execute(sql.update)
    if matched < len(pending):
        conn.execute(sql.insert)
    conn.execute(sql.sources)
    conn.execute(stage.delete())
    conn.commit()
    summary.added += len(pending) - int(matched)
    summary.updated += int(before_run)
