"""Squid access.log (native format): a sample in the documented `logformat squid` layout, CONNECT
tunnels, error requests, bad lines fuzzed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quet.errors import InputError
from quet.indicators.model import IssueLog
from quet.netwatch.records import NetEvent
from quet.netwatch.sources import detect
from quet.netwatch.sources.squid import parse_squid, read_squid

SAMPLE = Path(__file__).parent / "data" / "netwatch" / "squid" / "access.log"


def read(path: Path) -> tuple[list[NetEvent], IssueLog]:
    issues = IssueLog()
    return list(read_squid(path, issues)), issues


def test_sample() -> None:
    src = detect(SAMPLE)
    assert src is not None and src.name == "squid"
    events, issues = read(SAMPLE)
    assert len(issues) == 0 and len(events) == 7
    assert events[0] == NetEvent(
        kind="squid:access",
        ts=datetime(2025, 11, 25, 8, 1, 2, 123000, tzinfo=UTC),
        client="192.0.2.10",
        server="93.184.215.14",
        server_port=80,
        proto="tcp",
        host="www.example.com",
        url="http://www.example.com/index.html",
        action="TCP_MISS/200",
        source=str(SAMPLE),
        line=1,
    )
    assert [(e.client, e.host, e.server, e.server_port, e.url, e.action) for e in events[1:]] == [
        ("192.0.2.11", "login.example.org", "198.51.100.20", 443, "", "TCP_TUNNEL/200"),
        ("192.0.2.12", "malware.example.net", "", 80,
         "http://malware.example.net/payload.exe", "TCP_DENIED/403"),
        ("192.0.2.10", "www.example.com", "", 8080,
         "http://www.example.com:8080/logo.png", "TCP_MEM_HIT/200"),
        ("2001:db8::10", "2001:db8::80", "2001:db8::80", 80,
         "http://[2001:db8::80]/status", "TCP_MISS/304"),
        ("192.0.2.13", "", "", 0, "", "NONE_NONE/400"),
        ("192.0.2.14", "cdn.example.com", "203.0.113.8", 80,
         "http://cdn.example.com/app.js", "TCP_REFRESH_UNMODIFIED/304"),
    ]  # fmt: skip


def test_connect_ipv6_and_https_default_port() -> None:
    got = parse_squid(
        "1764057663.456 5 10.0.0.1 TCP_TUNNEL/200 10 CONNECT [2001:db8::1]:8443 - "
        "HIER_DIRECT/2001:db8::1 -"
    )
    assert isinstance(got, NetEvent)
    assert (got.host, got.server_port, got.url) == ("2001:db8::1", 8443, "")
    got = parse_squid(
        "1764057663.456 5 10.0.0.1 TCP_MISS/200 10 GET https://Secure.Example.com/x - "
        "HIER_DIRECT/198.51.100.1 text/html"
    )
    assert isinstance(got, NetEvent) and (got.host, got.server_port) == ("secure.example.com", 443)


@pytest.mark.parametrize(
    "line",
    [
        "not a squid line",
        "1764057662.123 245 192.0.2.10 TCP_MISS/200 5120 GET",  # too few fields
        "1764057662.123 245 192.0.2.10 TCP_MISS/200 5120 GET http://[::1/ - HIER_DIRECT/1.2.3.4 -",
    ],
)
def test_bad_lines_counted(tmp_path: Path, line: str) -> None:
    path = tmp_path / "access.log"
    path.write_text(line + "\n")
    events, issues = read(path)
    assert events == [] and len(issues) == 1 and issues.issues[0].line == 1


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        read(tmp_path / "absent.log")


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(junk=st.lists(st.text(max_size=200).map(lambda s: " ".join(s.splitlines())), max_size=8))
def test_fuzzed_lines_never_fatal(tmp_path: Path, junk: list[str]) -> None:
    path = tmp_path / "fuzz.log"
    lines = SAMPLE.read_text().splitlines()
    path.write_text("\n".join(lines[:3] + junk + lines[3:]) + "\n", encoding="utf-8")
    events, issues = read(path)
    assert len(issues) <= len(junk)
    assert len(events) >= 7


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_mutated_real_lines_never_fatal(tmp_path: Path, data: st.DataObject) -> None:
    lines = SAMPLE.read_text().splitlines()
    i = data.draw(st.integers(0, len(lines) - 1))
    cut = data.draw(st.integers(0, len(lines[i])))
    insert = data.draw(st.text(st.sampled_from(" /:.[]-0123456789abcxyz_"), max_size=6))
    lines[i] = lines[i][:cut] + insert + lines[i][cut + data.draw(st.integers(0, 5)) :]
    path = tmp_path / "access.log"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    events, issues = read(path)
    assert len(issues) <= 1 and len(events) + len(issues) == len(lines)
