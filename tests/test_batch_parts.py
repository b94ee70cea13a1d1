"""A large plain Zeek log is read by the batch matcher in parts, side by side, each through its
own named pipe: the alerts, examples, line numbers and issues are those of one whole read —
and of the streaming matcher."""

from __future__ import annotations

import errno
import itertools
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from quet.indicators.model import Indicator, IndicatorType, IssueLog
from quet.indicators.warninglists import WarninglistSet
from quet.netwatch import batch, parts
from quet.netwatch.batch import BatchMatcher, scan_batch
from test_batch import (
    CASES,
    DATA,
    ZEEK,
    _drawn_indicators,
    streaming,
    zeek_log,
)
from test_batch import (
    test_bad_lines_are_counted_with_their_line_and_skipped as bad_lines_case,
)
from test_batch import (
    test_cidrs_by_longest_prefix_and_exact_ips_too as cidr_case,
)
from test_batch import (
    test_client_values_count_only_for_outside_clients as client_case,
)
from test_batch import (
    test_domains_match_by_labels_not_substrings as labels_case,
)
from test_batch import (
    test_matcher_cases_give_the_streaming_alerts as matcher_case,
)

T = IndicatorType


@pytest.fixture
def in_parts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every Zeek dns/conn log read in parts, however small; the list counts the reads."""
    monkeypatch.setattr(parts, "PART_MIN", 1)
    used: list[int] = []
    real = parts.read_side_by_side

    def counted(path: Path, ranges: Any, work: Any) -> None:
        used.append(len(ranges))
        real(path, ranges, work)

    monkeypatch.setattr(parts, "read_side_by_side", counted)
    return used


# -- cutting ------------------------------------------------------------------------------------


def test_cuts_fall_on_line_ends_and_cover_the_rows(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    lines = ["#h1", "#h2", *(f"row {i} " + "x" * (i % 17) for i in range(500))]
    data = ("\n".join(lines) + "\n").encode()
    log.write_bytes(data)
    head = len(b"#h1\n#h2\n")
    for n in (2, 3, 7):
        ranges = parts.cut(log, 2, n, part_min=1)
        assert len(ranges) == n
        assert ranges[0][0] == head and ranges[-1][1] == len(data)
        for (_, end), (start, _) in itertools.pairwise(ranges):
            assert end == start and data[start - 1 : start] == b"\n"
    assert parts.cut(log, 2, 2) == []  # smaller than PART_MIN: read whole
    assert parts.cut(log, 2, 1, part_min=1) == []
    assert parts.cut(log, 600, 2, part_min=1) == []  # more header lines than the file has
    assert parts.cut(tmp_path, 0, 2, part_min=1) == []  # not a file


@pytest.mark.parametrize("sendfile", [True, False])
def test_every_pipe_gives_its_range(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sendfile: bool
) -> None:
    if not sendfile:  # as on systems whose sendfile writes only to sockets: copied through us

        def refuse(*args: Any) -> int:
            raise OSError(errno.EINVAL, "not a socket")

        monkeypatch.setattr(os, "sendfile", refuse)
    log = tmp_path / "x.log"
    data = b"".join(b"line %d\n" % i for i in range(200_000))
    log.write_bytes(data)
    ranges = parts.cut(log, 0, 3, part_min=1)
    got: dict[int, bytes] = {}

    def work(i: int, pipe: str) -> None:
        with open(pipe, "rb") as fh:
            got[i] = fh.read()

    parts.read_side_by_side(log, ranges, work)
    assert [got[i] for i in range(3)] == [data[a:b] for a, b in ranges]
    assert b"".join(got[i] for i in range(3)) == data


def test_a_failing_part_raises_and_stops_every_writer(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_bytes(b"".join(b"line %d\n" % i for i in range(400_000)))
    ranges = parts.cut(log, 0, 2, part_min=1)
    before = threading.active_count()

    def work(i: int, pipe: str) -> None:
        if i == 0:
            raise ValueError("refused before opening the pipe")
        with open(pipe, "rb") as fh:
            fh.read(10)  # reads a little, then stops: its writer must not hang

    start = time.monotonic()
    with pytest.raises(ValueError, match="refused"):
        parts.read_side_by_side(log, ranges, work)
    assert time.monotonic() - start < 10
    assert threading.active_count() == before
    assert not [p for p in os.listdir(os.path.dirname(log)) if p.startswith("part")]


# -- the same answers -----------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_matcher_cases_in_parts(case: dict[str, Any], in_parts: list[int]) -> None:
    matcher_case(case)


@pytest.mark.parametrize("wl", [None, "default"])
def test_every_sample_log_in_parts(wl: str | None, in_parts: list[int]) -> None:
    paths = sorted(p for p in DATA.iterdir() if p.is_dir())
    inds = _drawn_indicators(paths)
    lists = WarninglistSet.default() if wl else None
    want_issues, got_issues = IssueLog(), IssueLog()
    want = streaming(paths, inds, lists, want_issues)
    got = scan_batch(paths, inds, lists, got_issues)
    assert in_parts and got == want and len(want) > 100
    assert [str(i) for i in got_issues.issues] == [str(i) for i in want_issues.issues]


@pytest.mark.parametrize("case", [labels_case, cidr_case, bad_lines_case, client_case])
def test_semantics_in_parts(case: Any, tmp_path: Path, in_parts: list[int]) -> None:
    case(tmp_path)
    assert in_parts and set(in_parts) == {2}


@pytest.mark.parametrize("threads", [2, 3, 5])
def test_a_long_log_with_bad_and_comment_lines_in_parts(
    tmp_path: Path, in_parts: list[int], threads: int
) -> None:
    rows = []
    for i in range(3000):
        ts = f"17000{i:05d}.5"
        client = f"10.1.{i % 3}.{i % 250}"
        name = ["evil.com", f"a{i}.evil.com", "michigan.org", f"n{i}.example", "xevil.com"][i % 5]
        answers = ["-", "(empty)", f"203.0.113.{i % 256}", f"c{i}.cdn.net,198.51.100.{i % 9}"][
            i % 4
        ]
        if i % 401 == 9:
            ts = "yesterday"
        elif i % 401 == 10:
            client = "-"  # no originator
        elif i % 599 == 12:
            ts = "XXXXXXXXXX.XXXXXX"  # a canonified time: a good row without a time
        row = f"{ts} C{i} {client} {5000 + i} 10.0.0.53 53 udp {i} {name} NOERROR {answers}"
        if i % 401 == 7:
            row = f"{ts} C{i} {client} 5000 10.0.0.53 53 udp"  # too few fields
        elif i % 401 == 8:
            row += " extra"  # too many
        elif i % 997 == 11:
            row = "#close 2024"  # a comment line inside the log
        rows.append(row)
    log = zeek_log(tmp_path / "dns.log", "dns", rows)
    inds = [
        Indicator(T.DOMAIN, "evil.com", name="evil"),
        Indicator(T.DOMAIN, "higan.org", name="higan"),
        Indicator(T.CIDR, "203.0.113.128/25", name="net"),
        Indicator(T.IPV4, "198.51.100.3", name="ip"),
    ]
    issues, want_issues = IssueLog(), IssueLog()
    m = BatchMatcher(inds, threads=threads)
    got = m.scan([log], issues)
    m.close()
    want = streaming([log], inds, issues=want_issues)
    assert in_parts == [threads]
    assert got == want
    assert sum(a.count for a in got) > 1500
    assert [i.line for i in issues.issues] == [i.line for i in want_issues.issues]
    assert len(issues.issues) >= 28
    # Read whole, the same log gives the same issues, word for word.
    whole = IssueLog()
    m = BatchMatcher(inds, threads=1)
    assert m.scan([log], whole) == got
    m.close()
    assert [str(i) for i in whole.issues] == [str(i) for i in issues.issues]
    assert in_parts == [threads]


def test_gzip_and_huge_logs_are_read_whole(tmp_path: Path, in_parts: list[int]) -> None:
    import gzip
    import shutil

    plain = tmp_path / "dns.log"
    shutil.copy(ZEEK / "opt.basic" / "dns.log", plain)
    packed = tmp_path / "dns.log.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    inds = _drawn_indicators([plain])
    assert scan_batch([packed], inds) == streaming([packed], inds)
    assert in_parts == []  # a gzip stream cannot be cut
    scan_batch([plain], inds)
    assert in_parts == [2]


def test_huge_logs_keep_no_rows_and_are_read_whole(
    tmp_path: Path, in_parts: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch, "MAX_KEPT_BYTES", 0)
    log = tmp_path / "dns.log"
    log.write_bytes((ZEEK / "opt.basic" / "dns.log").read_bytes())
    inds = _drawn_indicators([log])
    assert scan_batch([log], inds) == streaming([log], inds)
    assert in_parts == []
