"""ClamAV .hdb/.hsb/.fp/.sfp readers and the .hsb writer, on the real unit-test databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quet.errors import InputError
from quet.indicators.formats import FORMATS, detect
from quet.indicators.formats.clamav import parse_line, write_hdb
from quet.indicators.model import Indicator, IndicatorType, IssueLog, make

DATA = Path(__file__).parent / "data" / "clamav"


def read(name: str, path: Path, issues: IssueLog | None = None) -> list[Indicator]:
    return list(FORMATS[name].read(path, issues if issues is not None else IssueLog()))


@pytest.mark.parametrize(
    ("file", "fmt", "count", "types"),
    [
        ("clamav.hdb", "clamav-hdb", 1, {"sha256"}),
        ("alz.hdb", "clamav-hdb", 13, {"sha1"}),
        ("zstd.hdb", "clamav-hdb", 2, {"sha1"}),
        ("logo.hsb", "clamav-hsb", 1, {"sha256"}),
        ("1.1.hsb", "clamav-hsb", 1, {"sha256"}),
        ("allow.fp", "clamav-fp", 1, {"md5"}),
        ("allow.sfp", "clamav-sfp", 2, {"sha1", "sha256"}),
    ],
)
def test_samples(file: str, fmt: str, count: int, types: set[str]) -> None:
    path = DATA / file
    detected = detect(path)
    assert detected is not None and detected.name == fmt
    issues = IssueLog()
    inds = read(fmt, path, issues)
    assert len(issues) == 0
    assert len(inds) == count
    assert {i.type.value for i in inds} == types
    allow = fmt in ("clamav-fp", "clamav-sfp")
    assert all(("allow" in i.tags) == allow for i in inds)


def test_one_full_record() -> None:
    path = DATA / "alz.hdb"
    inds = read("clamav-hdb", path)
    assert inds[-1] == Indicator(
        IndicatorType.SHA1,
        "edf6cd48d7b44a6cc0a96a6139cfe020865f8c4c",
        name="ALZ_TEST_FILE_EXECUTABLE",
        source=str(path),
        confidence=100,
        size=16712,
        line=13,
    )


def test_star_size_and_flevels(tmp_path: Path) -> None:
    p = tmp_path / "x.hsb"
    sha = "f083e9c704165003f8c065964e4ccb47da48bbad8a80521d571cbf0f1d4762c6"
    p.write_text(f"# comment\n\n{sha}:*:Any.Size:73\n{sha.upper()}:10:Bound:73:255\r\n")
    issues = IssueLog()
    inds = read("clamav-hsb", p, issues)
    assert len(issues) == 0
    assert [(i.value, i.size, i.name, i.line) for i in inds] == [
        (sha, None, "Any.Size", 3),
        (sha, 10, "Bound", 4),
    ]


def test_bad_lines_are_counted_and_the_rest_loads(tmp_path: Path) -> None:
    md5 = "aa15bcf478d165efd2065190eb473bcb"
    lines = [
        f"{md5}:544:Good.One",
        "not-a-hash:544:Bad.Hash",
        f"{md5}:5x:Bad.Size",
        f"{md5}:544:",
        f"{md5}:544",
        f"{md5[:-1]}:544:Short",
        f"{md5}:1:2:3:4:5:too.many",
        f"{md5}:544:Bad.Level:x",
        f"{md5}:12:Good.Two",
    ]
    p = tmp_path / "bad.hdb"
    p.write_text("\n".join(lines) + "\n")
    issues = IssueLog()
    inds = read("clamav-hdb", p, issues)
    assert [i.name for i in inds] == ["Good.One", "Good.Two"]
    assert len(issues) == 7
    assert [i.line for i in issues.issues] == [2, 3, 4, 5, 6, 7, 8]
    assert all(i.path == str(p) for i in issues.issues)
    assert "size" in issues.issues[1].message


def test_parse_line_errors() -> None:
    with pytest.raises(ValueError, match="hex digest"):
        parse_line("xyz:1:N")
    assert parse_line("AA15BCF478D165EFD2065190EB473BCB:0:N") == (
        IndicatorType.MD5,
        "aa15bcf478d165efd2065190eb473bcb",
        0,
        "N",
    )


def test_sniff_without_extension(tmp_path: Path) -> None:
    md5 = tmp_path / "sigs.db"
    md5.write_text("# header\naa15bcf478d165efd2065190eb473bcb:544:Test\n")
    sha = tmp_path / "sigs2.db"
    sha.write_bytes((DATA / "logo.hsb").read_bytes())
    assert (f := detect(md5)) is not None and f.name == "clamav-hdb"
    assert (f := detect(sha)) is not None and f.name == "clamav-hsb"
    other = tmp_path / "notes.db"
    other.write_text("hello: world\n")
    assert detect(other) is None


def test_write_hdb_round_trip(tmp_path: Path) -> None:
    inds = [
        make(
            "sha256",
            "71e7b604d18aefd839e51a39c88df8383bb4c071dc31f87f00a2b5df580d4495",
            size=544,
            name="ClamAV Test: File",
        ),
        make("md5", "aa15bcf478d165efd2065190eb473bcb", name="clam.exe"),
        make("domain", "evil.com"),  # not a hash: left out
    ]
    p = tmp_path / "out.hsb"
    assert write_hdb(inds, p) == 2
    issues = IssueLog()
    back = read("clamav-hsb", p, issues)
    assert len(issues) == 0
    assert [(i.type, i.value, i.size, i.name) for i in back] == [
        (IndicatorType.SHA256, inds[0].value, 544, "ClamAV_Test_File"),
        (IndicatorType.MD5, inds[1].value, None, "clam.exe"),
    ]


def test_missing_file_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        read("clamav-hdb", tmp_path / "nope.hdb")


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.text(max_size=400), st.sampled_from(["clamav-hdb", "clamav-hsb", "clamav-fp", "clamav-sfp"])
)
def test_fuzz_never_raises(tmp_path: Path, text: str, fmt: str) -> None:
    p = tmp_path / "fuzz.hdb"
    p.write_text(text, encoding="utf-8", errors="surrogatepass")
    issues = IssueLog()
    inds = read(fmt, p, issues)
    for ind in inds:
        assert ind.type in (IndicatorType.MD5, IndicatorType.SHA1, IndicatorType.SHA256)
        assert ind.size is None or ind.size >= 0
        assert ind.name
    data_lines = [x for x in text.splitlines() if x.strip() and not x.strip().startswith("#")]
    assert len(inds) + len(issues) <= len(data_lines)
