"""Firewall logs: iptables LOG, FortiGate traffic, pfSense filterlog and CSV exports with a column
map, on samples written to each product's documented format; presets, detection, fuzzing."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quet.errors import InputError
from quet.indicators.model import IssueLog
from quet.netwatch.records import NetEvent
from quet.netwatch.sources import detect, head, read_path
from quet.netwatch.sources.firewall import (
    PRESETS,
    FirewallMap,
    guess_map,
    normalise_action,
    parse_time,
    read_firewall,
)

DATA = Path(__file__).parent / "data" / "netwatch" / "firewall"
WRITTEN = datetime(2026, 11, 26, 12, 0, tzinfo=UTC).timestamp()


def copy(tmp_path: Path, name: str) -> Path:
    dst = tmp_path / name
    shutil.copyfile(DATA / name, dst)
    os.utime(dst, (WRITTEN, WRITTEN))  # syslog stamps have no year: it comes from here
    return dst


def read(path: Path, mapping: FirewallMap | None = None) -> tuple[list[NetEvent], IssueLog]:
    issues = IssueLog()
    return list(read_firewall(path, issues, mapping)), issues


def summary(events: list[NetEvent]) -> list[tuple[str, int, str, int, str, str]]:
    return [(e.client, e.client_port, e.server, e.server_port, e.proto, e.action) for e in events]


@pytest.mark.parametrize(
    ("name", "preset", "count"),
    [("iptables.log", "iptables", 3), ("fortigate.log", "fortigate", 3),
     ("pfsense.log", "pfsense", 4), ("export.csv", "csv", 3)],
)  # fmt: skip
def test_samples(tmp_path: Path, name: str, preset: str, count: int) -> None:
    path = copy(tmp_path, name)
    src = detect(path)
    assert src is not None and src.name == "firewall"
    assert guess_map(head(path)) == PRESETS[preset]
    issues = IssueLog()
    events = list(read_path(path, issues))
    assert len(issues) == 0, [str(i) for i in issues.issues]
    assert len(events) == count
    assert {e.kind for e in events} == {f"firewall:{preset}"}


def test_iptables(tmp_path: Path) -> None:
    events, _ = read(copy(tmp_path, "iptables.log"))
    assert events[0] == NetEvent(
        kind="firewall:iptables",
        ts=datetime(2026, 11, 25, 8, 1, 2, tzinfo=UTC),
        client="203.0.113.50",
        client_port=51515,
        server="192.0.2.10",
        server_port=22,
        proto="tcp",
        action="deny",  # from the --log-prefix "[UFW BLOCK]"
        source=str(tmp_path / "iptables.log"),
        line=1,
    )
    assert summary(events[1:]) == [
        ("192.0.2.10", 40000, "198.51.100.53", 53, "udp", "allow"),
        ("2001:db8::66", 0, "2001:db8::10", 0, "icmpv6", "deny"),  # IPs compressed
    ]


def test_fortigate(tmp_path: Path) -> None:
    events, _ = read(copy(tmp_path, "fortigate.log"))
    # date/time are local at tz="+0100": 08:01:02 there is 07:01:02 UTC (= eventtime)
    assert [e.ts for e in events] == [
        datetime(2025, 11, 25, 7, 1, s, tzinfo=UTC) for s in (2, 5, 6)
    ]
    assert summary(events) == [
        ("192.0.2.10", 51000, "93.184.215.14", 443, "tcp", "allow"),  # action="close"
        ("192.0.2.11", 52000, "203.0.113.66", 80, "tcp", "deny"),
        ("192.0.2.12", 53001, "9.9.9.9", 53, "udp", "allow"),
    ]
    assert [e.host for e in events] == ["", "bad.example.net", ""]


def test_pfsense(tmp_path: Path) -> None:
    events, _ = read(copy(tmp_path, "pfsense.log"))
    assert summary(events) == [
        ("203.0.113.77", 43125, "198.51.100.2", 3389, "tcp", "deny"),
        ("192.168.1.20", 53411, "9.9.9.9", 53, "udp", "allow"),
        ("2001:db8:1::20", 50123, "2001:db8:2::80", 443, "tcp", "allow"),  # IPv6 layout
        ("203.0.113.5", 0, "198.51.100.2", 0, "icmp", "deny"),
    ]
    assert events[0].ts == datetime(2026, 11, 25, 8, 1, 2, tzinfo=UTC)


def test_csv_auto_and_explicit_map_agree() -> None:
    auto, _ = read(DATA / "export.csv")
    spec = "src=SrcIP,dst=DstIP,sport=SrcPort,dport=DstPort,proto=Protocol,action=Action,ts=Time"
    explicit, issues = read(DATA / "export.csv", FirewallMap.from_spec(spec))
    assert auto == explicit and len(issues) == 0
    assert summary(auto) == [
        ("192.0.2.10", 50100, "93.184.215.14", 443, "tcp", "allow"),
        ("192.0.2.11", 50200, "203.0.113.9", 123, "udp", "deny"),
        ("192.0.2.12", 0, "198.51.100.1", 0, "icmp", "deny"),
    ]
    assert [e.ts for e in auto] == [datetime(2026, 11, 25, 8, 1, s, tzinfo=UTC) for s in (2, 3, 4)]


def test_csv_needs_a_map_for_unknown_columns() -> None:
    path = DATA / "custom.csv"
    assert detect(path) is None or detect(path).name != "firewall"  # type: ignore[union-attr]
    events, issues = read(path)
    assert events == [] and len(issues) == 1 and "source/destination" in issues.issues[0].message
    mapping = FirewallMap.from_spec(
        "src=Origin Host,sport=Origin Port,dst=Target Host,dport=Target Port,proto=L4,"
        "action=Verdict,ts=When"
    )
    events, issues = read(path, mapping)
    assert len(issues) == 0
    assert summary(events) == [
        ("10.1.2.3", 40001, "198.51.100.80", 8443, "tcp", "allow"),
        ("10.1.2.4", 40002, "198.51.100.81", 25, "tcp", "deny"),
    ]
    assert events[0].ts == datetime(2025, 11, 25, 8, 1, 2, tzinfo=UTC)


def test_from_spec_rejects_unknown_keys() -> None:
    with pytest.raises(InputError, match="bogus"):
        FirewallMap.from_spec("src=A,bogus=B")
    with pytest.raises(InputError):
        FirewallMap.from_spec("src")
    assert FirewallMap.from_spec("", PRESETS["fortigate"]) == PRESETS["fortigate"]


def test_helpers() -> None:
    assert [normalise_action(a) for a in ("ACCEPT", "[UFW BLOCK]", "client-rst", "weird")] == [
        "allow", "deny", "allow", "weird",
    ]  # fmt: skip
    ref = datetime(2026, 11, 26, tzinfo=UTC).date()
    assert parse_time("1764057662000", ref) == datetime(2025, 11, 25, 8, 1, 2, tzinfo=UTC)
    assert parse_time("2026-11-25 09:00:00", ref, "-0500") == datetime(
        2026, 11, 25, 14, 0, tzinfo=UTC
    )
    assert parse_time("11/25/2026 12:30:00 AM", ref) == datetime(2026, 11, 25, 0, 30, tzinfo=UTC)
    assert parse_time("-", ref) is None and parse_time("soon", ref) is None


@pytest.mark.parametrize(
    ("preset", "line"),
    [
        ("iptables", "Nov 25 08:01:02 gw kernel: IN=eth0 SRC=1.2.3.999 DST=1.2.3.4 PROTO=TCP"),
        ("iptables", "Nov 25 08:01:02 gw kernel: IN=eth0 SRC=1.2.3.4 DST=1.2.3.5 SPT=x DPT=99999"),
        ("fortigate", 'date=2025-11-25 time=08:01:02 srcip=1.2.3.4 dstip=nope action="deny"'),
        ("pfsense", "Nov 25 08:01:02 pfSense filterlog[1]: 5,,,1,igb1,match,block,in,9,x"),
        ("pfsense", "Nov 25 08:01:02 pfSense filterlog[1]: 5,,"),
        ("csv", "1.2.3.4,1.2.3.5\n9.9.9.9"),
    ],
)
def test_bad_lines_counted(tmp_path: Path, preset: str, line: str) -> None:
    path = tmp_path / "fw.log"
    if preset == "csv":
        path.write_text("src,dst\n" + line + "\n")
    else:
        path.write_text(line + "\n")
    events, issues = read(path, PRESETS[preset])
    assert len(issues) == 1, [str(i) for i in issues.issues]
    assert len(events) == (1 if preset == "csv" else 0)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        read(tmp_path / "absent.log", PRESETS["iptables"])


@pytest.mark.parametrize("name", ["iptables.log", "fortigate.log", "pfsense.log", "export.csv"])
@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(junk=st.lists(st.text(max_size=200).map(lambda s: " ".join(s.splitlines())), max_size=8))
def test_fuzzed_lines_never_fatal(tmp_path: Path, name: str, junk: list[str]) -> None:
    lines = (DATA / name).read_text().splitlines()
    path = tmp_path / name
    path.write_text("\n".join(lines[:2] + junk + lines[2:]) + "\n", encoding="utf-8")
    mapping = guess_map(lines)
    events, issues = read(path, mapping)
    assert len(issues) <= len(junk)
    clean, _ = read(DATA / name, mapping)
    assert {(e.client, e.server) for e in clean} <= {(e.client, e.server) for e in events}


@pytest.mark.parametrize("name", ["iptables.log", "fortigate.log", "pfsense.log", "export.csv"])
@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_mutated_real_lines_never_fatal(tmp_path: Path, name: str, data: st.DataObject) -> None:
    lines = (DATA / name).read_text().splitlines()
    mapping = guess_map(lines)
    # a mutated CSV header shifts every row: that is test_csv_needs_a_map_for_unknown_columns
    i = data.draw(st.integers(1 if name.endswith(".csv") else 0, len(lines) - 1))
    cut = data.draw(st.integers(0, len(lines[i])))
    insert = data.draw(st.text(st.sampled_from(' ,=":.-0123456789abcxyz'), max_size=6))
    lines[i] = lines[i][:cut] + insert + lines[i][cut + data.draw(st.integers(0, 5)) :]
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    events, issues = read(path, mapping)
    assert len(issues) <= 1 and all(isinstance(e, NetEvent) for e in events)
