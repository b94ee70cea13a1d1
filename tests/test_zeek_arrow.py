"""The Zeek TSV fast path's Arrow road (blocks of rows read by Arrow's CSV reader, each distinct
text of a column converted once) gives exactly what the row-by-row reader gives — and what the
split road gives for blocks too small for Arrow."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quet.indicators.model import IssueLog
from quet.netwatch.sources import _zeek_tsv, open_blocks, open_text, zeek
from test_source_zeek_fast import HEAD, LINES, ROW, SAMPLES, outcome, row_by_row


@pytest.fixture
def arrow_always(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_zeek_tsv, "_ARROW_MIN", 1)


def _rows(n: int) -> list[list[str]]:
    rows = []
    for k in range(n):
        r = list(ROW)
        r[0] = f"1714521600.{k:06d}"
        r[2] = f"10.0.{k % 7}.{k % 250}"
        r[3] = str(1024 + k)
        r[7] = f"h{k % 13}.Ex.COM."
        r[8] = f"1.2.{k % 5}.{k % 200},a{k % 3}.cdn.net"
        rows.append(r)
    return rows


def _write(path: Path, rows: list[list[str]], extra: Sequence[str] = ()) -> Path:
    body = ["\t".join(r) for r in rows]
    path.write_text("\n".join([*HEAD, *body, *extra]) + "\n", encoding="utf-8")
    return path


@pytest.mark.usefixtures("arrow_always")
@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_samples_through_arrow_equal_row_by_row(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for log in ("", "dns", "conn", "ssl"):
        assert outcome(path, log) == row_by_row(path, log, monkeypatch)


@pytest.mark.usefixtures("arrow_always")
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=LINES, with_head=st.booleans(), log=st.sampled_from(["", "dns", "ssl"]))
def test_fuzz_through_arrow_equals_row_by_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lines: list[str], with_head: bool, log: str
) -> None:
    path = tmp_path / "dns.log"
    path.write_text("\n".join([*HEAD, *lines] if with_head else lines) + "\n", encoding="utf-8")
    assert outcome(path, log) == row_by_row(path, log, monkeypatch)


ODD = ["-1", "65536", " 53", "+53", "\u0665", "53/udp", "-", "(empty)", "", "x\ry", "1.2.3", "::1"]


@pytest.mark.parametrize("column", [0, 2, 3, 4, 5, 6, 7, 8, 9])
@pytest.mark.parametrize("value", ODD)
def test_odd_values_in_a_large_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, column: int, value: str
) -> None:
    # A block over _ARROW_MIN rows takes the Arrow road by default.
    rows = _rows(3 * _zeek_tsv._ARROW_MIN)
    for k in (5, 400, len(rows) - 1):
        rows[k][column] = value
    path = _write(tmp_path / "dns.log", rows, ["#close\t2024", "\t".join(ROW)])
    got = outcome(path)
    assert got == row_by_row(path, "", monkeypatch)
    with monkeypatch.context() as m:
        m.setattr(_zeek_tsv, "_ARROW_MIN", 10**9)  # the split road
        assert outcome(path) == got
    assert len(got[0]) >= len(rows) - 3


def test_the_arrow_road_is_taken_and_values_are_shared(tmp_path: Path) -> None:
    rows = _rows(2 * _zeek_tsv._ARROW_MIN)
    path = _write(tmp_path / "dns.log", rows)
    calls: list[int] = []
    real = _zeek_tsv.FastPlan._arrow_columns

    def spy(self: Any, lines: list[str], bad: set[int]) -> Any:
        out = real(self, lines, bad)
        calls.append(0 if out is None else len(lines))
        return out

    _zeek_tsv._PLANS.clear()
    with pytest.MonkeyPatch.context() as m:
        m.setattr(_zeek_tsv.FastPlan, "_arrow_columns", spy)
        events = list(zeek.read(path, IssueLog()))
    assert calls == [len(rows)]
    assert [e.line for e in events] == list(range(len(HEAD) + 1, len(HEAD) + 1 + len(rows)))
    assert events[3].query == "h3.ex.com" and events[3].answers == ["1.2.3.3", "a0.cdn.net"]
    assert events[3].client_port == 1027 and events[3].server_port == 53
    # Rows with the same text share one converted value; each event gets its own answers list.
    assert events[0].proto is events[1].proto
    assert events[0].answers is not events[5].answers


def test_a_carriage_return_inside_a_row_falls_back_to_the_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = _rows(2 * _zeek_tsv._ARROW_MIN)
    rows[10][7] = "a\rb.com"
    path = _write(tmp_path / "dns.log", rows)
    got = outcome(path)
    assert got == row_by_row(path, "", monkeypatch)
    assert len(got[0]) == len(rows)


# -- reading plain logs in blocks ----------------------------------------------------------------

BYTES = st.lists(
    st.sampled_from(
        [
            b"a",
            b"\t",
            b"\n",
            b"\r",
            b"\r\n",
            b"\xef\xbb\xbf",
            b"\xe2\x82",
            b"\xac",
            b"\xff",
            b"x" * 9,
        ]
    ),
    max_size=60,
).map(b"".join)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=BYTES, size=st.integers(1, 12), gz=st.booleans())
def test_blocks_give_the_lines_of_open_text(
    tmp_path: Path, data: bytes, size: int, gz: bool
) -> None:
    import gzip

    path = tmp_path / "x.log"
    path.write_bytes(gzip.compress(data) if gz else data)
    want = list(open_text(path))
    got = [
        (first + k, line)
        for first, block in open_blocks(path, size=size, lines=3)
        for k, line in enumerate(block)
    ]
    assert got == want


def test_a_corrupt_gzip_ends_the_blocks_where_it_ends_the_lines(tmp_path: Path) -> None:
    import gzip

    packed = gzip.compress(b"".join(b"line %d\n" % i for i in range(5000)))
    path = tmp_path / "x.log.gz"
    path.write_bytes(packed[: len(packed) // 2])
    want_issues, got_issues = IssueLog(), IssueLog()
    want = list(open_text(path, want_issues))
    got = [line for _, block in open_blocks(path, got_issues) for line in block]
    assert got == [line for _, line in want] and len(got) > 100
    assert [str(i) for i in got_issues.issues] == [str(i) for i in want_issues.issues]
    assert len(got_issues.issues) == 1
