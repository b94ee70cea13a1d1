"""Maltrail static trails: every real sample file (exact counts, no errors), one full record,
trail parsing rules, detection next to Loki's look-alike lists, and fuzzing."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quet.errors import InputError
from quet.indicators.formats import FORMATS, detect
from quet.indicators.formats.maltrail import NOTE_PATH, NOTE_TLD, parse_trail, read_trails
from quet.indicators.model import Indicator, IndicatorType, IssueLog

DATA = Path(__file__).parent / "data" / "maltrail"
LOKI = Path(__file__).parent / "data" / "loki"

# file: (indicators, URL paths skipped, TLD trails skipped)
COUNTS = {
    "malware/agenttesla.txt": (1703, 282, 0),
    "malware/android_sharkbot.txt": (188, 0, 0),
    "malware/apt_33.txt": (114, 1, 0),
    "malware/aurora.txt": (885, 6, 0),
    "malware/darkgate.txt": (1055, 35, 0),
    "malware/dridex.txt": (2307, 93, 0),
    "malware/gh0stbins.txt": (15, 0, 0),
    "malware/gh0strat.txt": (2457, 8, 0),
    "malware/mirai_stealer.txt": (5, 0, 0),
    "malware/plugx.txt": (1662, 5, 0),
    "malware/qrat.txt": (33, 0, 0),
    "malware/raccoon.txt": (3498, 143, 0),
    "malware/trickbot.txt": (2873, 303, 0),
    "malware/zeus.txt": (1591, 82, 0),
    "suspicious/bad_wpad.txt": (74, 0, 0),
    "suspicious/crypto_mining.txt": (1185, 0, 0),
    "suspicious/dynamic_domain.txt": (2496, 0, 0),
    "suspicious/ipinfo.txt": (306, 0, 0),
    "suspicious/onion.txt": (55, 0, 1),
    "suspicious/port_proxy.txt": (21, 1, 0),
}


def test_every_sample_is_listed() -> None:
    assert {str(p.relative_to(DATA)) for p in DATA.rglob("*.txt")} == set(COUNTS)


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_samples(name: str) -> None:
    path = DATA / name
    fmt = detect(path)
    assert fmt is not None and fmt.name == "maltrail"
    issues = IssueLog()
    notes: Counter[str] = Counter()
    inds = list(read_trails(path, issues, notes))
    assert len(issues) == 0, [str(i) for i in issues.issues[:5]]
    count, paths, tlds = COUNTS[name]
    assert (len(inds), notes[NOTE_PATH], notes[NOTE_TLD]) == (count, paths, tlds)
    data = [x for x in path.read_text().splitlines() if x.strip() and not x.startswith("#")]
    assert count + paths + tlds == len(data)
    assert {i.family for i in inds} == {path.stem}


def test_full_record() -> None:
    path = DATA / "malware" / "darkgate.txt"
    inds = list(read_trails(path, IssueLog()))
    refs = (
        "ref:https://twitter.com/malwrhunterteam/status/1250477548414304258",
        "ref:https://app.any.run/tasks/6292fe0e-1d52-4363-ad99-2bc17abcf4ac/",
        "ref:https://www.virustotal.com/gui/file/35b3e9058bd8d6c6c23e01f71824e863903ba45eda62a86e528fbc41d5fd07d7/detection",
        "ref:https://www.virustotal.com/gui/file/6ba3ade54002646ddfdde55bfb1713cbc3f10709da264bb297405f91dd67b003/detection",
        "ref:https://www.virustotal.com/gui/file/30ced29862d6267e7710952d3b0d49884ae4bce99c9a3b93af0ea5f158b66569/detection",
        "ref:https://www.virustotal.com/gui/file/1d4623bb03f45717ca386a76d127b246ecffb2d7e07a2a9d776921982816d61b/detection",
    )
    assert inds[7] == Indicator(
        IndicatorType.IPV4,
        "185.214.10.220",
        name="darkgate (malware)",
        family="darkgate",
        source=str(path),
        confidence=80,
        tags=("malware", *refs, "port:443"),
        line=23,
    )
    # `http://185.214.10.220` the line before is the address itself (Maltrail drops schemes).
    assert (inds[6].type, inds[6].value, inds[6].line) == (IndicatorType.IPV4, "185.214.10.220", 22)
    # The first block has only the reference above it.
    assert inds[0].tags == ("malware", "ref:https://blog.ensilo.com/darkgate-malware")


def test_suspicious_confidence_and_inline_comment() -> None:
    path = DATA / "suspicious" / "ipinfo.txt"
    inds = list(read_trails(path, IssueLog()))
    [cname] = [i for i in inds if i.line == 170]
    assert (cname.value, cname.confidence, cname.name) == (
        "nagano-19599.herokussl.com",
        50,
        "ipinfo (suspicious)",
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("evil.example.com", (IndicatorType.DOMAIN, "evil.example.com", "")),
        ("EVIL.example.com.", (IndicatorType.DOMAIN, "evil.example.com", "")),
        (".evil.example.com", (IndicatorType.DOMAIN, "evil.example.com", "")),
        ("1.2.3.4:8080", (IndicatorType.IPV4, "1.2.3.4", "8080")),
        ("evil.example.com:443", (IndicatorType.DOMAIN, "evil.example.com", "443")),
        ("http://1.2.3.4", (IndicatorType.IPV4, "1.2.3.4", "")),
        ("ftp://ftp.example.com/", (IndicatorType.DOMAIN, "ftp.example.com", "")),
        ("https://a.example/x/y.php", (IndicatorType.URL, "https://a.example/x/y.php", "")),
        ("a.example/gate.php", (IndicatorType.URL, "http://a.example/gate.php", "")),
        ("1.2.3.4:81/b.sh", (IndicatorType.URL, "http://1.2.3.4:81/b.sh", "")),
        ("10.0.0.0/8", (IndicatorType.CIDR, "10.0.0.0/8", "")),
        ("2001:db8::1", (IndicatorType.IPV6, "2001:db8::1", "")),
        ("bücher.example  # a note", (IndicatorType.DOMAIN, "xn--bcher-kva.example", "")),
        ("/AuroraLoader/check.txt", NOTE_PATH),
        (".onion", NOTE_TLD),
    ],
)
def test_parse_trail(line: str, expected: object) -> None:
    assert parse_trail(line) == expected


@pytest.mark.parametrize("line", ["not a domain", "http://", "a b c", "-bad-.example", "1.2.3.4:x"])
def test_parse_trail_rejects(line: str) -> None:
    with pytest.raises(InputError):
        parse_trail(line)


def test_bad_lines_and_references(tmp_path: Path) -> None:
    p = tmp_path / "custom" / "mybot.txt"
    p.parent.mkdir()
    p.write_text(
        "# Reference: https://a.example/1\n"
        "one.example\n"
        "not valid\n"
        "# Reference: https://a.example/2\n"
        "# Reference: https://a.example/3\n"
        "/only/a/path\n"
        "two.example\n"
    )
    issues = IssueLog()
    notes: Counter[str] = Counter()
    inds = list(read_trails(p, issues, notes))
    assert [(i.value, i.tags, i.name, i.confidence) for i in inds] == [
        ("one.example", ("ref:https://a.example/1",), "mybot", 60),
        ("two.example", ("ref:https://a.example/2", "ref:https://a.example/3"), "mybot", 60),
    ]
    assert [i.line for i in issues.issues] == [3]
    assert notes == Counter({NOTE_PATH: 1})


def test_detection_next_to_loki(tmp_path: Path) -> None:
    # Each Loki sample stays Loki's, also under a neutral name.
    for name, fmt in (
        ("c2-iocs.first500.txt", "loki-c2"),
        ("hash-iocs.first500.txt", "loki-hash"),
        ("filename-iocs.first500.txt", "loki-filename"),
    ):
        assert (f := detect(LOKI / name)) is not None and f.name == fmt
        neutral = tmp_path / f"neutral-{fmt}.txt"
        neutral.write_bytes((LOKI / name).read_bytes())
        assert (f := detect(neutral)) is not None and f.name == fmt
    # A Maltrail file named like Loki's C2 list is not claimed by Maltrail.
    c2name = tmp_path / "c2-iocs.txt"
    c2name.write_bytes((DATA / "malware" / "zeus.txt").read_bytes())
    assert (f := detect(c2name)) is None or f.name != "maltrail"
    # A trail file without an extension is still found by its content.
    bare = tmp_path / "trickbot"
    bare.write_bytes((DATA / "malware" / "trickbot.txt").read_bytes())
    assert (f := detect(bare)) is not None and f.name == "maltrail"
    # A plain domain list without Maltrail's header or references is not claimed.
    plain = tmp_path / "domains.txt"
    plain.write_text("# Maltrail-like list\nevil.com\nbad.org\n")
    assert detect(plain) is None


def test_missing_file_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        list(read_trails(tmp_path / "missing.txt", IssueLog()))


_LINE = st.one_of(
    st.text(max_size=60),
    st.from_regex(re.compile(r"# ?Reference: [ -~]{0,30}"), fullmatch=True),
    st.from_regex(
        re.compile(r"([a-z]{2,5}://)?[a-z0-9.:/\[\]_-]{1,40}( +#[ -~]{0,10})?"), fullmatch=True
    ),
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(_LINE, max_size=12))
def test_fuzz_never_raises(tmp_path: Path, lines: list[str]) -> None:
    p = tmp_path / "malware" / "fuzz.txt"
    p.parent.mkdir(exist_ok=True)
    p.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
    issues = IssueLog()
    notes: Counter[str] = Counter()
    reader = FORMATS["maltrail"].read
    assert reader is not None
    inds = list(reader(p, issues))
    again = list(read_trails(p, IssueLog(), notes))
    assert len(inds) == len(again)
    for ind in inds:
        assert ind.family == "fuzz" and ind.confidence == 80 and ind.line >= 1
