"""The fast Zeek TSV path (columns at a time) and the in-memory entry point follow mode uses must
give exactly what the row-by-row reader gives: the same events, the same issues, same lines."""

from __future__ import annotations

import dataclasses
import ipaddress
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quet.indicators.model import IssueLog
from quet.netwatch.follow import Chunk, ChunkParser
from quet.netwatch.records import NetEvent
from quet.netwatch.sources import SOURCES, _zeek_tsv, answer_values, norm_ip, parse_ts, zeek

DATA = Path(__file__).parent / "data" / "netwatch" / "zeek"
SAMPLES = sorted(p for p in DATA.rglob("*") if p.is_file() and p.suffix in (".log", ".json"))

Outcome = tuple[list[tuple[object, ...]], list[tuple[str, int, str]], int]


def outcome(path: Path, log: str = "") -> Outcome:
    issues = IssueLog(limit=100_000)
    events = [dataclasses.astuple(e) for e in zeek.read(path, issues, log)]
    return events, [(i.path, i.line, i.message) for i in issues.issues], issues.count


def row_by_row(path: Path, log: str, monkeypatch: pytest.MonkeyPatch) -> Outcome:
    with monkeypatch.context() as m:
        m.setattr(zeek, "FAST_SPECS", {})  # no log type has a columnar plan: the reference
        return outcome(path, log)


def test_events_are_built_positionally() -> None:
    # If NetEvent's fields change order the fast path turns itself off; this says so loudly.
    assert _zeek_tsv._POSITIONAL


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: str(p.relative_to(DATA)))
def test_samples_fast_equals_row_by_row(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for log in ("", "dns", "conn", "ssl"):
        fast = outcome(path, log)
        assert fast == row_by_row(path, log, monkeypatch)


def test_the_fast_path_is_taken_for_dns_conn_ssl() -> None:
    for rel in ("opt.basic/dns.log", "opt.basic/conn.log"):
        header = _zeek_tsv.Header(path="x")
        for line in (DATA / "btest-baseline" / rel).read_text().splitlines():
            if line.startswith("#"):
                header.directive(line)
            else:
                break
        assert header.plan(zeek.FAST_SPECS) is not None, rel


HEAD = [
    "#separator \\x09",
    "#set_separator\t,",
    "#empty_field\t(empty)",
    "#unset_field\t-",
    "#path\tdns",
    "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tquery\tanswers"
    "\trcode_name",
    "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tvector[string]\tstring",
]
GOOD = ["1714521600.5", "C1", "10.0.0.1", "4000", "10.0.0.53", "53", "udp", "Ex.COM.", "1.2.3.4"]
ROW = [*GOOD, "NOERROR"]
ODD = st.sampled_from(
    [
        *(
            "",
            "-",
            "(empty)",
            " ",
            "{",
            '{"ts": 1}',
            "XXXXXXXXXX.XXXXXX",
            "nan",
            "1e400",
            "+53",
            "-1",
        ),
        *("10.0.0.1", "010.0.0.1", "256.1.1.1", "1.2.3", "::1", "[::1]", "fe80::1%eth0"),
        *("2001:0DB8::1", "99999", "53/udp", "\u0665", "6", "a.b,1.2.3.4", "a\\x2cb", "\\x09"),
        *("\\\\", "NOERROR", "foo bar.com", "1.2.3.4,1.2.3.4", "\ufeff1.0", " 1.5", "1_0"),
        *("65536", " 53", "0x35", "5_3"),
    ]
)
DIRECTIVE = st.sampled_from(
    [
        *HEAD,
        "#path\tconn",
        "#path\tssl",
        "#path\tweird",
        "#fields\tts\tid.orig_h\tid.resp_h",
        "#unset_field\t0",
        "#empty_field\tE",
        "#set_separator\t;",
        "#separator \\x7c",
        "#close\t2024",
    ]
)


@st.composite
def row(draw: st.DrawFn) -> str:
    n = draw(st.sampled_from([10, 10, 10, 10, 3, 9, 11, 1]))
    fields = [draw(ODD) if draw(st.integers(0, 9)) == 0 else ROW[i % 10] for i in range(n)]
    return draw(st.sampled_from(["\t", "\t", "|"])).join(fields)


LINES = st.lists(st.one_of(row(), row(), row(), DIRECTIVE, ODD), max_size=40)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=LINES, with_head=st.booleans(), log=st.sampled_from(["", "dns", "ssl"]))
def test_fuzz_fast_equals_row_by_row(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    lines: list[str],
    with_head: bool,
    log: str,
) -> None:
    path = tmp_path / "dns.log"
    path.write_text("\n".join([*HEAD, *lines] if with_head else lines) + "\n", encoding="utf-8")
    assert outcome(path, log) == row_by_row(path, log, monkeypatch)


EDGE_VALUES = ["-1", "65536", " 53", "+53", "5_3", "\u0665", "0x35", "53/udp", "-", "(empty)", ""]


@pytest.mark.parametrize("column", [0, 2, 3, 4, 5, 6, 7, 8, 9])
@pytest.mark.parametrize("value", EDGE_VALUES)
def test_one_odd_value_in_a_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, column: int, value: str
) -> None:
    rows = [list(ROW) for _ in range(5)]
    for k, r in enumerate(rows):
        r[0] = f"1714521600.{k}"
        r[3] = str(4000 + k)  # a column of different values, as client ports are
    rows[2][column] = value
    path = tmp_path / "dns.log"
    path.write_text("\n".join([*HEAD, *("\t".join(r) for r in rows)]) + "\n")
    assert outcome(path) == row_by_row(path, "", monkeypatch)


def test_a_bad_value_shared_by_every_row_is_an_issue_per_row(tmp_path: Path) -> None:
    path = tmp_path / "dns.log"
    rows = [
        "\t".join([f"1714521600.{k}", "C", "10.0.0.1", "99999", *GOOD[4:], "X"]) for k in range(3)
    ]
    path.write_text("\n".join([*HEAD, *rows]) + "\n")
    events, issues, count = outcome(path)
    assert events == [] and count == 3
    assert [i[1] for i in issues] == [8, 9, 10]
    assert all("port" in i[2] for i in issues)


def test_parse_lines_in_pieces_equals_reading_the_file() -> None:
    path = DATA / "btest-baseline" / "opt.basic" / "dns.log"
    whole = outcome(path)
    lines = path.read_text().splitlines()
    head = [line for line in lines[:10] if line.startswith("#")]
    src = SOURCES["zeek-dns"]
    assert src.parse_lines is not None
    issues = IssueLog()
    events: list[NetEvent] = []
    # The first piece holds the header itself; later ones get it apart, as follow mode does.
    for start in range(0, len(lines), 7):
        piece = lines[start : start + 7]
        events += src.parse_lines(head if start else [], piece, issues, str(path), start + 1)
    assert [dataclasses.astuple(e) for e in events] == whole[0]
    assert issues.count == whole[2] == 0


def test_chunk_parser_parses_in_memory(tmp_path: Path) -> None:
    text = "\n".join(HEAD) + "\n"
    body = "\ufeff" + text + "\t".join(ROW) + "\r\n" + "bad\tline\n"
    parser = ChunkParser()
    issues = IssueLog()
    events = parser.parse(SOURCES["zeek-dns"], Chunk("/x/dns.log", 1, body.encode()), b"", issues)
    parser.close()
    assert [(e.line, e.source, e.query, e.answers) for e in events] == [
        (8, "/x/dns.log", "ex.com", ["1.2.3.4"])
    ]
    assert events[0].action == "NOERROR"
    assert [(i.path, i.line) for i in issues.issues] == [("/x/dns.log", 9)]
    assert parser._dir is None  # no scratch files were needed


OCTETS = st.one_of(
    st.integers(0, 300).map(str),
    st.sampled_from(["00", "01", "007", "", "a", "\u0665", "1 ", "+1", "-1", "1_0"]),
)


@settings(max_examples=400, deadline=None)
@given(parts=st.lists(OCTETS, min_size=3, max_size=5), wrap=st.sampled_from(["{}", "[{}]", " {} "]))
def test_norm_ip_agrees_with_ipaddress(parts: list[str], wrap: str) -> None:
    text = wrap.format(".".join(parts))
    try:
        expected: str | None = ipaddress.ip_address(text.strip().strip("[]")).compressed
    except ValueError:
        expected = None
    if expected is None:
        with pytest.raises(ValueError, match="not an IP address"):
            norm_ip(text)
    else:
        assert norm_ip(text) == norm_ip(text) == expected  # the second from the cache


def test_helpers_keep_their_answers() -> None:
    assert norm_ip("2001:0DB8::0001") == "2001:db8::1"
    assert norm_ip("[fe80::1%eth0]") == "fe80::1"
    assert norm_ip(None) == norm_ip("-") == norm_ip("(empty)") == ""
    values = ["A.Example.COM.", "192.0.2.1", "TXT 12 v=spf1", "-", "192.0.2.1", "2001:db8::0001"]
    assert answer_values(values) == ["a.example.com", "192.0.2.1", "2001:db8::1"]
    assert answer_values(values) == answer_values(list(values))  # cached answers, same list
    moment = datetime(2024, 5, 1, 0, 0, 0, 1000, tzinfo=UTC)
    assert parse_ts("1714521600.001000") == parse_ts(" 1714521600.001 ") == moment
    assert parse_ts("XXXXXXXXXX.XXXXXX") is None and parse_ts("-") is None
    with pytest.raises(ValueError, match="not a time"):
        parse_ts("nan")
