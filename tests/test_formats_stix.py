"""The STIX 2.1 reader and writer: real OASIS example bundles, pattern forms, round trip, fuzz."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import stix2
from hypothesis import given, settings
from hypothesis import strategies as st

from quet.errors import InputError
from quet.indicators.formats import FORMATS, detect, read_path, write_path
from quet.indicators.formats.stix import (
    exact_filename,
    filename_regex,
    indicators_from_objects,
    pattern_values,
    read_stix,
)
from quet.indicators.model import Indicator, IndicatorType, IssueLog, make

DATA = Path(__file__).parent / "data" / "stix"
T = IndicatorType
APT1_TIME = datetime(2015, 5, 15, 9, 12, 16, 432678, tzinfo=UTC)


def _read(path: Path) -> tuple[list[Indicator], IssueLog]:
    issues = IssueLog()
    return list(read_stix(path, issues)), issues


def test_apt1_report() -> None:
    inds, issues = _read(DATA / "apt1.json")
    assert len(issues) == 0
    assert [(i.type, i.value) for i in inds] == [
        (T.CIDR, "223.166.0.0/15"),
        (T.CIDR, "58.246.0.0/15"),
        (T.CIDR, "112.64.0.0/15"),
        (T.CIDR, "139.226.0.0/15"),
        (T.DOMAIN, "hugesoft.org"),
        (T.DOMAIN, "arrowservice.net"),
        (T.DOMAIN, "msnhome.org"),
        (T.MD5, "001dd76872d80801692ff942308c64e6"),
        (T.MD5, "002325a0a67fded0381b5648d7fe9b8e"),
        (T.MD5, "00dbb9e1c09dbdafb360f3163ba5a3de"),
    ]  # the two x509-certificate indicators hold nothing we match on
    assert inds[0] == Indicator(
        T.CIDR,
        "223.166.0.0/15",
        name="HTRAN Hop Point Accessor",
        family="HUC Packet Transmit Tool (HTRAN)",
        source=str(DATA / "apt1.json"),
        confidence=50,
        first_seen=APT1_TIME,
        tags=("malicious-activity",),
        line=189,
    )
    # these indicate a threat actor, not malware: it becomes the campaign
    assert {(i.family, i.campaign) for i in inds[4:7]} == {("", "Ugly Gorilla")}
    assert {i.family for i in inds[7:]} == {""}


def test_c2_ip_indicator() -> None:
    inds, issues = _read(DATA / "indicator-for-c2-ip-address.json")
    assert len(issues) == 0
    assert inds == [
        Indicator(
            T.IPV4,
            "10.0.0.0",
            name="IP Address for known C2 channel",
            source=str(DATA / "indicator-for-c2-ip-address.json"),
            first_seen=datetime(2014, 5, 8, 9, 0, tzinfo=UTC),
            tags=("malicious-activity",),
            line=9,
        )
    ]


def test_indicators_with_malware_family() -> None:
    inds, issues = _read(DATA / "indicators-for-C2-with-COA.json")
    assert len(issues) == 0
    assert [(i.type, i.value, i.family) for i in inds] == [
        (T.IPV4, "10.0.0.0", "Poison Ivy"),
        (
            T.SHA256,
            "ef537f25c895bfa782526529a9b63d97aa631564d5d789c2b765448c8635fb6c",
            "Poison Ivy",
        ),
    ]
    assert inds[1].name == "File hash for Poison Ivy variant"
    assert inds[1].line == 49


def test_infrastructure_observables() -> None:
    inds, issues = _read(DATA / "infrastructure.json")
    assert len(issues) == 0
    assert inds == [
        Indicator(
            T.IPV4,
            "198.51.100.3",
            name="Poison Ivy C2",
            family="Poison Ivy",
            source=str(DATA / "infrastructure.json"),
            tags=("command-and-control",),
            line=54,
        ),
        Indicator(
            T.DOMAIN,
            "example.com",
            name="Example target-list-hosting",
            family="IMDDOS",
            source=str(DATA / "infrastructure.json"),
            tags=("hosting-target-lists",),
            line=106,
        ),
    ]


def test_email_patterns_hold_nothing_we_match() -> None:
    inds, issues = _read(DATA / "no-iocs" / "malicious-email-indicator-with-attachment.json")
    assert inds == [] and len(issues) == 0


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("[file:hashes.'SHA-256' = 'AB" + "0" * 62 + "']", [(T.SHA256, "ab" + "0" * 62)]),
        ("[file:hashes.SHA256 = '" + "1" * 64 + "']", [(T.SHA256, "1" * 64)]),
        ('[file:hashes."SHA-256" = \'' + "2" * 64 + "']", [(T.SHA256, "2" * 64)]),
        ("[file:hashes.'SHA-1' = '" + "3" * 40 + "']", [(T.SHA1, "3" * 40)]),
        ("[file:hashes.sha1 = '" + "4" * 40 + "']", [(T.SHA1, "4" * 40)]),
        ("[file:hashes.MD5 = '" + "5" * 32 + "']", [(T.MD5, "5" * 32)]),
        ("[file:hashes.'SHA-512' = '" + "6" * 128 + "']", []),
        ("[ipv4-addr:value = '198.51.100.7']", [(T.IPV4, "198.51.100.7")]),
        ("[ipv4-addr:value = '198.51.100.0/24']", [(T.CIDR, "198.51.100.0/24")]),
        ("[ipv4-addr:value ISSUBSET '10.0.0.0/8']", [(T.CIDR, "10.0.0.0/8")]),
        ("[ipv6-addr:value = '2001:DB8::1']", [(T.IPV6, "2001:db8::1")]),
        ("[ipv6-addr:value ISSUBSET '2001:db8::/32']", [(T.CIDR, "2001:db8::/32")]),
        ("[domain-name:value = 'Evil.Example.']", [(T.DOMAIN, "evil.example")]),
        ("[url:value = 'HTTP://Evil.Example:80/a?b']", [(T.URL, "http://evil.example/a?b")]),
        (
            "[domain-name:value IN ('a.example', 'b.example')]",
            [(T.DOMAIN, "a.example"), (T.DOMAIN, "b.example")],
        ),
        (
            "[ipv4-addr:value = '192.0.2.1' OR ipv4-addr:value = '192.0.2.2']",
            [(T.IPV4, "192.0.2.1"), (T.IPV4, "192.0.2.2")],
        ),
        (
            "[domain-name:value = 'c.example'] AND [url:value = 'http://c.example/x']",
            [(T.DOMAIN, "c.example"), (T.URL, "http://c.example/x")],
        ),
        (  # AND across object types in one observation: stricter parsers reject it
            "[(ipv4-addr:value = '192.0.2.3' OR ipv4-addr:value = '192.0.2.4') "
            "AND domain-name:value = 'd.example']",
            [(T.IPV4, "192.0.2.3"), (T.IPV4, "192.0.2.4"), (T.DOMAIN, "d.example")],
        ),
        ("[ipv4-addr:value NOT = '192.0.2.5']", []),
        (
            "[ipv4-addr:value = '192.0.2.6'] REPEATS 2 TIMES WITHIN 60 SECONDS",
            [(T.IPV4, "192.0.2.6")],
        ),
        ("[file:name = 'it\\'s.exe']", [(T.FILENAME, filename_regex("it's.exe"))]),
        (
            "[file:name MATCHES '^evil[0-9]+\\\\.exe$']",
            [(T.FILENAME, r"(?:^|[\\/])evil[0-9]+\.exe$")],
        ),
        ("[email-message:subject MATCHES 'Invoice']", []),
        ("[url:value LIKE 'http://%.example/']", []),
    ],
)
def test_pattern_forms(pattern: str, expected: list[tuple[IndicatorType, str]]) -> None:
    obj = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
        "pattern": pattern,
        "pattern_type": "stix",
        "valid_from": "2024-01-01T00:00:00Z",
    }
    issues = IssueLog()
    inds = list(indicators_from_objects([obj], "test", issues))
    assert [(i.type, i.value) for i in inds] == expected
    assert len(issues) == 0


def test_filename_regex_is_exact() -> None:
    rx = re.compile(filename_regex("a+b.exe"), re.IGNORECASE)
    assert rx.search(r"C:\Temp\A+B.EXE") and rx.search("/tmp/a+b.exe") and rx.search("a+b.exe")
    assert not rx.search("/tmp/xa+b.exe") and not rx.search("/tmp/aab.exe")
    assert exact_filename(filename_regex("x (1).doc")) == "x (1).doc"
    assert exact_filename(r"(?:^|[\\/])evil[0-9]+\.exe$") is None


def test_bad_input_is_reported_with_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"type": "bundle",\n "objects": [\n  {"type": "indicator",,}]}')
    inds, issues = _read(bad)
    assert inds == [] and [(i.line, i.message[:8]) for i in issues.issues] == [(3, "not JSON")]

    objects = [
        {
            "type": "indicator",
            "id": "indicator--1",
            "pattern": "[ipv4-addr:value = ",
            "pattern_type": "stix",
        },
        {"type": "indicator", "id": "indicator--2", "pattern": "[domain-name:value = 'no_dot']"},
        {
            "type": "indicator",
            "id": "indicator--3",
            "pattern": "[url:value = 'http://ok.example/']",
        },
        {"type": "indicator", "id": "indicator--4", "pattern": "rule x {}", "pattern_type": "yara"},
    ]
    mixed = tmp_path / "mixed.json"
    mixed.write_text(json.dumps(objects, indent=1))
    inds, issues = _read(mixed)
    assert [(i.type, i.value) for i in inds] == [(T.URL, "http://ok.example/")]
    assert [(i.line, i.message.split(":")[0]) for i in issues.issues] == [
        (4, "indicator--1"),
        (10, "indicator--2"),
    ]
    assert "does not parse" in issues.issues[0].message


def test_single_object_and_bare_observables(tmp_path: Path) -> None:
    one = tmp_path / "one.json"
    one.write_text(
        json.dumps(
            {
                "type": "indicator",
                "spec_version": "2.1",
                "id": "indicator--0b5a5c3e-8e48-4f8d-a0a2-3c2b3d2e8f10",
                "pattern": "[url:value = 'https://x.example/gate.php']",
                "pattern_type": "stix",
                "valid_from": "2024-01-01T00:00:00Z",
                "valid_until": "2025-01-01T00:00:00Z",
                "confidence": 85,
                "labels": ["family:Emotet"],
                "indicator_types": ["malicious-activity"],
            }
        )
    )
    (ind,) = _read(one)[0]
    assert (ind.type, ind.value, ind.family, ind.confidence) == (
        T.URL,
        "https://x.example/gate.php",
        "Emotet",
        85,
    )
    assert ind.expires == datetime(2025, 1, 1, tzinfo=UTC)
    assert ind.tags == ("family:Emotet", "malicious-activity")

    scos = [
        {"type": "domain-name", "id": "domain-name--1", "value": "alone.example"},
        {"type": "file", "id": "file--1", "hashes": {"SHA-256": "a" * 64, "MD5": "b" * 32}},
        # only context of an observed-data: not an IOC
        {"type": "ipv4-addr", "id": "ipv4-addr--1", "value": "192.0.2.9"},
        {"type": "observed-data", "id": "observed-data--1", "object_refs": ["ipv4-addr--1"]},
    ]
    issues = IssueLog()
    inds = list(indicators_from_objects(scos, "t", issues))
    assert [(i.type, i.value) for i in inds] == [
        (T.DOMAIN, "alone.example"),
        (T.SHA256, "a" * 64),
        (T.MD5, "b" * 32),
    ]


def test_missing_file() -> None:
    with pytest.raises(InputError):
        list(read_stix(DATA / "nope.json", IssueLog()))


def test_detection() -> None:
    for path in DATA.rglob("*.json"):
        assert detect(path) is FORMATS["stix"], path
    misp = Path(__file__).parent / "data" / "misp" / "existing_event.json"
    assert detect(misp) is not FORMATS["stix"]


def _every_kind() -> list[Indicator]:
    seen = datetime(2024, 3, 1, 12, 30, tzinfo=UTC)
    until = datetime(2025, 3, 1, tzinfo=UTC)
    return [
        make(T.IPV4, "192.0.2.10", name="C2", family="Emotet", confidence=80, first_seen=seen),
        make(T.IPV6, "2001:db8::10", family="Emotet", first_seen=seen, expires=until),
        make(T.CIDR, "198.51.100.0/24", tags=("scanner", "tlp:white"), first_seen=seen),
        make(T.DOMAIN, "evil.example", campaign="Op Test", confidence=0, first_seen=seen),
        make(T.URL, "http://evil.example/it's.php?a=\\b", first_seen=seen),
        make(T.MD5, "d41d8cd98f00b204e9800998ecf8427e", family="Mirai", first_seen=seen),
        make(T.SHA1, "da39a3ee5e6b4b0d3255bfef95601890afd80709", first_seen=seen),
        make(
            T.SHA256,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            first_seen=seen,
        ),
        Indicator(T.FILENAME, filename_regex("in'voice.pdf.exe"), first_seen=seen, confidence=70),
        Indicator(T.FILENAME, r"\\Temp\\[a-z]{8}\.exe$", first_seen=seen),
    ]


def _comparable(ind: Indicator) -> tuple[object, ...]:
    return (
        ind.type,
        ind.value,
        ind.name,
        ind.family,
        ind.campaign,
        ind.confidence,
        ind.first_seen,
        ind.expires,
        ind.tags,
    )


def test_round_trip(tmp_path: Path) -> None:
    original = [*_every_kind(), Indicator(T.YARA, "rule x { condition: true }")]
    out = tmp_path / "out.json"
    assert write_path(original, out, "stix") == 10  # YARA has no STIX pattern
    bundle = stix2.parse(out.read_text(), allow_custom=False)  # validates every object
    types = [o.type for o in bundle.objects]
    assert types.count("indicator") == 10
    assert types.count("malware") == 2 and types.count("campaign") == 1
    assert types.count("relationship") == 4
    assert detect(out) is FORMATS["stix"]
    issues = IssueLog()
    back = list(read_path(out, issues))
    assert len(issues) == 0
    assert [_comparable(i) for i in back] == [_comparable(i) for i in original[:10]]


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300))
def test_fuzz_patterns(text: str) -> None:
    try:
        values = pattern_values(text)
    except ValueError:
        return
    assert all(isinstance(kind, IndicatorType) and isinstance(v, str) for kind, v in values)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "type",
                    "id",
                    "pattern",
                    "objects",
                    "value",
                    "hashes",
                    "source_ref",
                    "target_ref",
                    "relationship_type",
                    "name",
                    "labels",
                    "confidence",
                    "valid_from",
                    "object_refs",
                ]
            ),
            children,
            max_size=6,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(_json)
def test_fuzz_json(tmp_path_factory: pytest.TempPathFactory, doc: object) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "x.json"
    path.write_text(json.dumps(doc))
    issues = IssueLog()
    for ind in read_stix(path, issues):
        assert isinstance(ind, Indicator)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=400))
def test_fuzz_bytes(tmp_path_factory: pytest.TempPathFactory, raw: bytes) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "x.json"
    path.write_bytes(raw)
    list(read_stix(path, IssueLog()))
