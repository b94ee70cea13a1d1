"""Alerts: hits rolled up per internal host and indicator, stable ids, JSONL, posting."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from quet.errors import InputError
from quet.indicators.model import make
from quet.indicators.sets import IndicatorSet
from quet.netwatch.alerts import (
    EXAMPLES,
    Aggregator,
    Alert,
    Poster,
    aggregate,
    read_jsonl,
    write_jsonl,
)
from quet.netwatch.matcher import match_events
from quet.netwatch.records import NetEvent

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ISET = IndicatorSet.build(
    [
        make("domain", "evil.com", family="Emotet", name="Emotet C2", source="feed-a"),
        make("ipv4", "198.51.100.7", family="Mirai", source="feed-b"),
    ]
)


def _dns(client: str, query: str, minutes: int, line: int) -> NetEvent:
    ts = T0 + timedelta(minutes=minutes)
    return NetEvent(
        "zeek:dns",
        ts=ts,
        client=client,
        server="10.0.0.53",
        query=query,
        source="dns.log",
        line=line,
    )


def _alerts() -> list[Alert]:
    events = [
        _dns("10.0.0.5", "a.evil.com", 5, 1),
        _dns("10.0.0.5", "b.evil.com", 1, 2),  # earlier than the line before it
        _dns("10.0.0.6", "evil.com", 3, 3),
        NetEvent(
            "zeek:conn",
            ts=None,
            client="10.0.0.5",
            server="198.51.100.7",
            source="conn.log",
            line=9,
        ),
        *[_dns("10.0.0.5", "x.evil.com", 10 + i, 10 + i) for i in range(8)],
    ]
    return aggregate(match_events(events, ISET))


def test_aggregate_per_host_and_indicator() -> None:
    alerts = _alerts()
    assert [(a.client, a.indicator, a.count) for a in alerts] == [
        ("10.0.0.5", "evil.com", 10),
        ("10.0.0.5", "198.51.100.7", 1),
        ("10.0.0.6", "evil.com", 1),
    ]
    top = alerts[0]
    assert (top.indicator_type, top.name, top.family, top.source_feed) == (
        "domain",
        "Emotet C2",
        "Emotet",
        "feed-a",
    )
    assert top.first_seen == T0 + timedelta(minutes=1)
    assert top.last_seen == T0 + timedelta(minutes=17)
    assert top.fields == ["query"]
    assert len(top.examples) == EXAMPLES
    assert top.examples[0] == ("dns.log", 1, "a.evil.com")
    conn = alerts[1]
    assert conn.first_seen is None and conn.last_seen is None
    assert conn.examples == [("conn.log", 9, "198.51.100.7")]


def test_inbound_alert_is_for_the_internal_server() -> None:
    ev = NetEvent("zeek:conn", client="198.51.100.7", server="10.0.0.80", source="c", line=1)
    [alert] = aggregate(match_events([ev], ISET))
    assert (alert.client, alert.fields) == ("10.0.0.80", ["client"])


def test_ids_are_stable_and_distinct() -> None:
    a, b, c = _alerts()
    again = _alerts()
    assert [x.id for x in again] == [a.id, b.id, c.id]
    assert len({a.id, b.id, c.id}) == 3
    assert len(a.id) == 64 and int(a.id, 16) >= 0
    bumped = Alert(**{**a.__dict__, "count": 99, "last_seen": T0 + timedelta(days=1)})
    assert bumped.id == a.id  # a grown count is the same alert


def test_aggregator_reports_new_alerts_once() -> None:
    agg = Aggregator()
    hits = list(match_events([_dns("10.0.0.5", "evil.com", i, i) for i in range(3)], ISET))
    assert [agg.add(h)[1] for h in hits] == [True, False, False]
    assert agg.sorted()[0].count == 3


def test_jsonl_round_trip(tmp_path: Path) -> None:
    alerts = _alerts()
    buf = io.StringIO()
    assert write_jsonl(alerts, buf) == 3
    lines = buf.getvalue().splitlines()
    first = json.loads(lines[0])
    assert first["schema"] == "quet.net.alert/1" and first["id"] == alerts[0].id
    assert first["first_seen"] == "2024-05-01T12:01:00+00:00"
    assert first["examples"][0] == {"file": "dns.log", "line": 1, "value": "a.evil.com"}
    path = tmp_path / "alerts.jsonl"
    # A later line with the same id (an update) replaces the earlier one.
    updated = Alert(**{**alerts[0].__dict__, "count": 50})
    path.write_text(buf.getvalue() + json.dumps(updated.to_dict()) + "\n\n", encoding="utf-8")
    back = read_jsonl(path)
    assert len(back) == 3
    assert {a.id: a.count for a in back}[alerts[0].id] == 50
    assert back[1] == alerts[1]


def test_read_jsonl_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"client": "1.2.3.4"}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"a\.jsonl: line 1: .*not a Quét network alert"):
        read_jsonl(path)
    with pytest.raises(InputError, match="cannot read"):
        read_jsonl(tmp_path / "missing.jsonl")


class _Store(BaseHTTPRequestHandler):
    """A stand-in receiver that upserts by id, as the server endpoint is meant to."""

    received: dict[str, dict[str, Any]]
    auth: list[str]
    status = 200

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).auth.append(self.headers.get("Authorization", ""))
        if type(self).status == 200:
            for a in body["alerts"]:
                type(self).received[a["id"]] = a
        self.send_response(type(self).status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[_Store]]]:
    handler = type("Store", (_Store,), {"received": {}, "auth": [], "status": 200})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/api/v1/net/alerts", handler
    srv.shutdown()
    srv.server_close()


def test_post_is_idempotent(receiver: tuple[str, type[_Store]]) -> None:
    url, store = receiver
    alerts = _alerts()
    poster = Poster(url, token="tok")
    assert poster.post(alerts)
    assert poster.post([Alert(**{**alerts[0].__dict__, "count": 11})])
    assert set(store.received) == {a.id for a in alerts}
    assert store.received[alerts[0].id]["count"] == 11
    assert store.auth == ["Bearer tok", "Bearer tok"]


def test_post_failures_are_kept_for_the_next_try(receiver: tuple[str, type[_Store]]) -> None:
    url, store = receiver
    alerts = _alerts()
    store.status = 404  # no endpoint yet
    poster = Poster(url)
    assert not poster.post(alerts[:1])
    assert poster.last_error == "HTTP 404" and len(poster.pending) == 1
    store.status = 200
    assert poster.post(alerts[1:])
    assert set(store.received) == {a.id for a in alerts} and not poster.pending
    dead = Poster("http://127.0.0.1:9/none", timeout=2)
    assert not dead.post(alerts) and dead.last_error
