"""Benchmark of the overview (/) and organisation-tree (/orgs) pages over HTTP at national scale:
1,000,000 devices and 10,000,000 findings (bench/dashboard.py's generator) in a fresh PostgreSQL
schema, roll-ups refreshed, the app under uvicorn on 127.0.0.1, p50/p95 per page and person.

    .venv/bin/python bench/pages.py [--url postgresql+psycopg://postgres@127.0.0.1/test]
        [--devices 1000000] [--findings 10000000] [--runs 30] [--keep]
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import uvicorn
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).parent))
from dashboard import OUT, arguments, log, scratch_store, timed
from quet.server.app import create_app
from quet.server.services import rollups, users
from quet.server.settings import Settings
from quet.store.models import Organisation

PASSWORD = "bench-password-0123456789"
PEOPLE = {"national admin": ("bench-admin", "admin", 1), "provincial officer": ("bench-officer", "officer", 2)}  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def prepare(engine: sa.Engine) -> float:
    """Roll-ups (org_daily included) for every organisation, and the two people; seconds taken."""
    with Session(engine) as session:
        t = time.perf_counter()
        rollups.refresh(session)
        session.commit()
        took = time.perf_counter() - t
        for username, role, org_id in PEOPLE.values():
            org = session.get(Organisation, org_id)
            assert org is not None
            users.create_user(session, username, PASSWORD, role, org)
        session.commit()
    return took


def serve(url: str) -> tuple[uvicorn.Server, threading.Thread, str]:
    settings = Settings(
        database_url=url, secret_key="bench-secret-0123456789abcdef", rollup_seconds=3600
    )
    port = free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}"


def bench_pages(base: str, runs: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for who, (username, _, _) in PEOPLE.items():
        with httpx.Client(base_url=base, timeout=120) as client:
            r = client.post("/api/v1/session", json={"username": username, "password": PASSWORD})
            r.raise_for_status()
            for page in ("/", "/orgs"):
                first = client.get(page)  # warm-up, and a check that the page is the real one
                assert first.status_code == 200, (page, first.status_code, first.text[:300])
                assert "<svg" in first.text or page == "/orgs", page

                def get(page: str = page) -> None:
                    client.get(page).raise_for_status()

                key = f"{who} GET {page}"
                results[key] = timed(get, runs)
                log(f"{key}: {results[key]}")
    return results


def main() -> None:
    args = arguments(__doc__.split("\n")[0], runs=30)
    server: uvicorn.Server | None = None
    with scratch_store(args, "bench_pages") as (engine, url, gen_s):
        try:
            refresh_s = round(prepare(engine), 2)
            log(f"rollups.refresh (all, org_daily included): {refresh_s} s")
            server, thread, base = serve(url)
            result: dict[str, Any] = {
                "devices": args.devices,
                "findings": args.findings,
                "generate_s": gen_s,
                "refresh_all_s": refresh_s,
                "runs": args.runs,
                "pages": bench_pages(base, args.runs),
            }
            server.should_exit = True
            thread.join(timeout=10)
            OUT.mkdir(exist_ok=True)
            (OUT / "pages.json").write_text(json.dumps(result, indent=2))
            print(json.dumps(result, indent=2))
        finally:
            if server is not None:
                server.should_exit = True


if __name__ == "__main__":
    main()
