"""Following files through rotation and truncation, parsing what arrives, and the syslog
listener over real UDP and TCP sockets on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from quet.errors import InputError
from quet.indicators.model import IssueLog, make
from quet.indicators.sets import IndicatorSet
from quet.netwatch.alerts import Alert
from quet.netwatch.follow import (
    FileFollower,
    SyslogListener,
    SyslogRouter,
    Watcher,
    parse_syslog,
)
from quet.netwatch.matcher import Matcher
from quet.netwatch.sources import read_path

DNS = (
    Path(__file__).parent
    / "data"
    / "netwatch"
    / "zeek"
    / "btest-baseline"
    / "opt.basic"
    / "dns.log"
)


def _drain(f: FileFollower) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    while (chunk := f.poll(limit=64)) is not None:  # small reads: chunk edges mid-line
        lines = chunk.data.decode().splitlines()
        out += [(chunk.first_line + i, text) for i, text in enumerate(lines)]
    return out


def _append(path: Path, *lines: str, end: str = "\n") -> None:
    with path.open("a", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + end)


def test_every_line_once_through_rename_and_truncation(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    f = FileFollower(log, from_start=True)
    assert f.poll() is None  # not there yet
    _append(log, *(f"a{i}" for i in range(20)))
    got = _drain(f)
    _append(log, "b0", "b1")
    os.rename(log, tmp_path / "app.log.1")  # rotated by rename...
    _append(tmp_path / "app.log.1", "b2")  # ...the writer still finishing the old file
    got += _drain(f)  # the new name does not exist yet
    _append(log, "c0", "c1")
    got += _drain(f)
    assert f.rotations == 1
    _append(log, "c2")
    got += _drain(f)
    with log.open("w") as fh:  # truncated in place (copytruncate)
        fh.write("d0\n")
    got += _drain(f)
    assert f.truncations == 1
    _append(log, "d1", "d2 partial", end="")
    got += _drain(f)
    _append(log, " done")
    got += _drain(f)
    texts = [t for _, t in got]
    expected = [f"a{i}" for i in range(20)] + [
        "b0",
        "b1",
        "b2",
        "c0",
        "c1",
        "c2",
        "d0",
        "d1",
        "d2 partial done",
    ]
    assert texts == expected
    # Line numbers restart with each file.
    assert [n for n, _ in got] == [*range(1, 24), 1, 2, 3, 1, 2, 3]
    f.close()


def test_partial_last_line_of_a_rotated_file_is_kept(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    _append(log, "one", "two-no-newline", end="")
    f = FileFollower(log)
    assert [t for _, t in _drain(f)] == ["one"]
    os.rename(log, tmp_path / "x.log.1")
    _append(log, "three")
    assert [t for _, t in _drain(f)] == ["two-no-newline", "three"]


def test_start_at_the_end_keeps_line_numbers_and_header(tmp_path: Path) -> None:
    log = tmp_path / "dns.log"
    log.write_bytes(DNS.read_bytes())
    f = FileFollower(log, from_start=False)
    assert f.poll() is None
    total = DNS.read_bytes().count(b"\n")
    _append(log, "new line")
    assert _drain(f) == [(total + 1, "new line")]
    assert f.header.startswith(b"#separator") and f.header.count(b"\n") == 8
    later = tmp_path / "later.log"
    g = FileFollower(later, from_start=False)
    _append(later, "first")  # a file that appears after the start is read whole
    assert _drain(g) == [(1, "first")]


def _iset(*domains: str) -> IndicatorSet:
    return IndicatorSet.build(make("domain", d, family="Test", source="t") for d in domains)


@pytest.fixture
def dnslog(tmp_path: Path) -> Path:
    path = tmp_path / "dns.log"
    path.write_bytes(DNS.read_bytes())
    return path


def test_watcher_parses_as_the_whole_file_reader_does(dnslog: Path) -> None:
    alerts: list[Alert] = []
    w = Watcher(
        [dnslog],
        Matcher(_iset("wikimedia.org", "appended.test")),
        from_start=True,
        on_alert=lambda a, _new: alerts.append(a),
    )
    assert w.step() == 43  # 8 header lines, 34 records, #close
    assert len(list(read_path(DNS, IssueLog()))) == 34
    assert w.stats.events == {"zeek-dns": 34}
    assert {(a.client, a.indicator) for a in alerts} == {("141.142.220.118", "wikimedia.org")}
    first = w.aggregator.sorted()[0]
    assert first.count == 10  # upload.* and meta.*; never upload.wikimedia.org.ncsa.uiuc.edu
    assert first.examples[0] == (str(dnslog), 12, "upload.wikimedia.org")
    # Appended lines are parsed with the file's header (the #fields line names the columns).
    rows = [ln for ln in DNS.read_text().splitlines() if not ln.startswith("#")]
    again = rows[5]
    fields = rows[3].split("\t")  # a query without answers
    fields[9] = "appended.test"
    _append(dnslog, again, "\t".join(fields))
    w.step()
    assert first.count == 11
    [update] = w.updates()
    assert update is first and w.updates() == []
    new = w.aggregator.alerts[("141.142.220.118", "domain", "appended.test")]
    assert new.examples == [(str(dnslog), 45, "appended.test")]
    assert alerts[-1] is new
    assert len(w.issues) == 0
    w.close()


def test_watcher_follows_a_rotated_zeek_log(dnslog: Path, tmp_path: Path) -> None:
    w = Watcher([dnslog], Matcher(_iset("evil-c2.test")), from_start=True)
    w.step()
    assert not w.aggregator.alerts
    header = [ln for ln in DNS.read_text().splitlines() if ln.startswith("#")][:8]
    row = [ln for ln in DNS.read_text().splitlines() if not ln.startswith("#")][3].split("\t")
    row[9] = "x.evil-c2.test"
    os.rename(dnslog, tmp_path / "dns.00.log")
    dnslog.write_text("\n".join([*header, "\t".join(row)]) + "\n", encoding="utf-8")
    w.step()
    w.step()
    [alert] = w.aggregator.alerts.values()
    assert alert.examples == [(str(dnslog), 9, "x.evil-c2.test")]
    assert w.stats.events["zeek-dns"] == 35
    assert len(w.issues) == 0
    w.close()


def test_bad_lines_are_counted_with_their_true_line(dnslog: Path) -> None:
    w = Watcher([dnslog], Matcher(_iset("evil.test")), from_start=True)
    w.step()
    _append(dnslog, "garbage\twith\ttoo few fields")
    w.step()
    assert len(w.issues) == 1
    assert w.issues.issues[0].path == str(dnslog) and w.issues.issues[0].line == 44
    w.close()


def test_unknown_format_is_reported_once(tmp_path: Path) -> None:
    odd = tmp_path / "odd.txt"
    odd.write_text("nothing a log source knows\n")
    w = Watcher([odd], Matcher(_iset("evil.test")), from_start=True)
    w.step()
    _append(odd, "more")
    w.step()
    assert [(i.line, i.message) for i in w.issues.issues] == [
        (0, "unknown log format; its lines are skipped")
    ]
    with pytest.raises(InputError, match="unknown log source"):
        Watcher([odd], Matcher(_iset("evil.test")), source="nope")
    w.close()


# -- syslog ------------------------------------------------------------------------------------


def test_parse_syslog_forms() -> None:
    m = parse_syslog("<30>1 2024-03-05T10:00:00.123Z ns1 named 812 - - client 10.0.0.2#5 (a.b): x")
    assert (m.pri, m.host, m.app, m.pid, m.body) == (
        30,
        "ns1",
        "named",
        "812",
        "client 10.0.0.2#5 (a.b): x",
    )
    assert m.traditional() == "Mar  5 10:00:00 ns1 named[812]: client 10.0.0.2#5 (a.b): x"
    m = parse_syslog('<13>1 2024-03-05T10:00:00Z h app - ID1 [x@1 a="\\]"][y@2] hello')
    assert (m.app, m.pid, m.body) == ("app", "", "hello")
    m = parse_syslog("<29>Mar  5 10:00:00 gw dnsmasq[77]: query[A] evil.test from 10.0.0.9")
    assert (m.pri, m.app, m.pid, m.body) == (
        29,
        "dnsmasq",
        "77",
        "query[A] evil.test from 10.0.0.9",
    )
    assert m.traditional() == "Mar  5 10:00:00 gw dnsmasq[77]: query[A] evil.test from 10.0.0.9"
    m = parse_syslog("<5>just text")
    assert (m.pri, m.body, m.traditional()) == (5, "just text", "just text")


BIND_MSG = "<30>1 2024-03-05T10:00:{s:02d}Z ns1 named 812 - - client @0x7f3 192.168.7.{h}#5353 (x.evil.test): query: x.evil.test IN A +E(0) (192.168.7.1)"
DNSMASQ_MSG = "<30>Mar  5 10:00:{s:02d} gw dnsmasq[77]: query[A] www.evil.test from 192.168.8.{h}"


def _wait(w: Watcher, want: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while w.stats.total() < want and time.monotonic() < deadline:
        w.step()
        time.sleep(0.02)


@pytest.fixture
def listener() -> Iterator[SyslogListener]:
    lst = SyslogListener("127.0.0.1", udp_port=0, tcp_port=0).start()
    yield lst
    lst.close()


def test_syslog_over_udp_and_tcp(listener: SyslogListener) -> None:
    w = Watcher([], Matcher(_iset("evil.test")), syslog=listener)
    assert listener.udp_address is not None and listener.tcp_address is not None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        for i in range(3):
            udp.sendto(BIND_MSG.format(s=i, h=10 + i).encode(), listener.udp_address)
    with socket.create_connection(listener.tcp_address) as tcp:
        tcp.sendall((DNSMASQ_MSG.format(s=1, h=20) + "\n").encode())
        framed = DNSMASQ_MSG.format(s=2, h=21).encode()  # RFC 6587 octet counting
        tcp.sendall(str(len(framed)).encode() + b" " + framed)
    _wait(w, 5)
    assert w.stats.events == {"bind": 3, "dnsmasq": 2}
    clients = sorted(a.client for a in w.aggregator.alerts.values())
    assert clients == [
        "192.168.7.10",
        "192.168.7.11",
        "192.168.7.12",
        "192.168.8.20",
        "192.168.8.21",
    ]
    labels = {a.examples[0][0] for a in w.aggregator.alerts.values()}
    assert labels == {"syslog:udp:127.0.0.1", "syslog:tcp:127.0.0.1"}
    w.close()


def test_syslog_unknown_messages_are_counted(listener: SyslogListener) -> None:
    w = Watcher([], Matcher(_iset("evil.test")), syslog=listener)
    assert listener.udp_address is not None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(b"<13>Mar  5 10:00:00 h cron[1]: nothing to see", listener.udp_address)
        udp.sendto(DNSMASQ_MSG.format(s=3, h=30).encode(), listener.udp_address)
    _wait(w, 1)
    deadline = time.monotonic() + 5
    while not len(w.issues) and time.monotonic() < deadline:
        w.step()
    assert w.stats.events == {"dnsmasq": 1}
    assert [i.message for i in w.issues.issues] == ["no log source reads this message"]
    w.close()


def test_syslog_format_is_forced_or_refused() -> None:
    with pytest.raises(InputError, match="unknown log source"):
        SyslogRouter("no-such-source")
    router = SyslogRouter("dnsmasq")
    msg = parse_syslog(DNSMASQ_MSG.format(s=1, h=2))
    src, line = router.route(msg) or (None, "")
    assert src is not None and src.name == "dnsmasq" and line.startswith("Mar  5 10:00:01 gw")


def test_listener_port_in_use_is_an_input_error(listener: SyslogListener) -> None:
    assert listener.tcp_address is not None
    with pytest.raises(InputError, match="cannot listen"):
        SyslogListener("127.0.0.1", tcp_port=listener.tcp_address[1])
