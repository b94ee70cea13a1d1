"""Botnet feed readers: each sample format sniffed and read (counts, bad rows named by line, one
fully expected record), the value normalisers, and fuzzed input (bad rows counted, never fatal)."""

from __future__ import annotations

import gzip
import shutil
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quet.botnet.feeds import (
    EVENT_SCHEMA,
    day_or_reason,
    ip_parts,
    network_parts,
    norm_family,
    parse_day,
    read_feed,
    sniff,
)
from quet.errors import InputError

DATA = Path(__file__).parent / "data" / "botnet"

# file: (format, rows, bad rows, events, first event (ip, family, day))
SAMPLES = {
    "event4_sinkhole.csv": ("shadowserver", 12, 3, 9, ("203.0.113.10", "gamarue", "2026-11-23")),
    "event4_sinkhole_http.csv": (
        "shadowserver",
        3,
        0,
        3,
        ("203.0.113.130", "qakbot", "2026-11-24"),
    ),
    "intelmq.jsonl": ("intelmq", 5, 2, 3, ("203.0.113.10", "gamarue", "2026-11-24")),
    "intelmq-array.json": ("intelmq", 2, 0, 2, ("203.0.113.201", "necurs", "2026-11-25")),
    "plain.csv": ("csv", 4, 1, 3, ("203.0.113.10", "gamarue", "2026-11-25")),
    "plain-noheader.csv": ("csv", 2, 0, 2, ("198.51.100.5", "mirai", "2026-11-25")),
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_samples(name: str) -> None:
    fmt, rows, bad, events, first = SAMPLES[name]
    path = DATA / name
    assert sniff(path) == fmt
    read = read_feed(path)
    assert (read.format, read.rows, read.bad_rows, read.events.num_rows) == (fmt, rows, bad, events)
    assert read.events.schema == EVENT_SCHEMA
    row = read.events.to_pylist()[0]
    assert (row["ip"], row["family"], row["day"]) == (
        first[0],
        first[1],
        date.fromisoformat(first[2]),
    )
    assert read.rows == read.events.num_rows + read.bad_rows


def test_shadowserver_bad_rows_named_by_line() -> None:
    read = read_feed(DATA / "event4_sinkhole.csv")
    found = [str(i) for i in read.issues.issues]
    assert found[0].endswith("event4_sinkhole.csv:8: not an IP address: '999.1.1.1'")
    assert found[1].endswith(":9: 4 fields where 30 expected")
    assert found[2].endswith(":13: not a time: 'not a time'")
    # IPv6 written in full comes out compressed; `infection` stands in for an empty family.
    ips = read.events.column("ip").to_pylist()
    assert "2001:db8:1::25" in ips
    http = read_feed(DATA / "event4_sinkhole_http.csv").events.to_pylist()
    assert http[2]["family"] == "ramnit" and http[2]["day"] == date(2026, 11, 24)


def test_intelmq_details() -> None:
    events = read_feed(DATA / "intelmq.jsonl").events.to_pylist()
    # 23:30 at UTC+7 is 16:30 UTC the same day; ::ffff:192.0.2.90 is IPv4.
    assert events[1]["day"] == date(2026, 11, 25) and events[1]["family"] == "mozi"
    assert events[2]["ip"] == "192.0.2.90" and events[2]["family"] == "conficker"
    array = read_feed(DATA / "intelmq-array.json").events.to_pylist()
    assert array[1]["ip"] == "2001:db8:1::99" and array[1]["family"] == "mirai"


def test_gzip_and_unknown(tmp_path: Path) -> None:
    gz = tmp_path / "sinkhole.csv.gz"
    with open(DATA / "event4_sinkhole.csv", "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    assert sniff(gz) == "shadowserver"
    assert read_feed(gz).events.num_rows == 9
    other = tmp_path / "notes.txt"
    other.write_text("hello\nworld\n")
    assert sniff(other) is None
    with pytest.raises(InputError, match="unknown feed format"):
        read_feed(other)
    with pytest.raises(InputError, match="no such file"):
        read_feed(tmp_path / "missing.csv")
    broken = tmp_path / "broken.json"
    broken.write_text('[{"source.ip": "192.0.2.1",')
    with pytest.raises(InputError, match="not a JSON array"):
        read_feed(broken)


def test_values() -> None:
    assert ip_parts(" 192.0.2.1 ") == ("192.0.2.1", 0, (0xFFFF << 32) | 0xC0000201)
    assert ip_parts("::ffff:192.0.2.1") == ip_parts("192.0.2.1")
    assert ip_parts("[2001:DB8::1]") == ("2001:db8::1", 0x20010DB800000000, 1)
    high = ip_parts("ffff::1")
    assert high is not None and high[1] < 0  # the high half is stored signed
    for bad in ("", "1.2.3", "01.2.3.4x", "1.2.3.256", "example.com", "1" * 60):
        assert ip_parts(bad) is None
    assert network_parts("192.0.2.0/24") == (0, (0xFFFF << 32) | 0xC0000200, 120)
    assert network_parts("::ffff:192.0.2.0/120") == network_parts("192.0.2.0/24")
    assert network_parts("2001:db8::/32") == (0x20010DB800000000, 0, 32)
    assert network_parts("192.0.2.0/33") is None
    assert parse_day("2026-11-24 23:59:59") == date(2026, 11, 24)
    assert parse_day("2026-11-24T23:30:00-02:00") == date(2026, 11, 25)
    assert parse_day("2026-11-24T01:00:00+07:00") == date(2026, 11, 23)
    assert parse_day("1795564800") == date(2026, 11, 25)
    assert parse_day("1795564800000") == date(2026, 11, 25)
    assert parse_day("2026-11-24") == date(2026, 11, 24)
    for bad in ("", "yesterday", "2026-13-01", "0001-01-01", "1e400"):
        assert parse_day(bad) is None
    assert (
        norm_family("  Mirai ") == "mirai"
        and norm_family(None) == ""
        and len(norm_family("x" * 300)) == 100
    )


HEADER = "ip,timestamp,family\n"
cell = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=20)
line = st.one_of(
    st.lists(cell, min_size=0, max_size=5).map(
        lambda xs: ",".join(x.replace("\n", " ").replace("\r", " ") for x in xs)
    ),
    st.tuples(
        st.sampled_from(["192.0.2.7", "2001:db8::7", "300.1.1.1", "", "x"]),
        st.sampled_from(["2026-11-24 10:00:00", "1795564800", "bad", ""]),
        st.sampled_from(["mirai", "", "Emotet"]),
    ).map(",".join),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=st.lists(line, max_size=30))
def test_fuzz_plain_csv(tmp_path: Path, lines: list[str]) -> None:
    path = tmp_path / "fuzz.csv"
    path.write_text(HEADER + "\n".join(lines) + "\n", encoding="utf-8")
    try:
        read = read_feed(path, "csv")
    except InputError:
        return  # a file pyarrow cannot read at all is one clear error, not a crash
    assert read.events.num_rows + read.bad_rows <= read.rows + len(lines)
    for row in read.events.to_pylist():
        assert ip_parts(row["ip"]) is not None and row["day"] is not None
    for issue in read.issues.issues:
        assert 2 <= issue.line <= len(lines) + 2


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=st.lists(st.text(max_size=60).map(lambda s: s.replace("\n", " ")), max_size=20))
def test_fuzz_intelmq(tmp_path: Path, lines: list[str]) -> None:
    path = tmp_path / "fuzz.jsonl"
    good = '{"source.ip": "192.0.2.9", "time.source": "2026-11-24T00:00:00Z"}'
    path.write_text("\n".join([good, *lines]) + "\n", encoding="utf-8")
    read = read_feed(path, "intelmq")
    assert read.events.num_rows >= 1
    assert read.rows == read.events.num_rows + read.bad_rows


def test_time_edge_cases_are_bad_rows_with_the_reason(tmp_path: Path) -> None:
    today = date(2026, 11, 25)
    assert (
        day_or_reason("0", today) == "time out of range (before 2000-01-01 or in the future): '0'"
    )
    # too large for seconds, and as milliseconds it is 1978: refused, not moved to 1978
    assert str(day_or_reason("253402300800", today)).startswith("time out of range")
    assert str(day_or_reason("9999-12-31T23:59:59Z", today)).startswith("time out of range")
    assert str(day_or_reason("2026-11-27", today)).startswith("time out of range")  # > 1 day ahead
    assert day_or_reason("2026-11-26T10:00:00Z", today) == date(2026, 11, 26)  # clock skew is fine
    assert day_or_reason("1999-12-31", today) != date(1999, 12, 31)
    assert day_or_reason("2000-01-01", today) == date(2000, 1, 1)
    assert day_or_reason("", today) == "missing time"
    assert day_or_reason("   ", today) == "missing time"
    assert day_or_reason("yesterday", today) == "not a time: 'yesterday'"
    feed = tmp_path / "edge.csv"
    feed.write_text(
        HEADER + "10.0.0.1,0,a\n10.0.0.2,253402300800,a\n10.0.0.3,9999-12-31T23:59:59Z,a\n"
        "10.0.0.4,,a\n10.0.0.5,2026-11-24T01:00:00Z,a\n"
    )
    read = read_feed(feed)
    assert [e["ip"] for e in read.events.to_pylist()] == ["10.0.0.5"]
    msgs = [(i.line, i.message.split(":")[0]) for i in read.issues.issues]
    assert msgs == [
        (2, "time out of range (before 2000-01-01 or in the future)"),
        (3, "time out of range (before 2000-01-01 or in the future)"),
        (4, "time out of range (before 2000-01-01 or in the future)"),
        (5, "missing time"),
    ]
    days = {e["day"] for e in read.events.to_pylist()}
    assert all(d.year >= 2000 for d in days)


def test_intelmq_list_of_names_and_sorted_errors(tmp_path: Path) -> None:
    feed = tmp_path / "bad.jsonl"
    feed.write_text(
        '{"source.ip": "10.0.0.1", "time.source": "2026-11-24T01:00:00Z",'
        ' "malware.name": ["Mirai", "Mozi", ""]}\n'
        "not json\n"
        '{"source.ip": "nope", "time.source": "2026-11-24T01:00:00Z"}\n'
        "[1]\n"
        '{"source.ip": "10.0.0.2"}\n'
    )
    read = read_feed(feed)
    got = sorted((e["ip"], e["family"]) for e in read.events.to_pylist())
    assert got == [("10.0.0.1", "mirai"), ("10.0.0.1", "mozi")]  # each name its own event
    assert "['" not in "".join(e["family"] for e in read.events.to_pylist())
    assert [i.line for i in read.issues.issues] == [2, 3, 4, 5]  # in line order
    assert read.issues.issues[3].message == "missing time"


def test_invalid_utf8_is_a_bad_row_and_folders_are_named(tmp_path: Path) -> None:
    feed = tmp_path / "bytes.csv"
    feed.write_bytes(
        HEADER.encode()
        + b"10.0.0.1,2026-11-24T01:00:00Z,mirai\n"
        + b"10.0.0.2,2026-11-24T01:00:00Z,caf\xe9\n"
        + b"10.0.0.\xff3,2026-11-24T01:00:00Z,mirai\n"
        + b"10.0.0.4,2026-11-24T01:00:00Z,mozi\n"
    )
    read = read_feed(feed)
    assert [e["ip"] for e in read.events.to_pylist()] == ["10.0.0.1", "10.0.0.4"]
    assert [str(i) for i in read.issues.issues] == [
        f"{feed}:3: invalid UTF-8 bytes",
        f"{feed}:4: invalid UTF-8 bytes",
    ]
    with pytest.raises(InputError, match="is a folder"):
        read_feed(tmp_path)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty file"):
        read_feed(empty)
