"""Zeek intel files: the 8 real Intel-framework inputs from Zeek's own tests, bad lines, the
writer and a round trip."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quet.errors import InputError
from quet.indicators.filenames import compile_ioc
from quet.indicators.formats import FORMATS, detect, read_path, write_path
from quet.indicators.formats.zeek_intel import filename_regex, read_intel, write_intel
from quet.indicators.model import Indicator, IndicatorType, IssueLog, make

DATA = Path(__file__).parent / "data" / "zeek" / "intel"
SUBNET = DATA / "base.frameworks.intel.match-subnet__intel.dat"
FILENAMES = DATA / "policy.frameworks.intel.seen.filename-in-http-post__intel.dat"
WHITELIST = DATA / "policy.frameworks.intel.whitelisting__whitelist.dat"


def read(
    path: Path, issues: IssueLog | None = None, notes: Counter[str] | None = None
) -> list[Indicator]:
    return list(read_intel(path, issues if issues is not None else IssueLog(), notes))


@pytest.mark.parametrize(
    ("name", "count", "skipped"),
    [
        (
            "base.frameworks.intel.cluster-indicator-inserted-new-min-store",
            4,
            {"Intel::SOFTWARE": 3},
        ),
        ("base.frameworks.intel.input-and-match", 2, {"Intel::EMAIL": 1}),
        ("base.frameworks.intel.match-subnet", 6, {}),
        ("policy.frameworks.intel.seen.certs", 2, {"Intel::CERT_HASH": 1}),
        ("policy.frameworks.intel.seen.filename-in-http-post", 2, {}),
        ("policy.frameworks.intel.seen.smtp", 0, {"Intel::EMAIL": 6}),
        ("policy.frameworks.intel.whitelisting", 2, {}),
    ],
)
def test_samples(name: str, count: int, skipped: dict[str, int]) -> None:
    path = DATA / f"{name}__intel.dat"
    fmt = detect(path)
    assert fmt is not None and fmt.name == "zeek-intel"
    issues = IssueLog()
    notes: Counter[str] = Counter()
    inds = read(path, issues, notes)
    assert len(issues) == 0, [str(i) for i in issues.issues]
    assert len(inds) == count
    assert dict(notes) == skipped
    data = [x for x in path.read_text().splitlines() if x and not x.startswith("#")]
    assert len(inds) + sum(skipped.values()) == len(data)


def test_full_record_and_types() -> None:
    inds = read(SUBNET)
    assert inds[0] == Indicator(
        IndicatorType.IPV4,
        "192.168.1.1",
        name="this host is just plain baaad",
        source="source1",
        confidence=75,
        tags=("ref:http://some-data-distributor.com/1",),
        line=2,
    )
    assert [(i.type.value, i.value) for i in inds[1:3]] == [
        ("cidr", "192.168.2.0/24"),
        ("ipv4", "192.168.142.1"),
    ]


def test_file_names_become_anchored_regexes() -> None:
    inds = read(FILENAMES)
    assert [i.type for i in inds] == [IndicatorType.FILENAME] * 2
    rx = compile_ioc(inds[0].value)
    assert rx.search(r"C:\Users\an\Downloads\PUTTY.EXE")
    assert rx.search("/tmp/putty.exe")
    assert rx.search("putty.exe")
    assert not rx.search("/tmp/notputty.exe")
    assert not rx.search("/tmp/putty.exe.txt")


def test_whitelist_field_tags_allow() -> None:
    [ind] = read(WHITELIST)
    assert (ind.type, ind.value, ind.source) == (
        IndicatorType.DOMAIN,
        "meta.wikimedia.org",
        "source2",
    )
    assert "allow" in ind.tags


def test_bad_and_odd_lines(tmp_path: Path) -> None:
    p = tmp_path / "feed.intel"
    p.write_text(
        "#separator \\x09\n"
        "#set_separator\t,\n"
        "#fields\tindicator\tindicator_type\tmeta.source\tmeta.desc\tmeta.url\tmeta.cif_confidence\n"
        "EVIL.Example.COM.\tIntel::DOMAIN\tfeed\t-\t(empty)\t8\n"
        "example.org/path?q=1\tIntel::URL\t-\tno scheme\t-\t95\n"
        "44D88612FEA8A8F36DE82E1278ABB02F\tIntel::FILE_HASH\tfeed\teicar\t-\t-\n"
        "2001:DB8::1\tIntel::ADDR\tfeed\tv6\t-\t-\n"
        "not-an-ip\tIntel::ADDR\tfeed\tbad\t-\t-\n"
        "abc\tIntel::FILE_HASH\tfeed\tbad\t-\t-\n"
        "x\tIntel::WHATEVER\tfeed\tbad\t-\t-\n"
        "-\tIntel::ADDR\tfeed\tempty\t-\t-\n"
        "bob\tIntel::USER_NAME\tfeed\tskipped\t-\t-\n"
        "\n"
    )
    issues = IssueLog()
    notes: Counter[str] = Counter()
    inds = read(p, issues, notes)
    assert [(i.type.value, i.value, i.name, i.confidence) for i in inds] == [
        ("domain", "evil.example.com", "", 80),
        ("url", "http://example.org/path?q=1", "no scheme", 95),
        ("md5", "44d88612fea8a8f36de82e1278abb02f", "eicar", 75),
        ("ipv6", "2001:db8::1", "v6", 75),
    ]
    assert inds[1].source == str(p)  # meta.source '-' falls back to the file
    assert [i.line for i in issues.issues] == [8, 9, 10, 11]
    assert "unknown indicator_type" in issues.issues[2].message
    assert notes == Counter({"Intel::USER_NAME": 1})


def test_other_separator_and_missing_header(tmp_path: Path) -> None:
    p = tmp_path / "comma.intel"
    p.write_text("#separator \\x2c\n#fields,indicator,indicator_type\n1.2.3.4,Intel::ADDR\n")
    assert [i.value for i in read(p)] == ["1.2.3.4"]
    q = tmp_path / "noheader.intel"
    q.write_text("1.2.3.4\tIntel::ADDR\n5.6.7.8\tIntel::ADDR\n")
    issues = IssueLog()
    assert read(q, issues) == []
    assert [(i.line, "#fields" in i.message) for i in issues.issues] == [(1, True)]


def test_missing_file_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        read(tmp_path / "missing.intel")


def test_write_then_read_back(tmp_path: Path) -> None:
    inds = [
        make("domain", "bücher.example", name="Phish kit", family="Evilginx", source="csirt"),
        make("ipv4", "192.0.2.1", tags=("ref:https://example.org/report",)),
        make("ipv6", "2001:db8::2"),
        make("cidr", "198.51.100.0/24", name="tab\tin\nname"),
        make("url", "http://evil.example.com/gate.php?id=1"),  # Zeek URLs have no scheme
        make("sha1", "3395856ce81f2b7382dee72602f798b642f14140"),
        Indicator(IndicatorType.FILENAME, filename_regex("invoice (1).exe")),
        Indicator(IndicatorType.FILENAME, r"\\temp\\[a-z]{8}\.exe"),  # a real regex: skipped
        Indicator(IndicatorType.YARA, "rule x { condition: true }"),  # skipped
    ]
    out = tmp_path / "quet.intel"
    assert write_path(inds, out, "zeek-intel") == 7
    lines = out.read_text().splitlines()
    assert (
        lines[0]
        == "#fields\tindicator\tindicator_type\tmeta.source\tmeta.desc\tmeta.url\tmeta.do_notice"
    )
    assert all(len(x.split("\t")) == 6 for x in lines[1:])
    assert "xn--bcher-kva.example\tIntel::DOMAIN\tcsirt\tPhish kit (Evilginx)\t-\tF" in lines
    assert "evil.example.com/gate.php?id=1\tIntel::URL\tquet\t-\t-\tF" in lines
    assert "198.51.100.0/24\tIntel::SUBNET\tquet\ttab in name\t-\tF" in lines
    assert "invoice (1).exe\tIntel::FILE_NAME\tquet\t-\t-\tF" in lines
    back = {(i.type, i.value) for i in read_path(out, IssueLog())}
    assert back == {(i.type, i.value) for i in inds[:7]}
    [ref] = [i for i in read(out) if i.value == "192.0.2.1"]
    assert ref.tags == ("ref:https://example.org/report",)
    again = tmp_path / "again.intel"
    write_intel(reversed(inds), again)
    assert again.read_bytes() == out.read_bytes()  # deterministic, order-independent


_LINE = st.one_of(
    st.text(max_size=60),
    st.from_regex(re.compile(r"#(fields|separator|types)[ \t][ -~\t]{0,40}"), fullmatch=True),
    st.builds(
        "\t".join,
        st.lists(
            st.one_of(
                st.sampled_from(["Intel::ADDR", "Intel::DOMAIN", "Intel::URL", "Intel::SUBNET"]),
                st.sampled_from(["Intel::FILE_HASH", "Intel::FILE_NAME", "Intel::EMAIL", "-"]),
                st.from_regex(re.compile(r"[a-z0-9.:/\[\]()-]{0,30}"), fullmatch=True),
            ),
            max_size=6,
        ),
    ),
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(_LINE, max_size=12), st.booleans())
def test_fuzz_never_raises(tmp_path: Path, lines: list[str], header: bool) -> None:
    p = tmp_path / "fuzz.intel"
    head = ["#fields\tindicator\tindicator_type\tmeta.source\tmeta.desc"] if header else []
    p.write_text("\n".join(head + lines), encoding="utf-8", errors="surrogatepass")
    issues = IssueLog()
    reader = FORMATS["zeek-intel"].read
    assert reader is not None
    for ind in reader(p, issues):
        assert ind.line >= 1 and ind.value
    assert all(i.line >= 1 for i in issues.issues)
