"""DNS-server logs: BIND query log, dnsmasq log-queries, Unbound log-queries/log-replies and the
Windows DNS debug log, on samples written to each product's documented format; bad lines fuzzed."""

from __future__ import annotations

import gzip
import os
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quet.errors import InputError
from quet.indicators.model import IssueLog
from quet.netwatch.records import NetEvent
from quet.netwatch.sources import detect, read_path
from quet.netwatch.sources.bind import read_bind, split_syslog, syslog_time
from quet.netwatch.sources.dnsmasq import read_dnsmasq
from quet.netwatch.sources.unbound import read_unbound
from quet.netwatch.sources.windns import decode_name, read_windns

DATA = Path(__file__).parent / "data" / "netwatch"
Reader = Callable[[Path, IssueLog], Iterator[NetEvent]]
# a day after the samples' "Nov 25": year-less syslog stamps resolve to 2026
WRITTEN = datetime(2026, 11, 26, 12, 0, tzinfo=UTC).timestamp()


def copy(tmp_path: Path, rel: str) -> Path:
    """A copy of a sample with a known last-write time (syslog stamps carry no year)."""
    dst = tmp_path / Path(rel).name
    shutil.copyfile(DATA / rel, dst)
    os.utime(dst, (WRITTEN, WRITTEN))
    return dst


def read(reader: Reader, path: Path) -> tuple[list[NetEvent], IssueLog]:
    issues = IssueLog()
    return list(reader(path, issues)), issues


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


SAMPLES = [
    ("bind/query.log", "bind", 6),
    ("bind/syslog.log", "bind", 3),
    ("dnsmasq/dnsmasq.log", "dnsmasq", 7),
    ("dnsmasq/extra.log", "dnsmasq", 2),
    ("unbound/unbound.log", "unbound", 6),
    ("unbound/syslog.log", "unbound", 1),
    ("windns/dns.log", "windns", 3),
]


@pytest.mark.parametrize(("rel", "name", "count"), SAMPLES)
def test_samples_detected_counted_clean(tmp_path: Path, rel: str, name: str, count: int) -> None:
    path = copy(tmp_path, rel)
    src = detect(path)
    assert src is not None and src.name == name
    issues = IssueLog()
    events = list(read_path(path, issues))
    assert len(issues) == 0, [str(i) for i in issues.issues]
    assert len(events) == count
    assert all(e.kind == f"{name}:query" and e.source == str(path) and e.line > 0 for e in events)
    assert all(e.ts is None or e.ts.tzinfo is UTC for e in events)


def test_bind_file_channel(tmp_path: Path) -> None:
    events, _ = read(read_bind, copy(tmp_path, "bind/query.log"))
    assert events[2] == NetEvent(
        kind="bind:query",
        ts=at(2026, 11, 25, 8, 1, 5, 10000),
        client="2001:db8::25",
        client_port=40123,
        server="2001:db8::53",
        server_port=53,
        proto="tcp",  # the T flag
        query="mail.example.net",
        source=str(tmp_path / "query.log"),
        line=3,
    )
    assert [e.query for e in events] == [
        "www.example.com",
        "www.example.com",
        "mail.example.net",
        "10.2.0.192.in-addr.arpa",
        "bad.example.org",
        "example.com",  # in a view
    ]
    denied = events[4]
    assert (denied.client, denied.action, denied.server) == ("203.0.113.9", "denied", "")


def test_bind_syslog_year_from_file_time(tmp_path: Path) -> None:
    events, _ = read(read_bind, copy(tmp_path, "bind/syslog.log"))
    assert [(e.client, e.query, e.line) for e in events] == [
        ("192.0.2.10", "www.example.com", 1),
        ("192.0.2.11", "cdn.example.com", 2),
        ("192.0.2.12", "old.example.com", 4),  # BIND 9.9 style, no @0x… and with a category
    ]
    assert events[0].ts == at(2026, 11, 25, 8, 1, 2)


def test_syslog_year_rolls_back_over_new_year() -> None:
    assert syslog_time("Dec", "31", "23:59:59", at(2027, 1, 1).date()) == at(
        2026, 12, 31, 23, 59, 59
    )
    assert syslog_time("Jan", "1", "00:00:01", at(2027, 1, 1).date()) == at(2027, 1, 1, 0, 0, 1)
    assert syslog_time("Foo", "1", "00:00:01", at(2027, 1, 1).date()) is None
    parts = split_syslog("2026-11-25T09:01:02.5+01:00 host named[1]: hello", at(2000, 1, 1).date())
    assert parts == (datetime(2026, 11, 25, 8, 1, 2, 500000, tzinfo=UTC), "named", "hello")


def test_dnsmasq_pairs_replies_and_follows_cname_chains(tmp_path: Path) -> None:
    events, _ = read(read_dnsmasq, copy(tmp_path, "dnsmasq/dnsmasq.log"))
    assert events[0] == NetEvent(
        kind="dnsmasq:query",
        ts=at(2026, 11, 25, 8, 1, 2),
        client="192.168.1.20",
        query="www.example.com",
        answers=["www.example.com.edgekey.net", "e1234.a.akamaiedge.net", "23.45.67.89", "23.45.67.90"],
        action="NOERROR",
        source=str(tmp_path / "dnsmasq.log"),
        line=1,
    )  # fmt: skip
    got = {(e.query, e.client): (e.answers, e.action) for e in events[1:]}
    assert got == {
        ("ipv6.example.org", "192.168.1.21"): (["2001:db8::1"], "NOERROR"),
        ("router.lan", "192.168.1.22"): (["192.168.1.1"], "NOERROR"),
        ("nothere.example.net", "192.168.1.20"): ([], "NXDOMAIN"),
        ("www.example.com", "192.168.1.23"): (
            ["www.example.com.edgekey.net", "e1234.a.akamaiedge.net", "23.45.67.89"],
            "NOERROR",
        ),
        ("ads.example.com", "192.168.1.24"): (["0.0.0.0"], "NOERROR"),
        ("ipv4only.example.org", "192.168.1.21"): ([], "NODATA"),
    }


def test_dnsmasq_extra_pairs_by_serial(tmp_path: Path) -> None:
    events, _ = read(read_dnsmasq, copy(tmp_path, "dnsmasq/extra.log"))
    assert [(e.client, e.client_port, e.answers, e.line) for e in events] == [
        ("192.168.1.30", 41234, ["93.184.215.14"], 1),
        ("192.168.1.31", 52000, ["93.184.215.14"], 3),
    ]


def test_dnsmasq_blocked_and_types(tmp_path: Path) -> None:
    path = tmp_path / "pihole.log"
    path.write_text(
        "Nov 25 10:00:00 dnsmasq[7]: query[AAAA] t.example.com from 10.0.0.5\n"
        "Nov 25 10:00:00 dnsmasq[7]: query[A] t.example.com from 10.0.0.5\n"
        "Nov 25 10:00:00 dnsmasq[7]: reply t.example.com is 192.0.2.80\n"
        "Nov 25 10:00:00 dnsmasq[7]: reply t.example.com is 2001:db8::80\n"
        "Nov 25 10:00:01 dnsmasq[7]: query[A] ads.example.net from 10.0.0.6\n"
        "Nov 25 10:00:01 dnsmasq[7]: gravity blocked ads.example.net is 0.0.0.0\n"
    )
    events, issues = read(read_dnsmasq, path)
    assert len(issues) == 0
    assert [(e.query, e.answers, e.action) for e in events] == [
        ("t.example.com", ["2001:db8::80"], "NOERROR"),  # the AAAA query gets the IPv6 answer
        ("t.example.com", ["192.0.2.80"], "NOERROR"),
        ("ads.example.net", ["0.0.0.0"], "blocked"),
    ]


def test_unbound_queries_take_reply_rcodes(tmp_path: Path) -> None:
    events, _ = read(read_unbound, copy(tmp_path, "unbound/unbound.log"))
    assert events[0] == NetEvent(
        kind="unbound:query",
        ts=at(2025, 11, 25, 8, 1, 3),
        client="192.0.2.10",
        query="www.example.com",
        action="NOERROR",
        source=str(tmp_path / "unbound.log"),
        line=2,
    )
    assert [(e.client, e.client_port, e.query, e.action) for e in events[1:]] == [
        ("2001:db8::10", 0, "example.org", "NOERROR"),
        ("192.0.2.11", 0, "nope.example.net", "NXDOMAIN"),
        ("192.0.2.12", 50123, "ads.example.com", "always_nxdomain"),  # log-local-actions
        ("192.0.2.10", 0, "", "NOERROR"),  # the root
        ("192.0.2.13", 0, "slow.example.com", ""),  # no reply logged: written at the end
    ]


def test_unbound_reply_only_lines_are_events(tmp_path: Path) -> None:
    path = tmp_path / "u.log"
    path.write_text(
        "[1764057663] unbound[1:0] reply: 192.0.2.10 a.example. A IN SERVFAIL 1.2 0 30\n"
    )
    events, issues = read(read_unbound, path)
    assert [(e.query, e.action) for e in events] == [("a.example", "SERVFAIL")] and not issues


def test_windns_debug_log(tmp_path: Path) -> None:
    events, _ = read(read_windns, copy(tmp_path, "windns/dns.log"))
    assert events[1] == NetEvent(
        kind="windns:query",
        ts=at(2026, 11, 25, 13, 15, 30),
        client="2001:db8::20",
        proto="udp",
        query="www.contoso2.com",
        action="NXDOMAIN",
        source=str(tmp_path / "dns.log"),
        line=35,
    )
    # the server's own forwarding (Snd Q / Rcv R to 198.51.100.53) is not a client query
    assert [(e.client, e.query, e.action, e.proto) for e in events] == [
        ("192.0.2.10", "example.com", "NOERROR", "udp"),
        ("2001:db8::20", "www.contoso2.com", "NXDOMAIN", "udp"),
        ("192.0.2.11", "_ldap._tcp.dc._msdcs.corp.local", "", "tcp"),
    ]
    assert events[0].ts == at(2026, 11, 25, 8, 1, 2)


def test_windns_names_and_locale_dates(tmp_path: Path) -> None:
    assert decode_name("(7)example(3)com(0)") == "example.com"
    assert decode_name("(0)") == ""
    path = tmp_path / "dns.log"
    path.write_text(
        "25/11/2026 14:01:02 0E40 PACKET  000000D1D6E5A1E0 UDP Rcv 192.0.2.10      "
        "4a3c   Q [0001   D   NOERROR] A      (3)WWW(7)example(3)com(0)\n"
    )
    events, issues = read(read_windns, path)
    assert [(e.ts, e.query) for e in events] == [(at(2026, 11, 25, 14, 1, 2), "www.example.com")]
    assert not issues


def test_gzip_and_missing_file(tmp_path: Path) -> None:
    gz = tmp_path / "query.log.gz"
    gz.write_bytes(gzip.compress((DATA / "bind" / "query.log").read_bytes()))
    assert len(list(read_path(gz, IssueLog()))) == 6
    for reader in (read_bind, read_dnsmasq, read_unbound, read_windns):
        with pytest.raises(InputError):
            list(reader(tmp_path / "absent.log", IssueLog()))


BAD = [
    (read_bind, "25-Nov-2026 08:01:02.123 queries: info: client @0x1 999.1.1.1#5 (x): query: x IN A + (1.2.3.4)"),
    (read_bind, "garbage that is no log line"),
    (read_dnsmasq, "Nov 25 08:01:02 dnsmasq[1]: query[A] x.example from not-an-ip"),
    (read_unbound, "[1764057663] unbound[1:0] info: 1.2.3.400 x.example. A IN"),
    (read_windns, "11/25/2026 8:01:02 AM 0E40 PACKET  00 UDP Rcv ??? broken"),
]  # fmt: skip


@pytest.mark.parametrize(("reader", "line"), BAD)
def test_bad_lines_are_counted(tmp_path: Path, reader: Reader, line: str) -> None:
    path = tmp_path / "bad.log"
    path.write_text(line + "\n")
    events, issues = read(reader, path)
    assert events == [] and len(issues) == 1
    assert issues.issues[0].line == 1 and issues.issues[0].path == str(path)


FUZZ = [
    (read_bind, "bind/query.log"),
    (read_dnsmasq, "dnsmasq/dnsmasq.log"),
    (read_unbound, "unbound/unbound.log"),
    (read_windns, "windns/dns.log"),
]
junk_line = st.text(st.characters(exclude_categories=("Cs",)), max_size=200).map(
    lambda s: s.replace("\n", " ").replace("\r", " ")
)


@pytest.mark.parametrize(("reader", "rel"), FUZZ)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(junk=st.lists(junk_line, max_size=8), where=st.integers(0, 40))
def test_fuzzed_lines_never_fatal(
    tmp_path: Path, reader: Reader, rel: str, junk: list[str], where: int
) -> None:
    lines = (DATA / rel).read_text().splitlines()
    at_ = min(where, len(lines))
    path = tmp_path / "fuzz.log"
    path.write_text("\n".join(lines[:at_] + junk + lines[at_:]) + "\n", encoding="utf-8")
    issues = IssueLog()
    events = list(reader(path, issues))
    assert len(issues) <= len(junk)
    assert all(isinstance(e, NetEvent) for e in events)
    # junk can add events (a fuzzed line may be a query) but never hide the real ones
    clean = {(e.client, e.query) for e in reader(DATA / rel, IssueLog())}
    assert clean <= {(e.client, e.query) for e in events}


@pytest.mark.parametrize(("reader", "rel"), FUZZ)
@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_mutated_real_lines_never_fatal(
    tmp_path: Path, reader: Reader, rel: str, data: st.DataObject
) -> None:
    lines = (DATA / rel).read_text().splitlines()
    i = data.draw(st.integers(0, len(lines) - 1))
    cut = data.draw(st.integers(0, len(lines[i])))
    insert = data.draw(st.text(st.sampled_from(" :#@()[]/.-0123456789abcdefxyzAZ"), max_size=6))
    lines[i] = lines[i][:cut] + insert + lines[i][cut + data.draw(st.integers(0, 5)) :]
    path = tmp_path / "mut.log"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    issues = IssueLog()
    events = list(reader(path, issues))
    assert len(issues) <= 1 and all(isinstance(e, NetEvent) for e in events)
