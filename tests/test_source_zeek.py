"""Zeek log sources on real logs (btest baselines, WRCCDC 2018), TSV and JSON, plus fuzzing."""

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
from quet.netwatch.sources import SOURCES, detect, read_path
from quet.netwatch.sources.zeek import log_type

DATA = Path(__file__).parent / "data" / "netwatch" / "zeek"
BT = DATA / "btest-baseline"
WR = DATA / "wrccdc-2018"


def read(path: Path, source: str | None = None) -> tuple[list[NetEvent], IssueLog]:
    issues = IssueLog()
    return list(read_path(path, issues, source)), issues


CASES = [
    ("core.tunnels.teredo/conn.log", "zeek-conn", "zeek:conn", 21),
    ("opt.basic/conn.log", "zeek-conn", "zeek:conn", 34),
    ("opt.basic/dns.log", "zeek-dns", "zeek:dns", 34),
    ("opt.basic/http.log", "zeek-http", "zeek:http", 14),
    ("javascript.http-uri-sha256/http.log", "zeek-http", "zeek:http", 1),
    ("scripts.base.protocols.http.http-methods/http.log", "zeek-http", "zeek:http", 49),
    ("scripts.base.protocols.imap.starttls/ssl.log", "zeek-ssl", "zeek:ssl", 1),
    ("scripts.policy.protocols.ssl.validate-certs-no-cache/ssl.log", "zeek-ssl", "zeek:ssl", 3),
    ("scripts.base.files.x509.files/files.log", "zeek-files", "zeek:files", 6),
    ("scripts.policy.frameworks.intel.seen.smtp/intel.log", "zeek-intel", "zeek:intel", 7),
    ("scripts.policy.frameworks.intel.whitelisting/intel.log", "zeek-intel", "zeek:intel", 20),
]


@pytest.mark.parametrize(("rel", "source", "kind", "count"), CASES)
def test_btest_logs_detected_and_counted(rel: str, source: str, kind: str, count: int) -> None:
    path = BT / rel
    found = detect(path)
    assert found is not None and found.name == source
    events, issues = read(path)
    assert issues.count == 0, issues.issues
    assert Counter(e.kind for e in events) == {kind: count}
    # btest canonifies every time: no crash, no time.
    assert all(e.ts is None for e in events)
    assert all(e.source == str(path) for e in events)


def test_conn_record() -> None:
    events, _ = read(BT / "core.tunnels.teredo/conn.log")
    assert events[5] == NetEvent(
        kind="zeek:conn",
        client="192.168.2.16",
        client_port=1920,
        server="192.168.2.1",
        server_port=53,
        proto="udp",
        source=str(BT / "core.tunnels.teredo/conn.log"),
        line=14,
    )


def test_conn_ipv6_compressed() -> None:
    events, _ = read(BT / "opt.basic/conn.log")
    assert (events[1].client, events[1].server) == ("fe80::217:f2ff:fed7:cf65", "ff02::fb")


def test_dns_record_with_vector_answers() -> None:
    path = BT / "opt.basic/dns.log"
    events, _ = read(path)
    assert events[5] == NetEvent(
        kind="zeek:dns",
        client="141.142.220.118",
        client_port=40526,
        server="141.142.2.2",
        server_port=53,
        proto="udp",
        query="upload.wikimedia.org",
        answers=["upload.pmtpa.wikimedia.org", "208.80.152.3"],
        action="NOERROR",
        source=str(path),
        line=14,
    )
    assert events[0].answers == [] and events[0].action == ""  # '-' is empty
    assert events[4].action == "NXDOMAIN"


def test_http_records() -> None:
    path = BT / "opt.basic/http.log"
    events, _ = read(path)
    assert events[0] == NetEvent(
        kind="zeek:http",
        client="141.142.220.118",
        client_port=48649,
        server="208.80.152.118",
        server_port=80,
        proto="tcp",
        host="bits.wikimedia.org",
        url="http://bits.wikimedia.org/skins-1.5/monobook/main.css",
        source=str(path),
        line=9,
    )
    methods, _ = read(BT / "scripts.base.protocols.http.http-methods/http.log")
    # OPTIONS * and an (empty) URI have no URL; unset host and URI stay empty.
    assert (methods[0].host, methods[0].url) == ("www.google.com", "")
    assert (methods[1].host, methods[1].url) == ("www.google.com", "")
    assert (methods[2].host, methods[2].url) == ("", "")
    assert methods[4].url == "http://www.google.com/"


def test_http_json_with_canonified_time() -> None:
    path = BT / "javascript.http-uri-sha256/http.log"
    (event,), _ = read(path)
    assert event == NetEvent(
        kind="zeek:http",
        client="141.142.228.5",
        client_port=59856,
        server="192.150.187.43",
        server_port=80,
        proto="tcp",
        host="bro.org",
        url="http://bro.org/download/CHANGES.bro-aux.txt",
        source=str(path),
        line=1,
    )


def test_ssl_record() -> None:
    path = BT / "scripts.base.protocols.imap.starttls/ssl.log"
    (event,), _ = read(path)
    assert event == NetEvent(
        kind="zeek:ssl",
        client="192.168.17.53",
        client_port=49640,
        server="212.227.17.186",
        server_port=143,
        source=str(path),
        line=9,
    )


def test_files_receiver_is_client() -> None:
    path = BT / "scripts.base.files.x509.files/files.log"
    events, _ = read(path)
    # is_orig F: the responder sent the certificate, the originator received it.
    assert events[0] == NetEvent(
        kind="zeek:files",
        client="192.168.4.149",
        client_port=60623,
        server="74.125.239.129",
        server_port=443,
        md5="7af07aca6d5c6e8e87fe4bb34786edc0",
        sha1="548b9e03bc183d1cd39f93a37985cb3950f8f06f",
        sha256="6bacfa4536150ed996f2b0c05ab6e345a257225f449aeb9d2018ccd88f4ede43",
        source=str(path),
        line=9,
    )


def test_intel_records() -> None:
    path = BT / "scripts.policy.frameworks.intel.whitelisting/intel.log"
    events, _ = read(path)
    assert events[0] == NetEvent(
        kind="zeek:intel",
        client="141.142.220.118",
        client_port=43927,
        server="141.142.2.2",
        server_port=53,
        query="upload.wikimedia.org",
        host="upload.wikimedia.org",
        action="Intel::DOMAIN upload.wikimedia.org",
        source=str(path),
        line=9,
    )
    http_hit = next(e for e in events if e.server_port == 80)
    assert http_hit.host == "upload.wikimedia.org" and http_hit.query == ""
    smtp, _ = read(BT / "scripts.policy.frameworks.intel.seen.smtp/intel.log")
    assert smtp[0].action == "Intel::EMAIL jan.grashofer@cern.ch"
    assert (smtp[0].client, smtp[0].server, smtp[0].server_port) == (
        "188.184.129.157",
        "188.184.36.24",
        25,
    )


NOTICE_0 = NetEvent(
    kind="zeek:notice",
    ts=datetime(2018, 3, 24, 17, 15, 20, 629574, tzinfo=UTC),
    client="10.164.94.120",
    client_port=39611,
    server="10.47.3.200",
    server_port=443,
    proto="tcp",
    action="SSL::Invalid_Server_Cert",
)


def test_notice_tsv_and_json_agree() -> None:
    tsv, tsv_issues = read(WR / "notice.log")
    js, js_issues = read(WR / "notice.json")
    assert tsv_issues.count == js_issues.count == 0
    assert len(tsv) == len(js) == 207
    assert detect(WR / "notice.log").name == detect(WR / "notice.json").name == "zeek-notice"  # type: ignore[union-attr]
    assert tsv[0] == replace(NOTICE_0, source=str(WR / "notice.log"), line=9)
    assert js[0] == replace(NOTICE_0, source=str(WR / "notice.json"), line=1)
    strip = [replace(e, source="", line=0) for e in tsv]
    assert strip == [replace(e, source="", line=0) for e in js]
    assert all(e.ts is not None and e.ts.tzinfo is UTC for e in tsv)


def test_other_log_with_connection_fields_is_read() -> None:
    path = WR / "ssh.log"
    assert detect(path).name == "zeek-other"  # type: ignore[union-attr]
    events, issues = read(path)
    assert issues.count == 0 and len(events) == 22
    assert events[0] == NetEvent(
        kind="zeek:ssh",
        ts=datetime(2018, 3, 24, 17, 16, 39, 739898, tzinfo=UTC),
        client="10.0.0.227",
        client_port=59849,
        server="10.47.8.50",
        server_port=22,
        source=str(path),
        line=9,
    )


@pytest.mark.parametrize("name", ["software.log", "known_services.log"])
def test_other_log_without_connection_fields_is_one_issue(name: str) -> None:
    path = WR / name
    assert detect(path).name == "zeek-other"  # type: ignore[union-attr]
    events, issues = read(path)
    assert events == []
    assert issues.count == 1
    assert issues.issues[0].line == 0 and "not a supported zeek log" in issues.issues[0].message


def test_test_harness_json_is_not_a_zeek_log() -> None:
    # ascii-json's ssh.log is a made-up stream with no Zeek fields: unknown, skipped at line 0.
    path = BT / "scripts.base.frameworks.logging.ascii-json/ssh.log"
    assert detect(path) is None
    events, issues = read(path)
    assert events == [] and issues.count == 1 and issues.issues[0].line == 0


def test_gzip_is_transparent(tmp_path: Path) -> None:
    plain, _ = read(BT / "opt.basic/dns.log")
    gz = tmp_path / "dns.2011-03-18.log.gz"
    gz.write_bytes(gzip.compress((BT / "opt.basic/dns.log").read_bytes()))
    assert detect(gz).name == "zeek-dns"  # type: ignore[union-attr]
    zipped, issues = read(gz)
    assert issues.count == 0
    assert [replace(e, source="") for e in zipped] == [replace(e, source="") for e in plain]


HEADER = (
    "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\t{path}\n"
    "#fields\t{fields}\n#types\t{types}\n"
)


def tsv(path: str, fields: str, types: str, *rows: str) -> str:
    return HEADER.format(path=path, fields=fields, types=types) + "".join(r + "\n" for r in rows)


def test_old_files_log_tx_rx_hosts(tmp_path: Path) -> None:
    log = tmp_path / "files.log"
    log.write_text(
        tsv(
            "files",
            "ts\tfuid\ttx_hosts\trx_hosts\tconn_uids\tsource\tmd5\tsha1",
            "time\tstring\tset[addr]\tset[addr]\tset[string]\tstring\tstring\tstring",
            "1300475168.916018\tFa\t93.184.216.34\t10.0.0.5\tC1\tHTTP\t"
            "44D88612FEA8A8F36DE82E1278ABB02F\t-",
        )
    )
    (event,), issues = read(log)
    assert issues.count == 0
    assert (event.client, event.server) == ("10.0.0.5", "93.184.216.34")
    assert event.md5 == "44d88612fea8a8f36de82e1278abb02f" and event.sha1 == ""
    assert event.ts == datetime(2011, 3, 18, 19, 6, 8, 916018, tzinfo=UTC)


def test_files_upload_turns_around(tmp_path: Path) -> None:
    log = tmp_path / "files.json"
    log.write_text(
        json.dumps(
            {
                "ts": 1.5e9,
                "fuid": "F1",
                "id.orig_h": "10.0.0.5",
                "id.orig_p": 50000,
                "id.resp_h": "198.51.100.1",
                "id.resp_p": 80,
                "is_orig": True,
                "sha256": "A" * 64,
            }
        )
        + "\n"
    )
    (event,), _ = read(log)
    assert (event.client, event.client_port, event.server) == ("198.51.100.1", 80, "10.0.0.5")
    assert event.sha256 == "a" * 64


def test_separators_escapes_and_two_header_blocks(tmp_path: Path) -> None:
    dns_fields = "ts\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tquery\tanswers"
    dns_types = "time\taddr\tport\taddr\tport\tenum\tstring\tvector[string]"
    first = tsv(
        "dns",
        dns_fields,
        dns_types,
        "1521911720.5\t10.0.0.1\t5000\t10.0.0.53\t53\tudp\tWWW.Example.COM.\t"
        "a.example.com,192.0.2.1,2001:0db8::0001,TXT 12 v=spf1",
        "1521911721.5\t10.0.0.1\t5001\t10.0.0.53\t53\tudp\tq\\x09x.example\t(empty)",
    )
    # A second block (as `cat` of rotated logs gives) with other separators and a conn log.
    second = (
        "#separator \\x7c\n#set_separator|;\n#empty_field|EMPTY\n#unset_field|NONE\n#path|conn\n"
        "#fields|ts|id.orig_h|id.orig_p|id.resp_h|id.resp_p|proto\n"
        "#types|time|addr|port|addr|port|enum\n"
        "1521911722.0|10.0.0.2|6000|203.0.113.5|443|tcp\n"
        "1521911723.0|10.0.0.2|6001|NONE|443|tcp\n"
    )
    log = tmp_path / "mixed.log"
    log.write_text(first + second)
    events, issues = read(log)
    assert issues.count == 0, issues.issues
    assert [e.kind for e in events] == ["zeek:dns", "zeek:dns", "zeek:conn", "zeek:conn"]
    assert events[0].query == "www.example.com"
    assert events[0].answers == ["a.example.com", "192.0.2.1", "2001:db8::1"]
    assert events[1].query == "q\tx.example" and events[1].answers == []
    assert events[2].server == "203.0.113.5" and events[3].server == ""


def test_bad_lines_are_counted_with_their_line(tmp_path: Path) -> None:
    fields = "ts\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto"
    types = "time\taddr\tport\taddr\tport\tenum"
    log = tmp_path / "conn.log"
    log.write_text(
        "1.0\t10.0.0.1\t1\t10.0.0.2\t2\ttcp\n"  # before any #fields
        + tsv(
            "conn",
            fields,
            types,
            "1.0\t10.0.0.1\t1\t10.0.0.2",  # too few fields
            "1.0\tnot-an-ip\t1\t10.0.0.2\t2\ttcp",
            "1.0\t10.0.0.1\t99999\t10.0.0.2\t2\ttcp",  # no such port
            "yesterday\t10.0.0.1\t1\t10.0.0.2\t2\ttcp",
            "{not json",
            "1.0\t10.0.0.1\t1\t10.0.0.2\t2\ttcp",
        )
    )
    events, issues = read(log)
    assert len(events) == 1 and events[0].line == 14
    assert [i.line for i in issues.issues] == [1, 9, 10, 11, 12, 13]
    assert "#fields" in issues.issues[0].message
    assert "4 fields" in issues.issues[1].message
    assert "not an IP address" in issues.issues[2].message
    assert "not valid JSON" in issues.issues[5].message


def test_json_variants(tmp_path: Path) -> None:
    log = tmp_path / "zeek.json"
    rows = [
        # json-streaming: _path in every row; ISO 8601 times.
        {
            "_path": "ssl",
            "ts": "2018-03-24T17:15:20.5Z",
            "id.orig_h": "10.0.0.9",
            "id.orig_p": 1,
            "id.resp_h": "192.0.2.9",
            "id.resp_p": 443,
            "server_name": "Evil.Example.",
        },
        # a shipper that nested the id record
        {
            "_path": "conn",
            "ts": 1521911720.25,
            "id": {"orig_h": "10.0.0.9", "resp_h": "192.0.2.10", "orig_p": 2, "resp_p": 80},
            "proto": "tcp",
        },
        {"_path": "software", "ts": 1.0, "host": "10.0.0.9"},
        {"_path": "software", "ts": 2.0, "host": "10.0.0.8"},
    ]
    log.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    assert detect(log).name == "zeek-ssl"  # type: ignore[union-attr]
    events, issues = read(log)
    assert [e.kind for e in events] == ["zeek:ssl", "zeek:conn"]
    assert events[0].host == "evil.example"
    assert events[0].ts == datetime(2018, 3, 24, 17, 15, 20, 500000, tzinfo=UTC)
    assert (events[1].client, events[1].server, events[1].server_port) == (
        "10.0.0.9",
        "192.0.2.10",
        80,
    )
    assert issues.count == 1 and issues.issues[0].line == 0  # software: once, not per row


def test_log_type_sniff() -> None:
    assert log_type(['{"_path":"dns","ts":1}'], "x.json") == "dns"
    assert log_type(['{"uid":"C1","query":"a.b","rcode_name":"NOERROR"}'], "x.json") == "dns"
    assert log_type(['{"uid":"C1","id.orig_h":"1.2.3.4"}'], "conn.2020-01-01.log") == "conn"
    assert log_type(['{"event_type":"dns","src_ip":"1.2.3.4"}'], "dns.json") is None
    assert log_type(["hello"], "conn.log") is None
    assert log_type(["#separator \\x09", "#path\tweird"], "x.log") == "weird"


# --- fuzzing ------------------------------------------------------------------------------------

LINE = st.text(
    st.characters(blacklist_characters="\n\r", blacklist_categories=("Cs",)), max_size=80
)
CONN_HEAD = (BT / "opt.basic/conn.log").read_text().split("\n")[:8]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=st.lists(LINE, max_size=12))
def test_fuzz_any_lines_never_raise(tmp_path: Path, lines: list[str]) -> None:
    log = tmp_path / "conn.log"
    log.write_text("\n".join([*CONN_HEAD, *lines]) + "\n", encoding="utf-8")
    events, issues = read(log, "zeek-conn")
    data = [i for i, s in enumerate(lines, 9) if s.strip() and not s.startswith("#")]
    assert len(events) + issues.count <= len(data) + 1
    assert all(e.line in data for e in events)


FIELD = st.text(
    st.characters(blacklist_characters="\t\n\r", blacklist_categories=("Cs",)), max_size=20
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(st.lists(FIELD, min_size=20, max_size=24), min_size=1, max_size=8))
def test_fuzz_tsv_rows_one_event_or_one_issue_each(tmp_path: Path, rows: list[list[str]]) -> None:
    lines = ["x" + "\t".join(r) for r in rows]  # "x": never a # header or a JSON line
    log = tmp_path / "conn.log"
    log.write_text("\n".join([*CONN_HEAD, *lines]) + "\n", encoding="utf-8")
    events, issues = read(log)
    assert len(events) + issues.count == len(lines)


JSON_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.sampled_from(["10.0.0.1", "::1", "-", "(empty)", "XXXXXXXXXX.XXXXXX"]),
    st.lists(st.text(max_size=10), max_size=3),
)
ZEEK_KEYS = st.sampled_from(
    [
        "ts",
        "id.orig_h",
        "id.orig_p",
        "id.resp_h",
        "id.resp_p",
        "proto",
        "query",
        "answers",
        "host",
        "uri",
        "server_name",
        "md5",
        "sha1",
        "is_orig",
        "tx_hosts",
        "rx_hosts",
        "src",
        "dst",
        "p",
        "note",
        "seen.indicator",
        "seen.indicator_type",
        "seen.where",
    ]
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    log=st.sampled_from(["conn", "dns", "http", "ssl", "files", "notice", "intel"]),
    rows=st.lists(st.dictionaries(ZEEK_KEYS, JSON_VALUE, max_size=10), min_size=1, max_size=6),
)
def test_fuzz_json_rows_one_event_or_one_issue_each(
    tmp_path: Path, log: str, rows: list[dict[str, object]]
) -> None:
    path = tmp_path / f"{log}.json"
    path.write_text("\n".join(json.dumps({"uid": "C", **r}) for r in rows) + "\n")
    events, issues = read(path, f"zeek-{log}")
    assert len(events) + issues.count == len(rows)
    for e in events:
        assert e.ts is None or e.ts.tzinfo is UTC


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(blob=st.binary(max_size=400), gz=st.booleans())
def test_fuzz_bytes_never_raise(tmp_path: Path, blob: bytes, gz: bool) -> None:
    path = tmp_path / "dns.log"
    path.write_bytes(gzip.compress(blob)[: len(blob) // 2 + 10] if gz else blob)
    for name in [n for n in SOURCES if n.startswith("zeek-")]:
        read(path, name)
    detect(path)
