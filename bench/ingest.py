"""Ingest throughput and crash safety: `quet server` on a fresh PostgreSQL database, N enrolled
devices, client processes posting scan reports (10 findings each) over loopback HTTP/1.1
keep-alive; then a second run in which the server is killed (-9) mid-way and restarted while the
clients retry what was not acknowledged. The database must hold exactly the reports sent.

    .venv/bin/python bench/ingest.py                      # 20,000 + 20,000 reports
    .venv/bin/python bench/ingest.py --reports 5000 --crash-reports 5000 --clients 1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"


# -- the server ---------------------------------------------------------------------------------
class Server:
    def __init__(self, db_url: str, port: int, home: Path, extra: list[str]) -> None:
        self.db_url, self.port, self.home, self.extra = db_url, port, home, extra
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = home / "server.log"

    def start(self) -> float:
        t0 = time.perf_counter()
        env = {**os.environ, "QUET_HOME": str(self.home), "QUET_SECRET_KEY": "bench" * 8}
        cmd = [sys.executable, "-m", "quet", "server", "--database-url", self.db_url,
               "--port", str(self.port), *self.extra]  # fmt: skip
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log,
                                         start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited: see {self.log}\n{self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200:
                    return time.perf_counter() - t0
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise SystemExit("server did not answer /api/v1/health within 60 s")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)  # the whole group: workers too
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


# -- the reports --------------------------------------------------------------------------------
def make_report(rng: int, findings: int) -> bytes:
    """A report shaped like `quet scan --json` output, with `findings` findings."""
    now = datetime.now(UTC)
    report = {
        "id": str(uuid.uuid4()),
        "schema_version": 1,
        "started": (now - timedelta(minutes=20)).isoformat(timespec="seconds"),
        "finished": now.isoformat(timespec="seconds"),
        "hostname": f"pc-{rng}",
        "os": "Windows 10",
        "paths": ["C:\\"],
        "signatures": {"identity": "b3f1c2", "starter": False, "yara_rules": 812,
                       "hashes": 250000, "filename_iocs": 1200, "c2_ips": 9000},
        "files_scanned": 181_234, "bytes_scanned": 48_000_000_000, "objects_scanned": 190_000,
        "files_cached": 170_000, "errors": [], "errors_count": 3, "problems": [],
        "too_large": [], "interrupted": False, "elapsed_seconds": 1200.5,
        "findings": [
            {"kind": "hash", "name": f"Win.Trojan.Agent-{rng % 97}-{i}",
             "path": f"C:\\Users\\user{rng}\\AppData\\Local\\Temp\\file{i}.exe",
             "indicator": "sha256:" + secrets.token_hex(32), "source": "main.hsb",
             "score": 100, "sha256": secrets.token_hex(32), "action": "reported"}
            for i in range(findings)
        ],
    }  # fmt: skip
    return json.dumps(report).encode()


# -- a client process ---------------------------------------------------------------------------
def client_main(
    url: str,
    credentials: list[str],
    count: int,
    findings: int,
    concurrency: int,
    acked: Any,
    out: Any,
    raw: bool,
) -> None:
    reports = [make_report(i, findings) for i in range(count)]
    ids = [json.loads(r)["id"] for r in reports]
    blast = _blast_raw if raw else _blast
    stats = asyncio.run(blast(url, credentials, reports, concurrency, acked))
    stats["ids"] = ids
    out.put(stats)


async def _blast(
    url: str, credentials: list[str], reports: list[bytes], concurrency: int, acked: Any
) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    next_index = 0
    stats: dict[str, Any] = {"created": 0, "duplicate": 0, "retries": 0, "latencies": []}
    first = time.perf_counter()
    last = first

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal next_index, last
        while next_index < len(reports):
            i = next_index
            next_index += 1
            headers = {"Authorization": f"Device {credentials[i % len(credentials)]}",
                       "Content-Type": "application/json"}  # fmt: skip
            while True:  # the agent's spool: resend until the server acknowledges
                t0 = time.perf_counter()
                try:
                    r = await client.post("/api/v1/scans", content=reports[i], headers=headers)
                except httpx.HTTPError:
                    stats["retries"] += 1
                    await asyncio.sleep(0.2)
                    continue
                if r.status_code in (200, 201):
                    break
                if r.status_code < 500 and r.status_code not in (408, 429):
                    raise SystemExit(f"refused: {r.status_code} {r.text[:300]}")
                stats["retries"] += 1
                await asyncio.sleep(0.2)
            now = time.perf_counter()
            stats["latencies"].append(now - t0)
            stats["created" if r.status_code == 201 else "duplicate"] += 1
            last = now
            with acked.get_lock():
                acked.value += 1

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    stats["first"], stats["last"] = first, last
    return stats


async def _blast_raw(
    url: str, credentials: list[str], reports: list[bytes], concurrency: int, acked: Any
) -> dict[str, Any]:
    """The same as _blast over plain asyncio streams: a minimal HTTP/1.1 keep-alive client, so
    that the client's own cost (httpx is heavy) does not hide the server's on 2 cores."""
    host, port = url.removeprefix("http://").split(":")
    next_index = 0
    stats: dict[str, Any] = {"created": 0, "duplicate": 0, "retries": 0, "latencies": []}
    first = time.perf_counter()
    last = first

    async def send(conn: list[Any], i: int) -> int:
        if not conn:
            conn.extend(await asyncio.open_connection(host, int(port)))
        reader, writer = conn
        head = (f"POST /api/v1/scans HTTP/1.1\r\nHost: {host}\r\n"
                f"Authorization: Device {credentials[i % len(credentials)]}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(reports[i])}\r\n\r\n")  # fmt: skip
        writer.write(head.encode() + reports[i])
        status_line = await reader.readuntil(b"\r\n")
        length = 0
        while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await reader.readexactly(length)
        return int(status_line.split()[1])

    async def worker() -> None:
        nonlocal next_index, last
        conn: list[Any] = []
        while next_index < len(reports):
            i = next_index
            next_index += 1
            while True:
                t0 = time.perf_counter()
                try:
                    code = await send(conn, i)
                except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                    if conn:
                        conn[1].close()
                    conn.clear()
                    stats["retries"] += 1
                    await asyncio.sleep(0.2)
                    continue
                if code in (200, 201):
                    break
                if code < 500 and code not in (408, 429):
                    raise SystemExit(f"refused: HTTP {code}")
                stats["retries"] += 1
                await asyncio.sleep(0.2)
            now = time.perf_counter()
            stats["latencies"].append(now - t0)
            stats["created" if code == 201 else "duplicate"] += 1
            last = now
            with acked.get_lock():
                acked.value += 1
        if conn:
            conn[1].close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    stats["first"], stats["last"] = first, last
    return stats


def run_clients(
    server: Server,
    credentials: list[str],
    total: int,
    args: argparse.Namespace,
    kill_at: float | None,
) -> dict[str, Any]:
    ctx = mp.get_context("fork")
    acked = ctx.Value("q", 0)
    out = ctx.Queue()
    per = [total // args.clients + (1 if i < total % args.clients else 0)
           for i in range(args.clients)]  # fmt: skip
    procs = [
        ctx.Process(target=client_main, args=(server.url, credentials[i::args.clients] or
                    credentials, n, args.findings, args.concurrency, acked, out,
                    args.client == "raw"))
        for i, n in enumerate(per)
    ]  # fmt: skip
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    killed: dict[str, float] = {}
    if kill_at is not None:
        while acked.value < kill_at * total:
            time.sleep(0.005)
            if not any(p.is_alive() for p in procs):
                break
        killed["acked_before_kill"] = acked.value
        server.kill()
        killed["restart_seconds"] = round(server.start(), 2)
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - t0
    # Reports are generated inside each client first: time from the first send to the last ack.
    first = min(r["first"] for r in results)
    last = max(r["last"] for r in results)
    lat = sorted(x for r in results for x in r["latencies"])
    return {
        "reports": total,
        "seconds": round(last - first, 2),
        "reports_per_s": round(total / (last - first), 1),
        "wall_seconds": round(elapsed, 2),
        "created": sum(r["created"] for r in results),
        "duplicate_answers": sum(r["duplicate"] for r in results),
        "retries": sum(r["retries"] for r in results),
        "p50_ms": round(1000 * lat[len(lat) // 2], 1),
        "p99_ms": round(1000 * lat[int(len(lat) * 0.99)], 1),
        "ids": [i for r in results for i in r["ids"]],
        **killed,
    }


# -- setting up ---------------------------------------------------------------------------------
def enroll(server: Server, db_url: str, n: int) -> list[str]:
    from quet.server.services import devices, orgs
    from quet.store.models import Base  # noqa: F401  (models registered)

    engine = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with sa.orm.Session(engine) as session:
        root = orgs.root(session)
        org = orgs.create(session, "BENCH", "Đơn vị đo", "province", root)
        token = devices.create_enrollment_token(session, "bench", org, max_uses=n + 1)
        session.commit()
    engine.dispose()
    creds = []
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for i in range(n):
            body = {"token": token, "hostname": f"bench-{i}", "kind": "workstation"}
            r = client.post("/api/v1/enroll", json=body)
            r.raise_for_status()
            creds.append(r.json()["credential"])
    return creds


def check(db_url: str, sent: list[str], findings: int) -> dict[str, Any]:
    engine = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        stored = [r[0] for r in conn.exec_driver_sql("SELECT id FROM scan_reports")]
        n_findings = conn.exec_driver_sql("SELECT count(*) FROM findings").scalar_one()
        odd = conn.exec_driver_sql(
            "SELECT count(*) FROM (SELECT scan_id FROM findings GROUP BY scan_id "
            f"HAVING count(*) <> {int(findings)}) t"
        ).scalar_one()
    engine.dispose()
    sent_set, stored_set = set(sent), set(stored)
    return {
        "sent": len(sent),
        "stored": len(stored),
        "lost": len(sent_set - stored_set),
        "unexpected": len(stored_set - sent_set),
        "doubled": len(stored) - len(stored_set),
        "findings": n_findings,
        "findings_expected": len(sent) * findings,
        "reports_with_wrong_findings": odd,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres",
                    help="an administrative PostgreSQL URL (a fresh database is created)")  # fmt: skip
    ap.add_argument("--reports", type=int, default=20_000, help="throughput run")
    ap.add_argument("--crash-reports", type=int, default=20_000, help="run with a kill -9")
    ap.add_argument("--kill-at", type=float, default=0.4, help="fraction acknowledged at the kill")
    ap.add_argument("--devices", type=int, default=200)
    ap.add_argument("--findings", type=int, default=10)
    ap.add_argument("--clients", type=int, default=2, help="client processes")
    ap.add_argument("--concurrency", type=int, default=32, help="connections per client process")
    ap.add_argument("--client", choices=("httpx", "raw"), default="httpx",
                    help="httpx, or a minimal asyncio HTTP/1.1 client (cheaper on 2 cores)")  # fmt: skip
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--server-arg", action="append", default=[], help="extra `quet server` args")
    ap.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = ap.parse_args()

    admin = sa.create_engine(args.pg.replace("postgresql://", "postgresql+psycopg://", 1),
                             isolation_level="AUTOCOMMIT")  # fmt: skip
    name = f"quet_bench_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    db_url = args.pg.rsplit("/", 1)[0] + f"/{name}"
    port = args.port
    if not port:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    home = Path(tempfile.mkdtemp(prefix="quet-bench-"))
    server = Server(db_url, port, home, args.server_arg)
    figures: dict[str, Any] = {
        "cores": os.cpu_count(),
        "database": "postgresql",
        "args": vars(args),
    }
    try:
        figures["startup_seconds"] = round(server.start(), 2)
        creds = enroll(server, db_url, args.devices)
        print(f"server on {server.url}, database {name}, {len(creds)} devices enrolled")
        steady = run_clients(server, creds, args.reports, args, None)
        print(f"throughput: {steady['reports_per_s']} reports/s ({steady['reports']} reports, "
              f"{args.findings} findings each, {steady['seconds']} s; p50 {steady['p50_ms']} ms, "
              f"p99 {steady['p99_ms']} ms)")  # fmt: skip
        crash = run_clients(server, creds, args.crash_reports, args, args.kill_at)
        print(f"crash run: killed -9 after {crash.get('acked_before_kill')} acknowledged, "
              f"restarted in {crash.get('restart_seconds')} s; {crash['retries']} retries, "
              f"{crash['duplicate_answers']} answered as duplicates; "
              f"{crash['reports_per_s']} reports/s overall")  # fmt: skip
        sent = steady.pop("ids") + crash.pop("ids")
        verdict = check(db_url, sent, args.findings)
        figures.update(throughput=steady, crash=crash, check=verdict)
        print(f"check: sent {verdict['sent']}, stored {verdict['stored']}, lost {verdict['lost']}, "
              f"doubled {verdict['doubled']}, unexpected {verdict['unexpected']}, findings "
              f"{verdict['findings']}/{verdict['findings_expected']}")  # fmt: skip
        ok = (verdict["lost"], verdict["doubled"], verdict["unexpected"],
              verdict["reports_with_wrong_findings"]) == (0, 0, 0, 0) and (
              verdict["findings"] == verdict["findings_expected"])  # fmt: skip
        figures["ok"] = ok
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "ingest.json").write_text(json.dumps(figures, indent=2))
        print("OK: nothing lost, nothing doubled" if ok else "FAILED: see bench/out/ingest.json")
        if not ok:
            sys.exit(1)
    finally:
        server.stop()
        if not args.keep:
            with admin.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


if __name__ == "__main__":
    main()
