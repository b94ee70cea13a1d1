"""Loki / signature-base readers (hash, filename, c2) on the real first-500-line samples."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quet.errors import InputError
from quet.indicators.formats import FORMATS, detect
from quet.indicators.model import Indicator, IndicatorType, IssueLog

DATA = Path(__file__).parent / "data" / "loki"
HASHES = DATA / "hash-iocs.first500.txt"
NAMES = DATA / "filename-iocs.first500.txt"
C2 = DATA / "c2-iocs.first500.txt"


def read(fmt: str, path: Path, issues: IssueLog | None = None) -> list[Indicator]:
    return list(FORMATS[fmt].read(path, issues if issues is not None else IssueLog()))


def data_lines(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [x for x in lines if x.strip() and not x.startswith("#")]


@pytest.mark.parametrize(
    ("path", "fmt", "count"),
    [(HASHES, "loki-hash", 469), (NAMES, "loki-filename", 395), (C2, "loki-c2", 474)],
)
def test_samples(path: Path, fmt: str, count: int) -> None:
    detected = detect(path)
    assert detected is not None and detected.name == fmt
    issues = IssueLog()
    inds = read(fmt, path, issues)
    assert len(issues) == 0, [str(i) for i in issues.issues[:5]]
    assert len(inds) == count == len(data_lines(path))


def test_hash_record_and_types() -> None:
    inds = read("loki-hash", HASHES)
    assert inds[0] == Indicator(
        IndicatorType.SHA256,
        "ce583821191345274cd954b2db7da9742c239fe413fc17dcb97ffdd7b51cb072",
        name="Dark Caracal - MS Windows HtmlHelp Data",
        source=str(HASHES),
        confidence=75,
        line=20,
    )
    upper = [i for i in inds if i.name == "Mozilla.exe - https://goo.gl/i3prxY"]
    assert upper and upper[0].value == upper[0].value.lower()
    assert {i.type for i in inds} <= {IndicatorType.MD5, IndicatorType.SHA1, IndicatorType.SHA256}


def test_filename_record_and_fp() -> None:
    inds = read("loki-filename", NAMES)
    assert inds[0] == Indicator(
        IndicatorType.FILENAME,
        r"\\usbclass\.sys",
        name="Regin",
        source=str(NAMES),
        confidence=80,
        line=34,
    )
    with_fp = [i for i in inds if i.fp_regex]
    assert [i.value for i in with_fp] == [r"\\whatsapp\.exe", r"\\tmp\.exe"]
    assert with_fp[1].fp_regex == r"(?i)\\AppData\\Local\\Temp\\App[a-z0-9]{4}\.tmp\.exe"


def test_c2_record_and_types() -> None:
    inds = read("loki-c2", C2)
    assert inds[1] == Indicator(
        IndicatorType.IPV4,
        "58.64.143.244",
        name="FireEye Operation Snowman https://goo.gl/x1v7mT",
        source=str(C2),
        confidence=75,
        line=14,
    )
    assert {i.type for i in inds} <= {IndicatorType.IPV4, IndicatorType.DOMAIN, IndicatorType.CIDR}


def test_hash_score_variants_and_bad_lines(tmp_path: Path) -> None:
    md5 = "563d1512178cec1f6a73c98d565c98fa"
    p = tmp_path / "custom-hash-iocs.txt"
    p.write_text(
        "\n".join(
            [
                "# header",
                f"{md5};Cygwin nc.exe",
                f"{md5.upper()};90;nc.exe; with semicolon",
                f"{md5};250;too high, clamped",
                "nothex;desc",
                f"{md5}0;one char too long",
                f"{md5};",
            ]
        )
    )
    issues = IssueLog()
    inds = read("loki-hash", p, issues)
    assert [(i.confidence, i.name) for i in inds] == [
        (75, "Cygwin nc.exe"),
        (90, "nc.exe; with semicolon"),
        (100, "too high, clamped"),
        (75, ""),
    ]
    assert [(i.line, "hex digest" in i.message) for i in issues.issues] == [(5, True), (6, True)]


def test_filename_bad_lines(tmp_path: Path) -> None:
    p = tmp_path / "my-filename-iocs.txt"
    p.write_text(
        "\n".join(
            [
                "# Good ones",
                r"\\good\.exe;60",
                r"\\nodefault\.exe",
                r"(unclosed\.exe;80",
                r"\\x\.exe;eighty",
                r"\\y\.exe;80;[bad-fp",
                r"\\z\.exe;80;fp;extra",
                r"\\last\.exe;-5",
            ]
        )
    )
    issues = IssueLog()
    inds = read("loki-filename", p, issues)
    assert [(i.value, i.confidence, i.name) for i in inds] == [
        (r"\\good\.exe", 60, "Good ones"),
        (r"\\nodefault\.exe", 75, "Good ones"),
        (r"\\last\.exe", 0, "Good ones"),
    ]
    assert [i.line for i in issues.issues] == [4, 5, 6, 7]
    assert "regex does not compile" in issues.issues[0].message
    assert "fp-regex does not compile" in issues.issues[2].message


def test_c2_bad_lines(tmp_path: Path) -> None:
    p = tmp_path / "c2-iocs.txt"
    p.write_text("# LOKI C2\nevil.com\n10.0.0.0/8\nnot a domain\n" + "0" * 32 + "\n1.2.3.4:443\n")
    issues = IssueLog()
    inds = read("loki-c2", p, issues)
    assert [(i.type.value, i.value) for i in inds] == [
        ("domain", "evil.com"),
        ("cidr", "10.0.0.0/8"),
        ("ipv4", "1.2.3.4"),
    ]
    assert [i.line for i in issues.issues] == [4, 5]


def test_sniff_by_content(tmp_path: Path) -> None:
    h = tmp_path / "list.txt"
    h.write_bytes(HASHES.read_bytes())
    f = tmp_path / "regexes.txt"
    f.write_bytes(NAMES.read_bytes())
    c = tmp_path / "servers.txt"
    c.write_bytes(C2.read_bytes())
    plain = tmp_path / "domains.txt"  # a bare domain list without Loki's header: not claimed
    plain.write_text("# Maltrail-like list\nevil.com\nbad.org\n")
    prose = tmp_path / "notes.txt"
    prose.write_text("Just some notes; nothing to see\n")
    assert (x := detect(h)) is not None and x.name == "loki-hash"
    assert (x := detect(f)) is not None and x.name == "loki-filename"
    assert (x := detect(c)) is not None and x.name == "loki-c2"
    assert detect(plain) is None
    assert detect(prose) is None


@pytest.mark.parametrize("fmt", ["loki-hash", "loki-filename", "loki-c2"])
def test_missing_file_is_input_error(tmp_path: Path, fmt: str) -> None:
    with pytest.raises(InputError):
        read(fmt, tmp_path / "missing.txt")


_LINE = st.one_of(
    st.text(max_size=60),
    st.from_regex(re.compile(r"[0-9a-fA-F]{32,64};[0-9]{0,3};?[ -~]{0,20}"), fullmatch=True),
    st.from_regex(
        re.compile(r"[\\()\[\]a-z.*?|+{}0-9]{1,20};[0-9a-z-]{0,4}(;[ -~]{0,10})?"), fullmatch=True
    ),
    st.from_regex(re.compile(r"[a-z0-9.:/\[\]-]{1,30}"), fullmatch=True),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(_LINE, max_size=12), st.sampled_from(["loki-hash", "loki-filename", "loki-c2"]))
def test_fuzz_never_raises(tmp_path: Path, lines: list[str], fmt: str) -> None:
    p = tmp_path / "fuzz.txt"
    p.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
    issues = IssueLog()
    inds = read(fmt, p, issues)
    for ind in inds:
        assert 0 <= ind.confidence <= 100
        assert ind.line >= 1
        assert ind.source == str(p)
