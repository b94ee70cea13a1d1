"""Benchmark of the /botnet page at national scale: two years of daily, weekly and monthly
statistics (every dimension: 50 families, 63 provinces, 200 ISPs, 8 sectors, 2,000 organisations)
in a fresh PostgreSQL schema beside bench/dashboard.py's organisation tree, the app under
uvicorn on 127.0.0.1, p50/p95 of the page (the two-year daily trend chart and the breakdowns) and
of the stats API, signed in as the national administrator and as a provincial officer.

    .venv/bin/python bench/botnet_page.py [--url postgresql+psycopg://postgres@127.0.0.1/test]
        [--runs 30] [--keep]

Target (issue 6): two years of daily statistics charted in < 500 ms.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).parent))
from dashboard import OUT, arguments, log, scratch_store, timed
from pages import PASSWORD, PEOPLE, serve
from quet.server.services import users
from quet.store.models import Organisation

DAYS = 730
# (dimension, how many keys, key expression from the series number k)
DIMS = (
    ("all", 1, "''"),
    ("family", 50, "'family-' || k"),
    ("province", 63, "'Tỉnh ' || k"),
    ("asn", 200, "(7000 + k)::text"),
    ("sector", 8, "'sector-' || k"),
    ("org", 2000, "(100 + k)::text"),  # ids of provinces and agencies of the generated tree
)


def fill(engine: sa.Engine) -> tuple[int, float]:
    """Statistics rows for DAYS days, their weeks and months; (rows, seconds)."""
    started = time.perf_counter()
    with engine.begin() as conn:
        for dim, n, key in DIMS:
            for period, trunc in (
                ("day", "day"),
                ("week", "week"),
                ("month", "month"),
            ):
                conn.exec_driver_sql(
                    f"""
                    INSERT INTO botnet_stats (period, start, dim, key, label, ips)
                    SELECT '{period}', d::date, '{dim}', {key}, {key},
                           (1000000 / (k + 1) * (1.5 - t / {DAYS}.0))::bigint + 1
                    FROM (SELECT DISTINCT date_trunc('{trunc}', g)::date AS d,
                                 (current_date - date_trunc('{trunc}', g)::date) AS t
                          FROM generate_series(current_date - {DAYS - 1},
                                               current_date, interval '1 day') g) days,
                         generate_series(0, {n - 1}) k
                    ON CONFLICT DO NOTHING
                    """
                )
        rows = conn.exec_driver_sql("SELECT count(*) FROM botnet_stats").scalar_one()
        conn.exec_driver_sql("ANALYZE botnet_stats")
    return int(rows), round(time.perf_counter() - started, 1)


def people(engine: sa.Engine) -> None:
    with Session(engine) as session:
        for username, role, org_id in PEOPLE.values():
            org = session.get(Organisation, org_id)
            assert org is not None
            users.create_user(session, username, PASSWORD, role, org)
        session.commit()


def bench(base: str, runs: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for who, (username, _, _) in PEOPLE.items():
        with httpx.Client(base_url=base, timeout=120) as client:
            r = client.post("/api/v1/session", json={"username": username, "password": PASSWORD})
            r.raise_for_status()
            for url in ("/botnet", "/api/v1/botnet/stats"):
                first = client.get(url)  # warm-up, and a check that it is the real thing
                assert first.status_code == 200, (url, first.status_code, first.text[:300])
                if url == "/botnet":
                    assert first.text.count("<svg") >= 2, "the trend and the breakdowns"

                def get(url: str = url) -> None:
                    client.get(url).raise_for_status()

                key = f"{who} GET {url}"
                results[key] = timed(get, runs)
                log(f"{key}: {results[key]}")
    return results


def main() -> None:
    args = arguments(__doc__.split("\n")[0], runs=30)
    args.devices, args.findings = 1000, 0  # the tree only: this bench is about botnet_stats
    with scratch_store(args, "bench_botnet_page") as (engine, url, _):
        rows, fill_s = fill(engine)
        log(f"{rows:,} statistics rows in {fill_s} s")
        people(engine)
        server, thread, base = serve(url)
        try:
            result = {
                "stats_rows": rows,
                "days": DAYS,
                "runs": args.runs,
                "pages": bench(base, args.runs),
            }
        finally:
            server.should_exit = True
            thread.join(timeout=10)
        worst = max(v["p95_ms"] for k, v in result["pages"].items() if k.endswith("/botnet"))
        print(f"target: two years of daily statistics charted in < 500 ms: "
              f"{'PASS' if worst < 500 else 'FAIL'} (worst p95 {worst} ms)")  # fmt: skip
        OUT.mkdir(exist_ok=True)
        (OUT / "botnet_page.json").write_text(json.dumps(result, indent=2))
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
