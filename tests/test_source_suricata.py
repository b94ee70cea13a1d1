"""The Suricata EVE source on real EVE lines and on a schema-shaped file of the other types."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quet.indicators.model import IssueLog
from quet.netwatch.records import NetEvent
from quet.netwatch.sources import detect, read_path
from quet.netwatch.sources.suricata import HANDLERS

DATA = Path(__file__).parent / "data" / "netwatch" / "suricata"
TYPES = DATA / "eve-types.json"


def read(path: Path) -> tuple[list[NetEvent], IssueLog]:
    issues = IssueLog()
    return list(read_path(path, issues, "suricata-eve")), issues


@pytest.mark.parametrize(
    ("name", "counts"),
    [
        ("fever_alertify_input.json", {"suricata:http": 1, "suricata:dns": 1, "suricata:tls": 1}),
        (
            "fever_jsonparse_eve.json",
            {"suricata:dns": 1, "suricata:fileinfo": 1, "suricata:http": 1},
        ),
        ("suricata-verify_output-eve-fileinfo_expected_eve.json", {"suricata:fileinfo": 1}),
        ("tenzir_rrdata-eve.json", {"suricata:dns": 2}),
        (
            "eve-types.json",
            {
                "suricata:flow": 3,
                "suricata:netflow": 2,
                "suricata:http": 1,
                "suricata:alert": 2,
                "suricata:dns": 3,
            },
        ),
    ],
)
def test_counts_per_event_type(name: str, counts: dict[str, int]) -> None:
    path = DATA / name
    assert detect(path).name == "suricata-eve"  # type: ignore[union-attr]
    events, issues = read(path)
    assert issues.count == 0, issues.issues
    assert Counter(e.kind for e in events) == counts


def event(path: Path, index: int) -> NetEvent:
    events, _ = read(path)
    return replace(events[index], source="")


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_http_record() -> None:
    assert event(DATA / "fever_alertify_input.json", 0) == NetEvent(
        kind="suricata:http",
        ts=ts("2016-01-02T19:08:01.310448+00:00"),
        client="1.1.1.1",
        client_port=10305,
        server="8.8.8.8",
        server_port=80,
        proto="tcp",
        host="evader.example.com",
        url="http://evader.example.com/compressed/eicar.txt/ce%3Agzip,gzip;gzip;gzip",
        line=1,
    )
    options = event(TYPES, 5)
    assert (options.host, options.url) == ("example.com", "")  # OPTIONS *


def test_dns_v2_answer_record() -> None:
    assert event(DATA / "fever_alertify_input.json", 1) == NetEvent(
        kind="suricata:dns",
        ts=ts("2013-07-04T19:47:51.592983+00:00"),
        client="192.168.42.150",
        client_port=55597,
        server="192.168.42.129",
        server_port=53,
        proto="udp",
        query="static.programme-tv.net",
        answers=["programme-tv.net.edgesuite.net", "a1859.g.akamai.net"],
        action="NOERROR",
        line=2,
    )
    mx = event(DATA / "tenzir_rrdata-eve.json", 1)
    assert mx.answers == [
        f"{p}aspmx.l.google.com" for p in ("", "alt1.", "alt2.", "alt3.", "alt4.")
    ]
    query = event(DATA / "tenzir_rrdata-eve.json", 0)
    assert (query.query, query.answers, query.action) == ("google.com", [], "")


def test_dns_v1_answer_from_the_resolver_is_turned_around() -> None:
    assert event(DATA / "fever_jsonparse_eve.json", 0) == NetEvent(
        kind="suricata:dns",
        ts=ts("2017-03-06T06:54:06.047429+00:00"),
        client="10.0.0.11",
        client_port=51323,
        server="10.0.0.10",
        server_port=53,
        proto="udp",
        query="test.test.local",
        answers=["10.0.0.12"],
        action="NOERROR",
        line=1,
    )


def test_dns_v3_request_and_response() -> None:
    request, response, nxdomain = event(TYPES, 8), event(TYPES, 9), event(TYPES, 10)
    assert (request.client, request.server, request.query) == (
        "10.1.2.3",
        "192.0.2.53",
        "catenacyber.fr",
    )
    assert request.action == ""  # a request claims no response code
    assert response == NetEvent(
        kind="suricata:dns",
        ts=ts("2024-03-01T10:05:00.020000+00:00"),
        client="10.1.2.3",
        client_port=40001,
        server="192.0.2.53",
        server_port=53,
        proto="udp",
        query="catenacyber.fr",
        answers=["web.catenacyber.fr", "198.51.100.80", "2001:db8::80"],
        action="NOERROR",
        line=10,
    )
    assert (nxdomain.query, nxdomain.answers, nxdomain.action) == (
        "nothere.oisf.net",
        [],
        "NXDOMAIN",
    )


def test_v3_response_on_odd_ports_uses_the_format(tmp_path: Path) -> None:
    line = {
        "timestamp": "2024-03-01T10:00:00Z",
        "event_type": "dns",
        "src_ip": "192.0.2.1",
        "src_port": 5300,
        "dest_ip": "10.0.0.7",
        "dest_port": 41000,
        "proto": "UDP",
        "dns": {"version": 3, "type": "response", "queries": [{"rrname": "a.example"}]},
    }
    (e,) = events_of(tmp_path, line)
    assert (e.client, e.server, e.server_port) == ("10.0.0.7", "192.0.2.1", 5300)


def test_tls_record() -> None:
    assert event(DATA / "fever_alertify_input.json", 2) == NetEvent(
        kind="suricata:tls",
        ts=ts("2019-05-15T08:11:18.955582+00:00"),
        client="2a03:b0c0:2:d0::bd3:4001",
        client_port=48106,
        server="2606:2800:220:1:248:1893:25c8:1946",
        server_port=443,
        proto="tcp",
        host="example.com",
        line=3,
    )


def test_fileinfo_downloader_is_client() -> None:
    assert event(DATA / "fever_jsonparse_eve.json", 1) == NetEvent(
        kind="suricata:fileinfo",
        ts=ts("2017-03-06T06:54:10.839668+00:00"),
        client="10.0.0.11",
        client_port=52914,
        server="10.0.0.10",
        server_port=80,
        proto="tcp",
        host="api.icndb.com",
        url="http://api.icndb.com/jokes/random?firstName=Chuck&lastName=Norris&limitTo=[nerdy]",
        md5="8d81d793b28b098e8623d47bae23cf44",
        line=2,
    )
    eicar = event(DATA / "suricata-verify_output-eve-fileinfo_expected_eve.json", 0)
    assert (eicar.client, eicar.server) == ("10.16.1.11", "188.40.238.250")
    assert eicar.url == "http://www.eicar.org/download/eicar.com"


def test_flow_records_and_one_sided_flows() -> None:
    assert event(TYPES, 0) == NetEvent(
        kind="suricata:flow",
        ts=ts("2024-03-01T10:00:05.250000+00:00"),
        client="10.1.2.3",
        client_port=54321,
        server="93.184.216.34",
        server_port=80,
        proto="tcp",
        line=1,
    )
    unanswered = event(TYPES, 1)  # pkts_toclient 0: still a contact
    assert (unanswered.client, unanswered.server, unanswered.proto) == (
        "10.1.2.3",
        "192.0.2.53",
        "udp",
    )
    icmp = event(TYPES, 2)
    assert (icmp.proto, icmp.client_port, icmp.server_port) == ("icmp", 0, 0)


def test_netflow_reply_is_turned_around() -> None:
    there, back = event(TYPES, 3), event(TYPES, 4)
    assert (there.client, there.server, there.server_port) == ("10.1.2.4", "203.0.113.9", 443)
    assert (back.client, back.server, back.server_port) == ("10.1.2.4", "203.0.113.9", 443)


def test_alert_records() -> None:
    by_direction, by_flow = event(TYPES, 6), event(TYPES, 7)
    assert by_direction == NetEvent(
        kind="suricata:alert",
        ts=ts("2024-03-01T10:04:00+00:00"),
        client="10.1.2.5",
        client_port=50512,
        server="203.0.113.20",
        server_port=443,
        proto="tcp",
        host="www.example.net",
        action="TLS ALPN h2 seen",
        line=7,
    )
    assert (by_flow.client, by_flow.server, by_flow.action) == (
        "10.1.2.5",
        "203.0.113.20",
        "TLS ALPN http/1.1 accepted",
    )


def test_gzip_and_folder(tmp_path: Path) -> None:
    (tmp_path / "eve.json.1.gz").write_bytes(gzip.compress(TYPES.read_bytes()))
    (tmp_path / "notes.txt").write_text("not a log\n")
    issues = IssueLog()
    events = list(read_path(tmp_path, issues))
    assert len(events) == 11
    assert issues.count == 1 and issues.issues[0].line == 0  # notes.txt


def events_of(tmp_path: Path, *records: object) -> list[NetEvent]:
    path = tmp_path / "eve.json"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    events, issues = read(path)
    assert issues.count == 0, issues.issues
    return events


def test_bad_lines_counted(tmp_path: Path) -> None:
    path = tmp_path / "eve.json"
    good = TYPES.read_text().splitlines()[0]
    path.write_text(
        "\n".join(
            [
                good,
                "{broken",
                "[1, 2]",
                '{"event_type": 5}',
                '{"event_type":"flow","src_ip":"999.1.1.1"}',
                '{"event_type":"flow","src_ip":"10.0.0.1","src_port":"http"}',
                '{"event_type":"flow","timestamp":"soon"}',
                good,
            ]
        )
        + "\n"
    )
    events, issues = read(path)
    assert [e.line for e in events] == [1, 8]
    assert [i.line for i in issues.issues] == [2, 3, 4, 5, 6, 7]


# --- fuzzing ------------------------------------------------------------------------------------

LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.text(max_size=16),
    st.sampled_from(["10.0.0.1", "2001:db8::1", "53", "to_client", "response", "answer"]),
)
JSON = st.recursive(
    LEAF,
    lambda kids: (
        st.lists(kids, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "rrname",
                    "rdata",
                    "queries",
                    "answers",
                    "grouped",
                    "type",
                    "version",
                    "src_ip",
                    "dest_ip",
                    "src_port",
                    "dest_port",
                    "hostname",
                    "url",
                    "sni",
                    "md5",
                    "signature",
                    "http_port",
                    "A",
                    "query",
                ]
            ),
            kids,
            max_size=4,
        )
    ),
    max_leaves=12,
)
RECORD = st.fixed_dictionaries(
    {"event_type": st.sampled_from(sorted(HANDLERS))},
    optional={
        "timestamp": st.one_of(st.text(max_size=30), st.just("2024-01-01T00:00:00+0000"), LEAF),
        "src_ip": LEAF,
        "dest_ip": LEAF,
        "src_port": LEAF,
        "dest_port": LEAF,
        "proto": LEAF,
        "direction": LEAF,
        "dns": JSON,
        "flow": JSON,
        "http": JSON,
        "tls": JSON,
        "alert": JSON,
        "fileinfo": JSON,
    },
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(records=st.lists(RECORD, min_size=1, max_size=6))
def test_fuzz_records_each_yield_events_or_one_issue(
    tmp_path: Path, records: list[dict[str, object]]
) -> None:
    path = tmp_path / "eve.json"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    events, issues = read(path)
    lines_with_events = {e.line for e in events}
    assert len(lines_with_events) + issues.count == len(records)
    assert not lines_with_events & {i.line for i in issues.issues}
    for e in events:
        assert e.ts is None or e.ts.tzinfo is UTC
        assert 0 <= e.client_port <= 65535 and 0 <= e.server_port <= 65535


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=st.lists(st.text(max_size=60), max_size=10), gz=st.booleans())
def test_fuzz_text_never_raises(tmp_path: Path, lines: list[str], gz: bool) -> None:
    data = "\n".join(lines).encode("utf-8", "surrogatepass")
    path = tmp_path / "eve.json"
    path.write_bytes(gzip.compress(data)[:-3] if gz else data)
    read(path)
    detect(path)
