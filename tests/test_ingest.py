"""The ingest service and its API on SQLite and PostgreSQL: enrollment, heartbeat, idempotent
report uploads (one by one and group-committed), people's uploads, finding status, coverage."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from quet.errors import InputError
from quet.scanner.result import Finding, ScanResult
from quet.server.services import campaigns, devices, ingest, orgs
from quet.store.models import Device, FindingRow, Participation, ScanReport
from server_fixtures import bearer, make_org, make_token, make_user


def report(
    n_findings: int = 3, *, finished: datetime | None = None, **extra: Any
) -> dict[str, Any]:
    """A real scanner report (ScanResult.to_dict()), as `quet scan --json` writes it."""
    result = ScanResult(paths=["/srv"], signatures={"identity": "abc", "starter": True})
    result.files_scanned, result.bytes_scanned = 120, 4096
    result.findings = [
        Finding(kind="hash", name=f"Win.Test.EICAR_HDB-{i}", path=f"/srv/eicar{i}.com",
                indicator="sha256:275a021b", sha256="275a021b" + "0" * 56)
        for i in range(n_findings)
    ]  # fmt: skip
    result.finished = (finished or datetime.now(UTC)).isoformat(timespec="seconds")
    data = result.to_dict()
    data.update(extra)
    return data


def enroll_device(
    client: TestClient, session: Session, org_code: str = "HN", kind: str = "server"
) -> tuple[int, dict[str, str]]:
    if orgs.by_code(session, org_code) is None:
        make_org(session, org_code, kind="province")
    org = orgs.by_code(session, org_code)
    assert org is not None
    token = devices.create_enrollment_token(session, "test", org, "lab")
    session.commit()
    body = {"token": token, "hostname": f"pc-{uuid.uuid4().hex[:6]}", "os": "Linux 6.1",
            "ips": ["10.0.0.5"], "kind": kind, "agent_version": "0.1.0"}  # fmt: skip
    r = client.post("/api/v1/enroll", json=body)
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["credential"].startswith("qd_") and out["org"] == org_code
    return out["device_id"], {"Authorization": f"Device {out['credential']}"}


def test_enroll_heartbeat_and_device_view(client: TestClient, db_session: Session) -> None:
    admin = bearer(make_token(db_session, "admin"))
    make_org(db_session, "HN", kind="province")
    r = client.post("/api/v1/orgs/HN/enrollment-tokens", json={"label": "IT"}, headers=admin)
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    assert token.startswith("qe_")
    enrolled = client.post(
        "/api/v1/enroll", json={"token": token, "hostname": "srv-01", "kind": "server"}
    )
    assert enrolled.status_code == 201, enrolled.text
    cred = enrolled.json()["credential"]
    dev = {"Authorization": f"Device {cred}"}
    stored = db_session.get(Device, enrolled.json()["device_id"])
    assert stored is not None and stored.credential_hash != cred  # only the hash is kept
    when = datetime.now(UTC) - timedelta(days=1)
    beat = {"os": "Debian 12", "ips": ["10.1.2.3"], "agent_version": "0.1.0",
            "content_version": 7, "content_updated_at": when.isoformat(),
            "antimalware": ["quet", "clamav"]}  # fmt: skip
    r = client.post("/api/v1/devices/me/heartbeat", json=beat, headers=dev)
    assert r.status_code == 200, r.text
    assert r.json()["tuf"] is False
    got = client.get(f"/api/v1/devices/{enrolled.json()['device_id']}", headers=admin).json()
    assert got["hostname"] == "srv-01" and got["os"] == "Debian 12" and got["org"] == "HN"
    assert got["content_version"] == 7 and got["protected_current"] is True
    assert got["antimalware"] == ["quet", "clamav"] and got["ips"] == ["10.1.2.3"]
    # Tokens are for enrolling, not for anything else; wrong ones are refused.
    assert client.post("/api/v1/devices/me/heartbeat", json={}, headers={
        "Authorization": f"Device {token}"}).status_code == 401  # fmt: skip
    bad = client.post("/api/v1/enroll", json={"token": "qe_nope", "hostname": "x"})
    assert bad.status_code == 403


def test_enrollment_token_is_scoped_and_expires(client: TestClient, db_session: Session) -> None:
    make_org(db_session, "HN", kind="province")
    make_org(db_session, "HP", kind="province")
    make_user(db_session, "hn_officer", "officer", "HN")
    make_user(db_session, "hn_viewer", "viewer", "HN")
    officer = bearer(make_token(db_session, "hn_officer"))
    viewer = bearer(make_token(db_session, "hn_viewer"))
    assert (
        client.post("/api/v1/orgs/HP/enrollment-tokens", json={}, headers=officer).status_code
        == 404
    )
    assert (
        client.post("/api/v1/orgs/HN/enrollment-tokens", json={}, headers=viewer).status_code == 403
    )
    one = client.post(
        "/api/v1/orgs/HN/enrollment-tokens", json={"max_uses": 1}, headers=officer
    ).json()["token"]
    assert client.post("/api/v1/enroll", json={"token": one, "hostname": "a"}).status_code == 201
    used = client.post("/api/v1/enroll", json={"token": one, "hostname": "b"})
    assert used.status_code == 403 and "used up" in used.json()["detail"]
    org = orgs.by_code(db_session, "HN")
    assert org is not None
    old = devices.create_enrollment_token(db_session, "t", org, days=1)
    db_session.commit()
    from quet.server import security
    from quet.store.models import EnrollmentToken

    row = db_session.scalars(
        sa.select(EnrollmentToken).where(EnrollmentToken.token_hash == security.token_hash(old))
    ).one()
    row.expires_at = datetime.now(UTC) - timedelta(hours=1)
    db_session.commit()
    r = client.post("/api/v1/enroll", json={"token": old, "hostname": "c"})
    assert r.status_code == 403 and "expired" in r.json()["detail"]


def test_scan_upload_is_idempotent(client: TestClient, db_session: Session) -> None:
    device_id, dev = enroll_device(client, db_session)
    data = report(3)
    first = client.post("/api/v1/scans", json=data, headers=dev)
    assert first.status_code == 201, first.text
    assert first.json() == {"id": data["id"], "duplicate": False}
    again = client.post("/api/v1/scans", json=data, headers=dev)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert db_session.scalar(sa.select(sa.func.count()).select_from(ScanReport)) == 1
    rows = db_session.scalars(sa.select(FindingRow).order_by(FindingRow.name)).all()
    assert [r.name for r in rows] == [f"Win.Test.EICAR_HDB-{i}" for i in range(3)]
    assert {r.status for r in rows} == {"open"} and rows[0].device_id == device_id
    device = db_session.get(Device, device_id)
    assert device is not None and device.open_findings == 3 and device.last_scan_at is not None
    # A newer clean scan sets open findings to 0; an older one arriving late does not.
    later = report(0, finished=datetime.now(UTC) + timedelta(minutes=5))
    assert client.post("/api/v1/scans", json=later, headers=dev).status_code == 201
    late = report(2, finished=datetime.now(UTC) - timedelta(days=2))
    assert client.post("/api/v1/scans", json=late, headers=dev).status_code == 201
    db_session.expire_all()
    device = db_session.get(Device, device_id)
    assert device is not None and device.open_findings == 0
    assert device.last_scan_at is not None
    assert (
        abs((device.last_scan_at - datetime.fromisoformat(later["finished"])).total_seconds()) < 1
    )


def test_scan_upload_refuses_bad_input(client: TestClient, db_session: Session) -> None:
    _, dev = enroll_device(client, db_session)
    assert client.post("/api/v1/scans", json=report()).status_code == 401
    assert client.post(
        "/api/v1/scans", json=report(), headers={"Authorization": "Device qd_nope"}
    ).status_code == 401  # fmt: skip
    bad = client.post("/api/v1/scans", json=report(id="not-a-uuid"), headers=dev)
    assert bad.status_code == 422 and "id" in bad.json()["detail"]
    broken = report(1)
    broken["findings"][0]["score"] = "high"
    r = client.post("/api/v1/scans", json=broken, headers=dev)
    assert r.status_code == 422 and "findings.0.score" in r.json()["detail"]
    r = client.post("/api/v1/scans", content=b"{not json", headers=dev)
    assert r.status_code == 422
    huge = b'{"pad": "' + b"x" * (20 * 2**20) + b'"}'
    assert client.post("/api/v1/scans", content=huge, headers=dev).status_code == 413
    # NUL bytes (PostgreSQL text refuses them) are cleaned rather than failing the batch.
    odd = report(1)
    odd["findings"][0]["path"] = "/tmp/a\x00b"
    assert client.post("/api/v1/scans", json=odd, headers=dev).status_code == 201
    assert db_session.scalar(sa.select(FindingRow.path)) == "/tmp/ab"


def test_people_upload_for_machines_without_agent(client: TestClient, db_session: Session) -> None:
    make_org(db_session, "HN", kind="province")
    make_org(db_session, "HN-01", "HN")
    make_user(db_session, "hn_officer", "officer", "HN")
    make_user(db_session, "hn_viewer", "viewer", "HN")
    officer = bearer(make_token(db_session, "hn_officer"))
    viewer = bearer(make_token(db_session, "hn_viewer"))
    data = report(2, hostname="ke-toan-01")
    files = {"file": ("scan.json", json.dumps(data).encode(), "application/json")}
    r = client.post("/api/v1/scans/upload", data={"org": "HN-01"}, files=files, headers=viewer)
    assert r.status_code == 403
    r = client.post("/api/v1/scans/upload", data={"org": "HN-01"}, files=files, headers=officer)
    assert r.status_code == 201, r.text
    r = client.post("/api/v1/scans/upload", data={"org": "HN-01"}, files=files, headers=officer)
    assert r.status_code == 200 and r.json()["duplicate"] is True
    device = db_session.scalars(sa.select(Device).where(Device.hostname == "ke-toan-01")).one()
    assert device.uploaded_only and device.open_findings == 2
    bad = {"file": ("scan.json", b"[1, 2]", "application/json")}
    assert client.post("/api/v1/scans/upload", data={"org": "HN-01"}, files=bad,
                       headers=officer).status_code == 422  # fmt: skip
    assert client.post("/api/v1/scans/upload", data={"org": "ZZ"}, files=files,
                       headers=officer).status_code == 404  # fmt: skip


def test_finding_status_is_scoped(client: TestClient, db_session: Session) -> None:
    device_id, dev = enroll_device(client, db_session, "HN")
    make_org(db_session, "HP", kind="province")
    make_user(db_session, "hp_officer", "officer", "HP")
    make_user(db_session, "hn_officer", "officer", "HN")
    client.post("/api/v1/scans", json=report(2), headers=dev)
    finding = db_session.scalars(sa.select(FindingRow).order_by(FindingRow.id)).first()
    assert finding is not None
    url = f"/api/v1/findings/{finding.id}"
    other = bearer(make_token(db_session, "hp_officer"))
    assert client.patch(url, json={"status": "remediated"}, headers=other).status_code == 404
    mine = bearer(make_token(db_session, "hn_officer"))
    assert client.patch(url, json={"status": "fixed"}, headers=mine).status_code == 422
    r = client.patch(url, json={"status": "remediated"}, headers=mine)
    assert r.status_code == 200 and r.json()["status"] == "remediated"
    db_session.expire_all()
    device = db_session.get(Device, device_id)
    assert device is not None and device.open_findings == 1
    client.patch(url, json={"status": "open"}, headers=mine)
    db_session.expire_all()
    assert db_session.get(Device, device_id).open_findings == 2  # type: ignore[union-attr]


def test_coverage_figures(client: TestClient, db_session: Session) -> None:
    ids = [enroll_device(client, db_session, "HN", kind)[0] for kind in ("server", "workstation")]
    enroll_device(client, db_session, "HN", "endpoint")
    fresh, stale = (db_session.get(Device, i) for i in ids)
    assert fresh is not None and stale is not None
    fresh.content_updated_at = datetime.now(UTC) - timedelta(days=1)
    stale.content_updated_at = datetime.now(UTC) - timedelta(days=30)
    db_session.commit()
    admin = bearer(make_token(db_session, "admin"))
    cov = client.get("/api/v1/devices/coverage", params={"org": "HN"}, headers=admin).json()
    assert (cov["devices"], cov["protected_current"], cov["stale"]) == (3, 1, 2)
    assert cov["pct"] == 33.3 and cov["all_protected"] is False
    assert cov["by_kind"]["server"] == {"devices": 1, "protected_current": 1, "pct": 100.0}
    assert cov["by_kind"]["workstation"]["pct"] == 0.0
    page = client.get("/api/v1/devices", params={"org": "HN", "stale_days": 7}, headers=admin)
    assert page.json()["total"] == 2
    page = client.get("/api/v1/devices", params={"kind": "server"}, headers=admin).json()
    assert [d["id"] for d in page["items"]] == [ids[0]]


def test_ingest_marks_the_campaign_deployed(client: TestClient, db_session: Session) -> None:
    _, dev = enroll_device(client, db_session, "HN")
    root = orgs.root(db_session)
    assert root is not None
    today = date.today()
    phase = campaigns.PhaseSpec(1, "Đợt 1", today - timedelta(days=3), today + timedelta(days=30),
                                today + timedelta(days=35))  # fmt: skip
    campaign = campaigns.create_campaign(db_session, "test", "Quét 2025", 2025, root, [phase])
    db_session.commit()
    assert client.post("/api/v1/scans", json=report(1), headers=dev).status_code == 201
    db_session.expire_all()
    hn = orgs.by_code(db_session, "HN")
    assert hn is not None
    row = db_session.scalars(
        sa.select(Participation).where(
            Participation.campaign_id == campaign.id, Participation.org_id == hn.id
        )
    ).one()
    assert row.deployed_at is not None


def test_batcher_group_commits_exactly_once(server_app: FastAPI, db_session: Session) -> None:
    org = make_org(db_session, "HN", kind="province")
    devs = [Device(org_id=org.id, hostname=f"pc{i}") for i in range(5)]
    db_session.add_all(devs)
    db_session.commit()
    reports = [report(2) for _ in range(60)]
    items = [ingest.prepare(ingest.parse(r), devs[i % 5].id, org.id) for i, r in enumerate(reports)]

    async def blast() -> tuple[list[bool], int]:
        batcher = ingest.Batcher(server_app.state.db, max_batch=25)
        # Each report twice, concurrently: the second of a pair must come back as a duplicate.
        results = await asyncio.gather(*(batcher.submit(i) for i in items + items))
        await batcher.close()
        return list(results), batcher.batches

    results, batches = asyncio.run(blast())
    assert results[:60].count(False) + results[60:].count(False) == 60
    assert all(a != b for a, b in zip(results[:60], results[60:], strict=True))
    assert batches < 60  # grouped, not one transaction per report
    db_session.expire_all()
    ids = set(db_session.scalars(sa.select(ScanReport.id)))
    assert ids == {r["id"] for r in reports}
    assert db_session.scalar(sa.select(sa.func.count()).select_from(FindingRow)) == 120
    assert sum(d.open_findings for d in db_session.scalars(sa.select(Device))) == 10


def test_service_ingest_and_duplicates_in_one_batch(
    server_app: FastAPI, db_session: Session
) -> None:
    org = make_org(db_session, "HN", kind="province")
    device = Device(org_id=org.id, hostname="pc")
    db_session.add(device)
    db_session.commit()
    data = report(1)
    assert ingest.ingest(db_session, device, data) == (data["id"], False)
    db_session.commit()
    assert ingest.ingest(db_session, device, data) == (data["id"], True)
    item = ingest.prepare(ingest.parse(report(1)), device.id, org.id)
    assert ingest.write_batch(db_session, [item, item]) == [False, True]
    db_session.commit()
    with pytest.raises(InputError, match="started"):
        ingest.ingest(db_session, device, {"id": str(uuid.uuid4())})


def test_tuf_files_are_served_read_only(tmp_path: Path) -> None:
    from quet.server.app import create_app
    from server_fixtures import make_settings

    repo = tmp_path / "repo"
    (repo / "metadata").mkdir(parents=True)
    (repo / "metadata" / "timestamp.json").write_text('{"signed": {}}')
    (tmp_path / "secret.txt").write_text("no")
    (repo / "keys.txt").write_text("no")
    app = create_app(make_settings(f"sqlite:///{tmp_path / 's.sqlite'}", tuf_repo=str(repo)))
    with TestClient(app) as c:
        assert c.get("/api/v1/tuf/metadata/timestamp.json").json() == {"signed": {}}
        assert c.get("/api/v1/tuf/keys.txt").status_code == 404
        assert c.get("/api/v1/tuf/metadata/../../secret.txt").status_code == 404
        assert c.get("/api/v1/tuf/metadata/%2e%2e/%2e%2e/secret.txt").status_code == 404
    app.state.db.dispose()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=20,
    )
)
def test_parse_refuses_anything_odd_with_input_error(value: Any) -> None:
    text = json.dumps(value)
    try:
        parsed = ingest.parse(text)
    except InputError as exc:
        assert "not a Quét scan report" in str(exc)
    else:  # only something with an id and a start time gets through
        assert isinstance(parsed.id, uuid.UUID)


@settings(max_examples=100, deadline=None)
@given(
    st.fixed_dictionaries(
        {"id": st.uuids().map(str), "started": st.just("2025-03-01T10:00:00+00:00")},
        optional={
            "finished": st.sampled_from(["", "2025-03-01T11:00:00", "0001-01-01T00:00:00"]),
            "files_scanned": st.integers(),
            "findings": st.lists(
                st.fixed_dictionaries(
                    {"kind": st.text(max_size=40), "name": st.text(max_size=40)},
                    optional={"score": st.integers(), "path": st.text()},
                ),
                max_size=3,
            ),
        },
    )
)
def test_parse_of_near_reports(value: dict[str, Any]) -> None:
    try:
        parsed = ingest.parse(value)
    except InputError:
        return
    item = ingest.prepare(parsed, 1, 1)
    assert item.finished >= datetime(1970, 1, 1, tzinfo=UTC)
    assert all(len(f[0]) <= 32 and "\x00" not in f[2] for f in item.findings)


def test_fast_path_answers_like_the_route(server_app: FastAPI, db_session: Session) -> None:
    from quet.server.api.scans import FastIngest

    server_app.add_middleware(FastIngest)
    with TestClient(server_app) as fast:
        _, dev = enroll_device(fast, db_session)
        data = report(2)
        r = fast.post("/api/v1/scans", json=data, headers=dev)
        assert (r.status_code, r.json()) == (201, {"id": data["id"], "duplicate": False})
        assert fast.post("/api/v1/scans", json=data, headers=dev).status_code == 200
        assert fast.post("/api/v1/scans", json=data).status_code == 401
        bad = fast.post("/api/v1/scans", json=report(id="x"), headers=dev)
        assert bad.status_code == 422 and "id" in bad.json()["detail"]
        huge = b"[" + b" " * (20 * 2**20) + b"]"
        assert fast.post("/api/v1/scans", content=huge, headers=dev).status_code == 413
        assert fast.get("/api/v1/health").status_code == 200  # everything else passes through
    assert db_session.scalar(sa.select(sa.func.count()).select_from(FindingRow)) == 2
