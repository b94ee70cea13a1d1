"""The log-source registry: every module registered, documented, with a real sample detected as
itself; and the shared plumbing (open_text, head, detect, read_path, normalising helpers)."""

from __future__ import annotations

import gzip
import importlib
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest

from quet.errors import InputError
from quet.indicators.model import IssueLog
from quet.netwatch import sources
from quet.netwatch.sources import (
    SOURCES,
    Source,
    answer_values,
    detect,
    head,
    make_url,
    norm_host,
    norm_ip,
    norm_name,
    norm_proto,
    open_text,
    parse_ts,
    read_path,
    register,
)

SRC_DIR = Path(sources.__file__).parent
DATA = Path(__file__).parent / "data" / "netwatch"
DOCS = Path(__file__).parents[1] / "docs"
MODULES = sorted(p.stem for p in SRC_DIR.glob("*.py") if not p.stem.startswith("_"))


def module_of(src: Source) -> str:
    read = src.read.func if isinstance(src.read, partial) else src.read
    return read.__module__.rsplit(".", 1)[-1]


def by_module() -> dict[str, list[Source]]:
    out: dict[str, list[Source]] = {}
    for src in SOURCES.values():
        out.setdefault(module_of(src), []).append(src)
    return out


def test_zeek_and_suricata_sources_are_registered() -> None:
    assert {
        "zeek-conn",
        "zeek-dns",
        "zeek-http",
        "zeek-ssl",
        "zeek-files",
        "zeek-notice",
        "zeek-intel",
        "zeek-other",
        "suricata-eve",
    } <= set(SOURCES)


@pytest.mark.parametrize("module", MODULES)
def test_every_module_registers_a_source(module: str) -> None:
    importlib.import_module(f"quet.netwatch.sources.{module}")
    assert by_module().get(module), f"sources/{module}.py is not imported by the registry"


@pytest.mark.parametrize("module", MODULES)
def test_every_source_has_a_real_sample_detected_as_itself(module: str) -> None:
    folder = DATA / module
    assert folder.is_dir(), f"no samples in tests/data/netwatch/{module}/"
    files = [p for p in sorted(folder.rglob("*")) if p.is_file()]
    detected = {getattr(detect(p), "name", None) for p in files}
    for src in by_module()[module]:
        assert src.name in detected, f"no sample under {folder} is detected as {src.name}"


def test_every_source_is_documented() -> None:
    text = "".join(
        p.read_text(encoding="utf-8") for p in DOCS.glob("netwatch-sources*.md") if p.is_file()
    )
    missing = [name for name in SOURCES if f"`{name}`" not in text]
    assert not missing, f"not in docs/netwatch-sources*.md: {missing}"


def test_register_rejects_a_duplicate_name() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register(SOURCES["zeek-conn"])


# --- plumbing -----------------------------------------------------------------------------------


def test_open_text_numbers_lines_and_undoes_gzip(tmp_path: Path) -> None:
    body = "\ufeffeins\r\nzwei \xff\n\ndrei".encode("utf-8").replace(b"\xc3\xbf", b"\xff")
    plain = tmp_path / "a.log"
    plain.write_bytes(body)
    zipped = tmp_path / "a.log.1"  # gzip known by its magic bytes, not its name
    zipped.write_bytes(gzip.compress(body))
    expected = [(1, "eins"), (2, "zwei \ufffd"), (3, ""), (4, "drei")]
    assert list(open_text(plain)) == expected
    assert list(open_text(zipped)) == expected
    assert head(zipped, 2) == ["eins", "zwei \ufffd"]
    assert head(zipped, 0) == []


def test_truncated_gzip_ends_the_file_with_an_issue(tmp_path: Path) -> None:
    path = tmp_path / "conn.log.gz"
    data = "".join(f"line {i}\n" for i in range(5000)).encode()
    path.write_bytes(gzip.compress(data)[:-40])
    issues = IssueLog()
    lines = list(open_text(path, issues))
    assert 0 < len(lines) < 5000 and issues.count == 1
    assert "corrupt gzip" in issues.issues[0].message
    with pytest.raises(InputError, match="corrupt gzip"):
        list(open_text(path))
    assert len(head(path, 10)) == 10


def test_missing_file_and_unknown_source_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        list(open_text(tmp_path / "nope.log"))
    with pytest.raises(InputError, match="no such file or folder"):
        list(read_path(tmp_path / "nope", IssueLog()))
    with pytest.raises(InputError, match="unknown log source 'nope'"):
        list(read_path(tmp_path, IssueLog(), "nope"))
    with pytest.raises(InputError):
        head(tmp_path / "nope.log")
    assert detect(tmp_path / "nope.log") is None


def test_read_path_walks_a_folder(tmp_path: Path) -> None:
    zeek = DATA / "zeek" / "btest-baseline" / "opt.basic" / "dns.log"
    eve = DATA / "suricata" / "tenzir_rrdata-eve.json"
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "dns.log").write_bytes(zeek.read_bytes())
    (tmp_path / "eve.json").write_bytes(eve.read_bytes())
    (tmp_path / ".hidden.json").write_bytes(eve.read_bytes())
    (tmp_path / "random.txt").write_text("hello\n")
    issues = IssueLog()
    events = list(read_path(tmp_path, issues))
    assert len(events) == 34 + 2
    assert {e.source for e in events} == {str(tmp_path / "eve.json"), str(tmp_path / "sub/dns.log")}
    assert [(i.path, i.line) for i in issues.issues] == [(str(tmp_path / "random.txt"), 0)]
    forced = list(read_path(tmp_path / "eve.json", IssueLog(), SOURCES["suricata-eve"]))
    assert len(forced) == 2


def test_normalising_helpers() -> None:
    assert norm_ip("2001:0DB8:0000::0001") == "2001:db8::1"
    assert norm_ip("[::1]") == "::1" and norm_ip("fe80::1%eth0") == "fe80::1"
    assert norm_ip("-") == norm_ip(None) == norm_ip("(empty)") == ""
    with pytest.raises(ValueError, match="not an IP"):
        norm_ip("example.com")
    assert norm_name("WWW.Example.COM.") == "www.example.com" and norm_name("-") == ""
    assert (
        norm_host("Example.com:8080") == "example.com"
        and norm_host("[2001:db8::1]:443") == "2001:db8::1"
    )
    values = ["A.example.", "10.0.0.1", "v=spf1 -all", "a.example", "localhost", 5]
    assert answer_values(values) == ["a.example", "10.0.0.1"]
    assert norm_proto("TCP") == "tcp" and norm_proto("017") == "udp" and norm_proto("-") == ""


def test_make_url() -> None:
    assert make_url("Example.com", "/a?b=1") == "http://example.com/a?b=1"
    assert make_url("example.com:8080", "/x") == "http://example.com:8080/x"
    assert make_url("example.com", "/x", 8080) == "http://example.com:8080/x"
    assert make_url("2001:db8::1", "/x") == "http://[2001:db8::1]/x"
    assert make_url("proxy", "http://other.example/x") == "http://other.example/x"
    assert make_url("example.com", "*") == make_url("", "/x") == ""


def test_parse_ts() -> None:
    when = datetime(2018, 3, 24, 17, 15, 20, 629574, tzinfo=UTC)
    assert parse_ts("1521911720.629574") == when == parse_ts(1521911720.629574)
    assert parse_ts("2018-03-24T17:15:20.629574Z") == when
    assert parse_ts("2018-03-24T19:15:20.629574+0200") == when
    assert parse_ts("2018-03-24T17:15:20.629574") == when  # naive: UTC
    assert (
        parse_ts("XXXXXXXXXX.XXXXXX") is None and parse_ts("-") is None and parse_ts(None) is None
    )
    for bad in ("soon", "1e300", float("inf")):
        with pytest.raises(ValueError, match="not a time"):
            parse_ts(bad)
