"""The agent against a real server on 127.0.0.1 (uvicorn in a thread): enroll, a scan with EICAR
reaching the server, the spool surviving a server outage, duplicates and refused reports."""

from __future__ import annotations

import json
import os
import socket
import stat
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from conftest import EICAR
from quet.agent import config, runner
from quet.agent.client import AgentClient
from quet.agent.spool import Spool
from quet.cli.agent import app as agent_cli
from quet.cli.agent import parse_interval
from quet.errors import InputError
from quet.server.services import devices, orgs
from quet.store.models import Device, FindingRow, ScanReport


class LiveServer:
    """The app served by uvicorn on a fixed loopback port; stop() and start() again to stand in
    for an outage."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        cfg = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(cfg)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        assert self.server is not None and self.thread is not None
        self.server.should_exit = True
        self.thread.join(15)


@pytest.fixture
def live(server_app: FastAPI) -> Iterator[LiveServer]:
    server = LiveServer(server_app)
    server.start()
    yield server
    if server.thread is not None and server.thread.is_alive():
        server.stop()


def _token(session: Session, code: str = "HN") -> str:
    root = orgs.root(session)
    org = orgs.by_code(session, code) or orgs.create(session, code, "Sở HN", "province", root)
    token = devices.create_enrollment_token(session, "test", org, "agents")
    session.commit()
    return token


def _enroll(live: LiveServer, session: Session, *extra: str) -> config.AgentConfig:
    result = CliRunner().invoke(
        agent_cli, ["enroll", live.url, _token(session), "--kind", "server", *extra]
    )
    assert result.exit_code == 0, result.output
    return config.load_config()


def test_enroll_then_run_once_finds_eicar_on_the_server(
    live: LiveServer, db_session: Session, tmp_path: Path, quet_home: Path
) -> None:
    cfg = _enroll(live, db_session)
    path = config.config_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert cfg.credential.startswith("qd_") and cfg.org == "HN" and cfg.kind == "server"
    target = tmp_path / "share"
    target.mkdir()
    (target / "eicar.com").write_bytes(EICAR)
    (target / "clean.txt").write_text("hello")
    result = CliRunner().invoke(agent_cli, ["run", "--once", "--paths", str(target), "--jobs", "1"])
    assert result.exit_code == 0, result.output
    db_session.expire_all()
    device = db_session.get(Device, cfg.device_id)
    assert device is not None
    assert device.open_findings >= 1 and device.last_scan_at is not None
    assert "quet" in device.antimalware and device.agent_version
    findings = db_session.scalars(sa.select(FindingRow)).all()
    assert any(f.path.endswith("eicar.com") for f in findings)
    assert Spool().pending() == []
    state = config.read_state()
    assert state["last_scan_id"] == findings[0].scan_id
    status = CliRunner().invoke(agent_cli, ["status", "--json"])
    shown = json.loads(status.output)
    assert shown["spool"] == {"pending": 0, "rejected": 0}
    assert cfg.credential not in status.output  # the secret is never printed
    # Enrolling twice needs --force.
    again = CliRunner().invoke(agent_cli, ["enroll", live.url, "qe_x"])
    assert again.exit_code != 0 and isinstance(again.exception, InputError)


def test_spool_survives_an_outage_and_uploads_once(
    live: LiveServer, db_session: Session, tmp_path: Path
) -> None:
    cfg = _enroll(live, db_session)
    target = tmp_path / "share"
    target.mkdir()
    (target / "eicar.com").write_bytes(EICAR)
    live.stop()
    logs: list[str] = []
    result = runner.run(runner.RunOptions(paths=[str(target)], jobs=1), logs.append, once=True)
    assert result is not None and not result.upload.ok
    pending = Spool().pending()
    assert [p.stem for p in pending] == [result.scan_id]  # kept on disk, nothing lost
    assert "cannot reach" in config.read_state()["last_error"]
    assert any(line.startswith("heartbeat:") and "cannot reach" in line for line in logs)
    live.start()
    up = CliRunner().invoke(agent_cli, ["upload"])
    assert up.exit_code == 0, up.output
    assert Spool().pending() == []
    db_session.expire_all()
    rows = db_session.scalars(sa.select(ScanReport.id)).all()
    assert rows == [result.scan_id]
    # The same report again (as after a crash between the server's answer and the delete).
    data = tmp_path / "again.json"
    report = {"id": result.scan_id, "started": "2025-01-01T00:00:00+00:00"}
    data.write_text(json.dumps(report))
    with AgentClient(cfg.server_url, cfg.credential) as client:
        assert client.upload_one(data.read_bytes()) == ("duplicate", "")
    assert db_session.scalar(sa.select(sa.func.count()).select_from(ScanReport)) == 1


def test_refused_reports_are_set_aside_in_order(live: LiveServer, db_session: Session) -> None:
    cfg = _enroll(live, db_session)
    spool = Spool()
    good_old = {"id": str(uuid.uuid4()), "started": "2025-01-01T00:00:00+00:00"}
    bad = {"id": "not-a-uuid", "started": "2025-01-01T00:00:00+00:00"}
    good_new = {"id": str(uuid.uuid4()), "started": "2025-01-02T00:00:00+00:00"}
    for i, report in enumerate((good_old, bad, good_new)):
        path = spool.put(report)
        os.utime(path, ns=(1_000_000_000 * (i + 1), 1_000_000_000 * (i + 1)))
    assert [p.stem for p in spool.pending()] == [good_old["id"], "not-a-uuid", good_new["id"]]
    summary = runner.upload(cfg)
    assert (summary.stored, summary.rejected, summary.kept) == (2, 1, 0)
    rejected = spool.rejected()
    assert [p.stem for p in rejected] == ["not-a-uuid"]
    reason = rejected[0].with_suffix(".reason.txt").read_text()
    assert reason.startswith("HTTP 422") and "id" in reason
    db_session.expire_all()
    received = db_session.scalars(sa.select(ScanReport).order_by(ScanReport.received_at)).all()
    assert [r.id for r in received] == [good_old["id"], good_new["id"]]


def test_wrong_credential_keeps_the_reports(live: LiveServer, db_session: Session) -> None:
    cfg = _enroll(live, db_session)
    spool = Spool()
    spool.put({"id": str(uuid.uuid4()), "started": "2025-01-01T00:00:00+00:00"})
    cfg.credential = "qd_wrong"
    summary = runner.upload(cfg)
    assert summary.kept == 1 and "401" in summary.error
    assert len(spool.pending()) == 1 and spool.rejected() == []


def test_spool_writes_are_atomic_and_leftovers_dropped(quet_home: Path) -> None:
    spool = Spool()
    (spool.root / ".tmp-half").write_bytes(b'{"id": "trunc')
    path = spool.put({"id": "abc", "started": "x"})
    assert json.loads(path.read_text()) == {"id": "abc", "started": "x"}
    assert Spool().pending() == [path]  # a new Spool removed the half-written file
    assert not (spool.root / ".tmp-half").exists()
    with pytest.raises(ValueError):
        spool.put({"id": "../escape"})


def test_inventory_and_intervals(quet_home: Path) -> None:
    info = runner.inventory("endpoint")
    assert info["kind"] == "endpoint" and info["hostname"] == socket.gethostname()
    assert info["antimalware"][0] == "quet"
    assert ("clamav" in info["antimalware"]) == bool(
        any(Path(p, "clamscan").exists() for p in os.environ["PATH"].split(":"))
        or Path("/usr/sbin/clamd").exists()
    )
    assert all(not ip.startswith("127.") for ip in info["ips"])
    assert info["content_version"] is None  # nothing installed in a fresh QUET_HOME
    assert parse_interval("6h") == 21600 and parse_interval("1h30m") == 5400
    assert parse_interval("90") == 90
    for bad in ("", "6x", "h", "0", "-5m"):
        with pytest.raises(InputError):
            parse_interval(bad)


def test_not_enrolled_is_a_clear_error(quet_home: Path) -> None:
    result = CliRunner().invoke(agent_cli, ["status"])
    assert result.exit_code != 0
    assert isinstance(result.exception, InputError)
    assert "quet agent enroll" in str(result.exception)
