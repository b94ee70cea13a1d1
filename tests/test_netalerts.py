"""Network-watch alerts on the server, on SQLite and PostgreSQL: upsert by id (idempotent), mapping
to a device and an organisation by registered range within the poster's subtree, scoping, triage,
and `quet net watch`'s Poster against a real server fed by alerts from a real Zeek log."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from quet.indicators.model import IssueLog, make
from quet.indicators.sets import IndicatorSet
from quet.netwatch.alerts import Aggregator, Alert, Poster, aggregate
from quet.netwatch.matcher import InternalNets, match_events
from quet.netwatch.sources import read_path
from quet.server.services import orgs
from quet.store.models import AuditEntry, Device, NetAlertRow
from server_fixtures import bearer, make_org, make_token, make_user

SSH_LOG = Path(__file__).parent / "data" / "netwatch" / "zeek" / "wrccdc-2018" / "ssh.log"
URL = "/api/v1/net/alerts"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _alert(client: str, indicator: str = "evil.example", count: int = 3, **kw: Any) -> Alert:
    first = kw.pop("first_seen", T0)
    return Alert(
        client=client,
        indicator_type=kw.pop("indicator_type", "domain"),
        indicator=indicator,
        name=kw.pop("name", "Emotet C2"),
        family=kw.pop("family", "Emotet"),
        source_feed=kw.pop("source_feed", "feed.csv"),
        first_seen=first,
        last_seen=kw.pop("last_seen", first + timedelta(minutes=count) if first else None),
        count=count,
        fields=kw.pop("fields", ["query"]),
        examples=kw.pop("examples", [("dns.log", 12, f"a.{indicator}")]),
    )


def _body(*alerts: Alert) -> dict[str, Any]:
    return {"schema": "quet.net.alert/1", "alerts": [a.to_dict() for a in alerts]}


def _device(session: Session, code: str, hostname: str, ips: list[str]) -> Device:
    org = orgs.by_code(session, code)
    assert org is not None
    device = Device(org_id=org.id, hostname=hostname, ips=ips)
    session.add(device)
    session.commit()
    return device


@pytest.fixture
def tree(db_session: Session) -> dict[str, str]:
    """VN > P1 (10.1.0.0/16) > P1-U1 (10.1.1.0/24); VN > P2 (10.2.0.0/16). Devices pc-01 in P1-U1
    (10.1.1.5), pc-lab in P1-U1 (172.16.0.4, in no registered range), pc-p2 in P2 (10.2.0.9).
    Returns API tokens by user name."""
    make_org(db_session, "P1", kind="province", ip_ranges=("10.1.0.0/16",))
    make_org(db_session, "P1-U1", "P1", ip_ranges=("10.1.1.0/24",))
    make_org(db_session, "P2", kind="province", ip_ranges=("10.2.0.0/16",))
    _device(db_session, "P1-U1", "pc-01", ["10.1.1.5", "fe80::1"])
    _device(db_session, "P1-U1", "pc-lab", ["172.16.0.4"])
    _device(db_session, "P2", "pc-p2", ["10.2.0.9"])
    tokens = {}
    for user, role, org in [
        ("off1", "officer", "P1"),
        ("off2", "officer", "P2"),
        ("view1", "viewer", "P1"),
        ("root", "admin", "VN"),
    ]:
        make_user(db_session, user, role, org)
        tokens[user] = make_token(db_session, user)
    return tokens


def _post(client: TestClient, token: str, *alerts: Alert) -> dict[str, Any]:
    response = client.post(URL, json=_body(*alerts), headers=bearer(token))
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def _row(session: Session, alert_id: str) -> NetAlertRow:
    session.expire_all()
    row = session.get(NetAlertRow, alert_id)
    assert row is not None
    return row


def test_posting_twice_changes_nothing_and_a_repeat_with_news_updates(
    client: TestClient, db_session: Session, tree: dict[str, str]
) -> None:
    a, b = _alert("10.1.1.5"), _alert("10.1.1.6", "203.0.113.9", indicator_type="ipv4")
    first = _post(client, tree["off1"], a, b)
    assert (first["created"], first["updated"], first["unchanged"]) == (2, 0, 0)
    assert [x["result"] for x in first["alerts"]] == ["created", "created"]
    stamp = _row(db_session, a.id).updated_at
    audits = db_session.scalar(sa.select(sa.func.count()).select_from(AuditEntry))

    again = _post(client, tree["off1"], a, b)
    assert [x["result"] for x in again["alerts"]] == ["unchanged", "unchanged"]
    assert db_session.scalar(sa.select(sa.func.count()).select_from(NetAlertRow)) == 2
    assert _row(db_session, a.id).updated_at == stamp
    assert db_session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) == audits

    # An older, smaller snapshot (a late retry) never rolls the alert back.
    stale = _alert("10.1.1.5", count=1)
    assert stale.id == a.id
    assert _post(client, tree["off1"], stale)["alerts"][0]["result"] == "unchanged"
    assert _row(db_session, a.id).count == 3

    grown = _alert("10.1.1.5", count=7, fields=["query", "answer"],
                   examples=[("dns.log", 40, "b.evil.example")])  # fmt: skip
    assert grown.id == a.id
    assert _post(client, tree["off1"], grown)["alerts"][0]["result"] == "updated"
    row = _row(db_session, a.id)
    assert row.count == 7
    assert row.last_seen == T0 + timedelta(minutes=7)
    assert row.first_seen == T0
    assert row.fields == ["query", "answer"]
    assert row.examples == [
        {"file": "dns.log", "line": 12, "value": "a.evil.example"},
        {"file": "dns.log", "line": 40, "value": "b.evil.example"},
    ]
    assert row.reporter == "off1"
    assert row.updated_at > stamp

    # The same id twice in one batch: one row, the second folded into the first.
    c1, c2 = _alert("10.1.1.9", count=2), _alert("10.1.1.9", count=5)
    both = _post(client, tree["off1"], c1, c2)
    assert [x["result"] for x in both["alerts"]] == ["created", "updated"]
    assert _row(db_session, c1.id).count == 5


def test_alerts_map_to_device_and_organisation_by_registered_range(
    client: TestClient, db_session: Session, tree: dict[str, str]
) -> None:
    alerts = [
        _alert("10.1.1.5"),  # P1-U1's /24 and pc-01
        _alert("10.1.7.7"),  # only P1's /16, no device
        _alert("172.16.0.4"),  # no range; the device pc-lab says P1-U1
        _alert("10.2.0.9"),  # P2's range and device: outside P1's subtree
        _alert("192.0.2.1"),  # registered nowhere
        _alert("fe80:0:0::1"),  # IPv6, written long: compressed before matching pc-01
        _alert('ws-17"%_\\'),  # not an address (and LIKE's wildcards): nothing to map
    ]
    out = _post(client, tree["off1"], *alerts)["alerts"]
    got = [(x["org"], x["device"], x["note"]) for x in out]
    assert got == [
        ("P1-U1", "pc-01", ""),
        ("P1", "", ""),
        ("P1-U1", "pc-lab", ""),
        ("P1", "", "outside_scope"),
        ("P1", "", "unregistered"),
        ("P1-U1", "pc-01", ""),
        ("P1", "", "unregistered"),
    ]
    p1u1 = orgs.by_code(db_session, "P1-U1")
    assert p1u1 is not None
    row = _row(db_session, alerts[0].id)
    assert row.org_id == p1u1.id
    assert row.device_id is not None
    assert db_session.get(Device, row.device_id).hostname == "pc-01"  # type: ignore[union-attr]
    assert row.client == "10.1.1.5"
    assert _row(db_session, alerts[5].id).client == "fe80::1"

    # P2's own officer posting the same host maps it to P2 and its device.
    mine = _post(client, tree["off2"], _alert("10.2.0.9", "other.example"))["alerts"][0]
    assert (mine["org"], mine["device"], mine["note"]) == ("P2", "pc-p2", "")

    # A device enrolled later is filled in on the next post with news.
    unmapped = alerts[1]
    _device(db_session, "P1", "srv-77", ["10.1.7.7"])
    again = _post(client, tree["off1"], unmapped)["alerts"][0]
    assert (again["result"], again["device"]) == ("updated", "srv-77")


def test_a_province_sees_only_its_own_subtree(
    client: TestClient, db_session: Session, tree: dict[str, str]
) -> None:
    p1_alert = _alert("10.1.1.5", family="Emotet")
    p2_alert = _alert("10.2.0.9", family="Mirai")
    _post(client, tree["off1"], p1_alert)
    _post(client, tree["off2"], p2_alert)

    def ids(token: str, **params: str) -> list[str]:
        response = client.get(URL, params=params, headers=bearer(token))
        assert response.status_code == 200, response.text
        return [x["id"] for x in response.json()["items"]]

    assert ids(tree["off1"]) == [p1_alert.id]
    assert ids(tree["off2"]) == [p2_alert.id]
    assert ids(tree["view1"]) == [p1_alert.id]
    assert sorted(ids(tree["root"])) == sorted([p1_alert.id, p2_alert.id])
    assert ids(tree["root"], org="P2") == [p2_alert.id]
    assert ids(tree["off1"], org="P1-U1") == [p1_alert.id]

    h2 = bearer(tree["off2"])
    assert client.get(URL, params={"org": "P1"}, headers=h2).status_code == 404
    assert client.get(f"{URL}/{p1_alert.id}", headers=h2).status_code == 404
    patch = client.patch(f"{URL}/{p1_alert.id}", json={"status": "resolved"}, headers=h2)
    assert patch.status_code == 404
    assert _row(db_session, p1_alert.id).status == "open"
    one = client.get(f"{URL}/{p1_alert.id}", headers=bearer(tree["view1"]))
    assert one.status_code == 200
    assert (one.json()["org"], one.json()["device"]) == ("P1-U1", "pc-01")

    # The same id posted by P2 (a shared private range, the same first sighting) is refused,
    # and P1's alert is untouched.
    clash = _alert("10.1.1.5", family="Emotet", count=50)
    assert clash.id == p1_alert.id
    out = _post(client, tree["off2"], clash)
    assert (out["refused"], out["alerts"][0]["result"]) == (1, "refused")
    assert _row(db_session, p1_alert.id).count == 3


def test_viewers_may_not_post_and_triage_reopens_on_new_activity(
    client: TestClient, db_session: Session, tree: dict[str, str]
) -> None:
    a = _alert("10.1.1.5")
    refused = client.post(URL, json=_body(a), headers=bearer(tree["view1"]))
    assert refused.status_code == 403
    assert db_session.scalar(sa.select(sa.func.count()).select_from(NetAlertRow)) == 0
    assert client.post(URL, json=_body(a)).status_code == 401

    _post(client, tree["off1"], a)
    path = f"{URL}/{a.id}"
    viewer = client.patch(path, json={"status": "resolved"}, headers=bearer(tree["view1"]))
    assert viewer.status_code == 403
    done = client.patch(path, json={"status": "resolved"}, headers=bearer(tree["off1"]))
    assert done.status_code == 200
    assert done.json()["status"] == "resolved"
    assert (
        client.patch(path, json={"status": "gone"}, headers=bearer(tree["off1"])).status_code == 422
    )
    audit = db_session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "net_alert.status")
    ).one()
    assert audit.detail == {"from": "open", "to": "resolved"}

    # The same snapshot again keeps it resolved; activity after the fix reopens it.
    _post(client, tree["off1"], a)
    assert _row(db_session, a.id).status == "resolved"
    _post(client, tree["off1"], _alert("10.1.1.5", count=4))
    assert _row(db_session, a.id).status == "open"

    client.patch(path, json={"status": "false_positive"}, headers=bearer(tree["off1"]))
    _post(client, tree["off1"], _alert("10.1.1.5", count=9))
    row = _row(db_session, a.id)
    assert (row.status, row.count) == ("false_positive", 9)


def test_listing_filters_and_pages(
    client: TestClient, db_session: Session, tree: dict[str, str]
) -> None:
    alerts = [
        _alert(f"10.1.1.{n}", family="Emotet" if n % 2 else "Mirai", count=n) for n in range(1, 8)
    ]
    _post(client, tree["off1"], *alerts)
    h = bearer(tree["off1"])
    client.patch(f"{URL}/{alerts[0].id}", json={"status": "false_positive"}, headers=h)

    def page(**params: Any) -> dict[str, Any]:
        response = client.get(URL, params=params, headers=h)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    everything = page()
    assert everything["total"] == 7
    # The latest sighting first: the alert with count n was last seen n minutes after T0.
    assert [x["count"] for x in everything["items"]] == [7, 6, 5, 4, 3, 2, 1]
    assert page(family="emotet")["total"] == 4
    assert page(family="Mirai", status="open")["total"] == 3
    assert [x["count"] for x in page(status="false_positive")["items"]] == [1]
    assert page(client="10.1.1.3")["items"][0]["id"] == alerts[2].id
    first, second = page(limit=3), page(limit=3, offset=3)
    assert first["total"] == second["total"] == 7
    assert [x["count"] for x in first["items"] + second["items"]] == [7, 6, 5, 4, 3, 2]
    item = first["items"][0]
    assert item["examples"] == [{"file": "dns.log", "line": 12, "value": "a.evil.example"}]
    assert item["indicator"] == "evil.example"
    assert item["reporter"] == "off1"
    assert client.get(URL, params={"status": "nope"}, headers=h).status_code == 422


@pytest.mark.parametrize(
    "change",
    [
        {"schema": "quet.net.alert/2"},
        {"id": "not-a-sha256"},
        {"count": 0},
        {"client": ""},
        {"indicator": "evil\x00.example"},
        {"first_seen": "yesterday"},
        {"examples": [{"file": "x", "line": -1, "value": "v"}]},
    ],
)
def test_bad_payloads_are_refused_whole(
    client: TestClient, db_session: Session, tree: dict[str, str], change: dict[str, Any]
) -> None:
    good, bad = _alert("10.1.1.5").to_dict(), _alert("10.1.1.6").to_dict()
    body: dict[str, Any] = {"schema": "quet.net.alert/1", "alerts": [good, bad]}
    if "schema" in change:
        body.update(change)
    else:
        bad.update(change)
    response = client.post(URL, json=body, headers=bearer(tree["off1"]))
    assert response.status_code == 422, response.text
    assert db_session.scalar(sa.select(sa.func.count()).select_from(NetAlertRow)) == 0


def test_an_alert_without_times_is_kept() -> None:
    # The id of a log without times (canonified Zeek) is still stable: it leaves first_seen out.
    a, b = _alert("10.1.1.5", first_seen=None), _alert("10.1.1.5", first_seen=None, count=9)
    assert a.id == b.id
    assert a.to_dict()["first_seen"] is None


# -- end to end: a real server, alerts from a real Zeek log, posted by `quet net watch`'s Poster --
class LiveServer:
    """The app served by uvicorn on a free loopback port, in a thread."""

    def __init__(self, app: FastAPI) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@pytest.fixture
def live(server_app: FastAPI) -> Iterator[LiveServer]:
    with LiveServer(server_app) as server:
        yield server


def test_poster_alerts_from_a_zeek_log_land_mapped_on_a_real_server(
    live: LiveServer, db_session: Session
) -> None:
    # The WRCCDC 2018 ssh.log: our networks are 10.0/16, 10.128/16 and 10.164/16; 10.47.x is
    # "the Internet", where a feed lists one host and one /24.
    make_org(db_session, "P1", kind="province", ip_ranges=("10.128.0.0/16",))
    make_org(db_session, "P1-U1", "P1", ip_ranges=("10.128.0.0/24",))
    make_org(db_session, "P2", kind="province", ip_ranges=("10.164.0.0/16",))
    _device(db_session, "P1-U1", "ws-19", ["10.128.0.19"])
    make_user(db_session, "watcher", "officer", "P1")
    token = make_token(db_session, "watcher")

    issues = IssueLog()
    events = list(read_path(SSH_LOG, issues))
    assert (len(events), len(issues)) == (22, 0)
    iset = IndicatorSet.build(
        [
            make("ipv4", "10.47.26.55", family="Mirai", source="feed.csv"),
            make("cidr", "10.47.23.0/24", family="Emotet", source="feed.csv"),
        ]
    )
    internal = InternalNets(["10.0.0.0/16", "10.128.0.0/16", "10.164.0.0/16"])
    hits = list(match_events(events, iset, None, internal=internal))
    alerts = aggregate(hits)
    assert [(a.client, a.indicator, a.count) for a in alerts] == [
        ("10.128.0.19", "10.47.26.55", 9),
        ("10.128.0.207", "10.47.23.0/24", 5),
        ("10.128.0.233", "10.47.23.0/24", 1),
        ("10.164.94.120", "10.47.23.0/24", 1),
    ]

    # As `watch` does: the first half of the log is posted, then the grown alerts.
    poster = Poster(f"{live.url}{URL}", token=token)
    half = Aggregator()
    for hit in hits[:10]:
        half.add(hit)
    assert poster.post(half.sorted()), poster.last_error
    db_session.expire_all()
    assert {r.client: r.count for r in db_session.scalars(sa.select(NetAlertRow))} == {
        "10.128.0.233": 1,
        "10.164.94.120": 1,
        "10.128.0.207": 5,
        "10.128.0.19": 3,
    }
    assert poster.post(alerts), poster.last_error
    assert poster.post(alerts), poster.last_error  # a retry: idempotent

    db_session.expire_all()
    rows = {r.client: r for r in db_session.scalars(sa.select(NetAlertRow))}
    assert sorted(rows) == ["10.128.0.19", "10.128.0.207", "10.128.0.233", "10.164.94.120"]
    codes = {o.id: o.code for o in (orgs.by_code(db_session, c) for c in ("P1", "P1-U1")) if o}
    ws19 = rows["10.128.0.19"]
    assert (codes[ws19.org_id or 0], ws19.count, ws19.family) == ("P1-U1", 9, "Mirai")
    assert db_session.get(Device, ws19.device_id).hostname == "ws-19"  # type: ignore[union-attr]
    assert ws19.first_seen == alerts[0].first_seen and ws19.last_seen == alerts[0].last_seen
    mine = [h for h in hits if h.internal_host == "10.128.0.19"][:5]
    assert ws19.examples == [
        {"file": h.event.source, "line": h.event.line, "value": "10.47.26.55"} for h in mine
    ]
    assert ws19.examples[0]["file"].endswith("ssh.log")
    assert codes[rows["10.128.0.207"].org_id or 0] == "P1-U1"
    assert rows["10.128.0.207"].device_id is None
    outside = rows["10.164.94.120"]
    assert (codes[outside.org_id or 0], outside.note) == ("P1", "outside_scope")
    assert all(r.reporter == "watcher" for r in rows.values())

    # A wrong token is refused and the alerts are kept to retry.
    bad = Poster(f"{live.url}{URL}", token="qt_wrong")
    assert not bad.post(alerts[:1])
    assert bad.last_error == "HTTP 401" and len(bad.pending) == 1
