"""The indicator CSV reader and writer."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quet.errors import InputError
from quet.indicators.formats import detect
from quet.indicators.formats.csvfile import read_csv, write_csv
from quet.indicators.model import Indicator, IndicatorType, IssueLog, make

SAMPLE = Path(__file__).parent / "data" / "csv" / "indicators.csv"


def read(path: Path, issues: IssueLog | None = None) -> list[Indicator]:
    return list(read_csv(path, issues if issues is not None else IssueLog()))


def test_sample() -> None:
    assert (f := detect(SAMPLE)) is not None and f.name == "csv"
    issues = IssueLog()
    inds = read(SAMPLE, issues)
    assert len(issues) == 0
    assert [i.type.value for i in inds] == [
        "sha256", "md5", "sha256", "domain", "ipv4", "cidr", "domain", "url", "filename",
    ]  # fmt: skip
    assert inds[0] == Indicator(
        IndicatorType.SHA256,
        "71e7b604d18aefd839e51a39c88df8383bb4c071dc31f87f00a2b5df580d4495",
        name="ClamAV-Test-File",
        family="EICAR-like",
        source="clamav/clamav.hdb",
        confidence=100,
        tags=("test", "clamav"),
        size=544,
        line=2,
    )
    assert inds[1].source == str(SAMPLE)  # empty source cell: the file
    assert inds[6].value == "me.scieron.com"
    assert inds[7].value == "http://evil.example.com/gate.php?id=1"
    assert inds[7].name == "Gate, with comma"
    assert inds[8].value == r"\\svcsstat\.exe"


def test_indicator_column_and_bad_rows(tmp_path: Path) -> None:
    p = tmp_path / "feed.csv"
    p.write_text(
        "Indicator,Type,Confidence,Size\n"
        "evil.com,,70,\n"  # 2
        "1.2.3.4,ipv4,,\n"  # 3
        "bad value here,,,\n"  # 4: not classifiable
        "evil.org,weird,,\n"  # 5: unknown type
        "evil.net,,high,\n"  # 6: bad confidence
        "0123456789abcdef0123456789abcdef,,,12kb\n"  # 7: bad size
        "x.com,domain,1,2,3\n"  # 8: too many cells
        ",,,\n"  # blank row
        "# a comment row\n"
        "0123456789abcdef0123456789abcdef,md5,,*\n"  # 11
        "2001:db8::1,ipv4,,\n"  # 12: the type follows the value
    )
    issues = IssueLog()
    inds = read(p, issues)
    assert [(i.type.value, i.value, i.confidence, i.line) for i in inds] == [
        ("domain", "evil.com", 70, 2),
        ("ipv4", "1.2.3.4", 50, 3),
        ("md5", "0123456789abcdef0123456789abcdef", 50, 11),
        ("ipv6", "2001:db8::1", 50, 12),
    ]
    assert [i.line for i in issues.issues] == [4, 5, 6, 7, 8]
    assert "unknown type" in issues.issues[1].message


def test_no_value_column(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    p.write_text("a,b\n1,2\n")
    issues = IssueLog()
    assert read(p, issues) == []
    assert [(i.line, "value" in i.message) for i in issues.issues] == [(1, True)]
    assert (f := detect(p)) is not None and f.name == "csv"  # by extension


def test_sniff_without_extension(tmp_path: Path) -> None:
    p = tmp_path / "export.dat"
    p.write_text("type,value,name\ndomain,evil.com,x\n")
    assert (f := detect(p)) is not None and f.name == "csv"


def test_round_trip(tmp_path: Path) -> None:
    inds = read(SAMPLE)
    inds.append(make("filename", r"\\tmp\.exe", fp_regex=r"Temp\\App", campaign="2025-Q1"))
    out = tmp_path / "out.csv"
    assert write_csv(inds, out) == len(inds)
    issues = IssueLog()
    back = read(out, issues)
    assert len(issues) == 0
    strip = [(i.type, i.value, i.name, i.family, i.confidence, i.tags, i.size) for i in inds]
    assert [
        (i.type, i.value, i.name, i.family, i.confidence, i.tags, i.size) for i in back
    ] == strip
    assert back[-1].fp_regex == r"Temp\\App" and back[-1].campaign == "2025-Q1"


def test_missing_file() -> None:
    with pytest.raises(InputError):
        read(Path("/nonexistent/quet/x.csv"))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(max_size=300), st.booleans())
def test_fuzz_never_raises(tmp_path: Path, body: str, with_header: bool) -> None:
    p = tmp_path / "fuzz.csv"
    text = ("value,type,confidence,size,tags\n" if with_header else "") + body
    p.write_text(text, encoding="utf-8", errors="surrogatepass")
    issues = IssueLog()
    for ind in read(p, issues):
        assert ind.value
        assert 0 <= ind.confidence <= 100
