"""Benchmark of the dashboard's SQL at national scale on PostgreSQL: 1,000,000 devices and
10,000,000 findings in a fresh schema, then the overview and org-tree queries timed (p50/p95)
first aggregated at query time, then read from the org_rollups table. Drops the schema after.

    .venv/bin/python bench/dashboard.py [--url postgresql+psycopg://postgres@127.0.0.1/test]
        [--devices 1000000] [--findings 10000000] [--runs 7] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from quet.server.services import rollups
from quet.store.db import connect
from quet.store.models import Organisation

PROVINCES, AGENCIES, UNITS = 63, 20, 6  # 63 × 20 × 6 = 7,560 leaf units, 8,884 organisations
OUT = Path(__file__).parent / "out"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def make_orgs(conn: sa.Connection) -> tuple[int, int]:
    """The tree, ids given level by level so that the leaves are one contiguous id range."""
    rows: list[tuple[Any, ...]] = []
    now = datetime.now(UTC)

    def add(oid: int, parent: int | None, path: str, depth: int, kind: str) -> None:
        rows.append((oid, f"O{oid}", f"Đơn vị {oid}", kind, parent, path, depth, "", "", "", "",
                     now, now))  # fmt: skip

    add(1, None, "/1/", 0, "national")
    next_id = 2
    prov = []
    for _ in range(PROVINCES):
        add(next_id, 1, f"/1/{next_id}/", 1, "province")
        prov.append((next_id, f"/1/{next_id}/"))
        next_id += 1
    agencies = []
    for pid, ppath in prov:
        for _ in range(AGENCIES):
            add(next_id, pid, f"{ppath}{next_id}/", 2, "department")
            agencies.append((next_id, f"{ppath}{next_id}/"))
            next_id += 1
    first_leaf = next_id
    for aid, apath in agencies:
        for _ in range(UNITS):
            add(next_id, aid, f"{apath}{next_id}/", 3, "unit")
            next_id += 1
    cols = ("id, code, name, kind, parent_id, path, depth, contact_name, contact_email, "
            "contact_phone, webhook_url, created_at, updated_at")  # fmt: skip
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(f"COPY organisations ({cols}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('organisations', 'id'), {next_id})")
    return first_leaf, next_id - first_leaf


def generate(conn: sa.Connection, n_dev: int, n_find: int, first_leaf: int, n_leaf: int) -> None:
    # Device g belongs to leaf first_leaf + (g * 7919) % n_leaf: a formula, so that findings
    # can carry their device's organisation without a join.
    org_of = f"({first_leaf} + mod(%s::bigint * 7919, {n_leaf}))"
    t = time.perf_counter()
    conn.exec_driver_sql(
        f"""INSERT INTO devices (id, org_id, hostname, kind, os, ips, agent_version,
            content_version, content_updated_at, antimalware, credential_hash, enrolled_at,
            last_seen, last_scan_at, open_findings, uploaded_only)
        SELECT g, {org_of % "g"}, 'h' || g,
            CASE WHEN mod(g, 10) = 0 THEN 'server' WHEN mod(g, 10) < 7 THEN 'workstation'
                 ELSE 'endpoint' END,
            'Windows 10 Pro', '[]'::jsonb, '0.1.0', 20261120 - mod(g, 5) * 7,
            now() - mod(g, 30) * interval '1 day', '[]'::jsonb, '', now(), now(),
            CASE WHEN mod(g, 20) = 0 THEN NULL ELSE now() - mod(g, 14) * interval '1 day'
                 - mod(g, 24) * interval '1 hour' END,
            0, false
        FROM generate_series(1, {n_dev}) g"""
    )
    conn.exec_driver_sql(
        f"""INSERT INTO scan_reports (id, device_id, org_id, started, finished, received_at,
            files_scanned, bytes_scanned, findings_count, errors_count, interrupted, signatures)
        SELECT 's' || g, g, {org_of % "g"}, now(), now(), now(), 100000, 0, 0, 0, false,
            '{{}}'::jsonb
        FROM generate_series(1, {n_dev}) g"""
    )
    log(f"devices and scans: {time.perf_counter() - t:.1f} s")
    # Findings land on one device in ten (100 each); one in three of those still has open ones.
    infected = max(1, n_dev // 10)
    t = time.perf_counter()
    conn.exec_driver_sql("ALTER TABLE findings DROP CONSTRAINT fk_findings_scan_id_scan_reports")
    conn.exec_driver_sql("ALTER TABLE findings DROP CONSTRAINT fk_findings_device_id_devices")
    conn.exec_driver_sql("ALTER TABLE findings DROP CONSTRAINT fk_findings_org_id_organisations")
    for ix in ("ix_findings_org_status", "ix_findings_device", "ix_findings_scan_id"):
        conn.exec_driver_sql(f"DROP INDEX {ix}")
    families = (
        "ARRAY['Unix.Trojan.Mirai-9976014-0','Win.Worm.Ramnit-1234','W32.Sality.AA',"
        "'Win.Trojan.Emotet-9953370-0','Win.Ransomware.WannaCry-6313787-0','Win.Test.EICAR_HDB-1']"
    )
    dev = f"(1 + mod(i, {infected}) * 10)"
    conn.exec_driver_sql(
        f"""INSERT INTO findings (scan_id, device_id, org_id, observed_at, kind, name, path,
            indicator, sha256, score, action, status, remediated_at)
        SELECT 's' || {dev}, {dev}, {org_of % dev},
            now() - mod(i, 90) * interval '1 day', 'hash', ({families})[1 + mod(i, 6)], '', '',
            lpad(to_hex(i), 64, '0'), 100, 'reported',
            CASE WHEN mod(mod(i, {infected}), 3) = 0 AND mod(i / {infected}, 10) = 0 THEN 'open'
                 WHEN mod(i, 50) = 7 THEN 'false_positive' ELSE 'remediated' END,
            NULL
        FROM generate_series(1, {n_find}) i"""
    )
    log(f"findings inserted: {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    conn.exec_driver_sql("CREATE INDEX ix_findings_org_status ON findings (org_id, status)")
    conn.exec_driver_sql("CREATE INDEX ix_findings_device ON findings (device_id)")
    conn.exec_driver_sql(
        """UPDATE devices d SET open_findings = f.n FROM (SELECT device_id, count(*) n
           FROM findings WHERE status = 'open' GROUP BY device_id) f WHERE d.id = f.device_id"""
    )
    conn.exec_driver_sql("ANALYZE")
    log(f"indexes, open_findings, ANALYZE: {time.perf_counter() - t:.1f} s")


# The naive queries: what the pages would run against devices and findings directly.
NAIVE = {
    "devices, scanned, current": """
        SELECT count(*), count(*) FILTER (WHERE d.last_scan_at >= now() - interval '7 days'),
               count(*) FILTER (WHERE d.content_updated_at >= now() - interval '7 days')
        FROM devices d JOIN organisations o ON o.id = d.org_id WHERE o.path LIKE :p""",
    "infected devices": """
        SELECT count(DISTINCT f.device_id) FROM findings f JOIN organisations o ON o.id = f.org_id
        WHERE o.path LIKE :p AND f.status = 'open'""",
    "findings by status": """
        SELECT f.status, count(*) FROM findings f JOIN organisations o ON o.id = f.org_id
        WHERE o.path LIKE :p GROUP BY f.status""",
    "tree: devices per child": """
        SELECT split_part(o.path, '/', :lvl) AS child, count(*),
               count(*) FILTER (WHERE d.last_scan_at >= now() - interval '7 days')
        FROM devices d JOIN organisations o ON o.id = d.org_id
        WHERE o.path LIKE :p AND o.depth >= :depth GROUP BY 1""",
    "tree: infected per child": """
        SELECT split_part(o.path, '/', :lvl) AS child, count(DISTINCT f.device_id)
        FROM findings f JOIN organisations o ON o.id = f.org_id
        WHERE o.path LIKE :p AND o.depth >= :depth AND f.status = 'open' GROUP BY 1""",
}


def timed(fn: Callable[[], object], runs: int) -> dict[str, float]:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return {"p50_ms": round(statistics.median(times), 2), "p95_ms": round(p95, 2)}


def bench(engine: sa.Engine, runs: int) -> dict[str, Any]:
    results: dict[str, Any] = {"naive": {}, "rollup": {}}
    with Session(engine) as session:
        root = session.get(Organisation, 1)
        prov = session.get(Organisation, 2)
        assert root is not None and prov is not None
        unders = {"national": root, "province": prov}
        for label, org in unders.items():
            params = {"p": org.path + "%", "lvl": org.depth + 3, "depth": org.depth + 1}
            for name, sql in NAIVE.items():
                stmt = sa.text(sql)
                key = f"{label}: {name}"
                results["naive"][key] = timed(
                    lambda stmt=stmt, params=params: session.execute(stmt, params).all(), runs
                )
                log(f"naive  {key}: {results['naive'][key]}")
        t = time.perf_counter()
        rows = rollups.refresh(session)
        session.commit()
        results["refresh_all_s"] = round(time.perf_counter() - t, 2)
        log(f"rollups.refresh (all {rows} organisations): {results['refresh_all_s']} s")
        leaf = session.scalars(
            sa.select(Organisation.id).where(Organisation.depth == 3).limit(1)
        ).one()
        results["refresh_one_org"] = timed(lambda: rollups.refresh(session, leaf), runs)
        session.commit()
        log(f"rollups.refresh (one organisation): {results['refresh_one_org']}")
        for label, org in unders.items():
            for name, fn in (
                ("overview_from_rollups", rollups.overview_from_rollups),
                ("tree_from_rollups", rollups.tree_from_rollups),
            ):
                key = f"{label}: {name}"
                results["rollup"][key] = timed(lambda fn=fn, org=org: fn(session, org), runs * 5)
                log(f"rollup {key}: {results['rollup'][key]}")
        check = rollups.overview_from_rollups(session, root)
        results["national_overview"] = {k: v for k, v in check.items() if k != "refreshed_at"}
    return results


def arguments(description: str, runs: int) -> argparse.Namespace:
    """The options every scale bench shares: the PostgreSQL URL, the data size, runs, --keep."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--url",
        default=os.environ.get("QUET_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--devices", type=int, default=1_000_000)
    parser.add_argument("--findings", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=runs)
    parser.add_argument("--keep", action="store_true", help="keep the schema (its name is printed)")
    return parser.parse_args()


@contextmanager
def scratch_store(args: argparse.Namespace, prefix: str) -> Iterator[tuple[sa.Engine, str, float]]:
    """A fresh schema filled with the generated data: (engine, its URL, seconds to generate);
    dropped afterwards unless --keep."""
    admin = sa.create_engine(args.url)
    schema = f"{prefix}_{secrets.token_hex(4)}"
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    log(f"schema {schema}")
    sep = "&" if "?" in args.url else "?"
    url = f"{args.url}{sep}options=-csearch_path%3D{schema}"
    engine: sa.Engine | None = None
    try:
        engine = connect(url)
        started = time.perf_counter()
        with engine.begin() as conn:
            conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
            first_leaf, n_leaf = make_orgs(conn)
            generate(conn, args.devices, args.findings, first_leaf, n_leaf)
        gen_s = round(time.perf_counter() - started, 1)
        log(f"data generated in {gen_s} s")
        yield engine, url, gen_s
    finally:
        if engine is not None:
            engine.dispose()
        if not args.keep:
            with admin.begin() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
            log(f"schema {schema} dropped")
        admin.dispose()


def main() -> None:
    args = arguments(__doc__.split("\n")[0], runs=7)
    with scratch_store(args, "bench_dash") as (engine, _url, gen_s):
        result = {"devices": args.devices, "findings": args.findings, "generate_s": gen_s}
        result |= bench(engine, args.runs)
        OUT.mkdir(exist_ok=True)
        (OUT / "dashboard.json").write_text(json.dumps(result, indent=2, default=str))
        print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
