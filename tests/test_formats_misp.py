"""MISP events and feed folders: real PyMISP test events, attribute types, feeds, round trip."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quet.errors import InputError
from quet.indicators.formats import FORMATS, detect, read_path, write_path
from quet.indicators.formats.misp import (
    attribute_values,
    build_event,
    indicators_from_event,
    read_events,
    read_feed,
    read_misp,
    write_feed,
)
from quet.indicators.formats.stix import filename_regex
from quet.indicators.model import Indicator, IndicatorType, IssueLog, make

DATA = Path(__file__).parent / "data" / "misp"
T = IndicatorType
XORIST = DATA / "57c4445b-c548-4654-af0b-4be3950d210f.json"
XORIST_TAGS = (
    "tlp:white",
    'circl:incident-classification="malware"',
    'ms-caro-malware:malware-type="Ransom"',
    'malware_classification:malware-category="Ransomware"',
)


def _read(path: Path, all_attributes: bool = False) -> tuple[list[Indicator], IssueLog]:
    issues = IssueLog()
    return list(read_events(path, issues, all_attributes=all_attributes)), issues


def _types(inds: list[Indicator]) -> dict[str, int]:
    return dict(Counter(i.type.value for i in inds))


def test_xorist_event() -> None:
    inds, issues = _read(XORIST)
    assert len(issues) == 0
    assert [(i.type, i.value) for i in inds] == [
        (T.FILENAME, filename_regex("3Z4wnG9603it23y.exe")),
        (T.MD5, "0749bae92ca336a02c83d126e04ec628"),
        (T.SHA1, "77b0c41b7d340b8a3d903f21347bbf06aa766b5b"),
        (T.SHA256, "b3c4ae251f8094fa15b510051835c657eaef2a6cea46075d3aec964b14a99f68"),
    ]  # links, comment, text: not to_ids; regkey|value: no indicator type
    assert inds[1] == Indicator(
        T.MD5,
        "0749bae92ca336a02c83d126e04ec628",
        name="Ransomware - Xorist",
        source=str(XORIST),
        confidence=50,  # threat level 3 (low)
        first_seen=datetime(2016, 8, 29, 14, 19, 55, tzinfo=UTC),
        tags=XORIST_TAGS,
        line=1,
    )


def test_sednit_event_with_objects_and_galaxies() -> None:
    path = DATA / "existing_event.json"
    inds, issues = _read(path)
    assert len(issues) == 0
    # 7 domains + 36 file objects + 12 domain-ip objects, one domain-ip pair repeated
    assert len(inds) == 81
    assert _types(inds) == {"domain": 18, "sha1": 37, "filename": 15, "ipv4": 11}
    ip = next(i for i in inds if i.type is T.IPV4)
    assert ip == Indicator(
        T.IPV4,
        "87.236.211.182",
        name="OSINT - Sednit update: How Fancy Bear Spent the Year",
        family="JHUHUGIT",  # the first malware galaxy tag
        campaign="Sofacy",  # the threat-actor galaxy
        source=str(path),
        confidence=50,
        first_seen=ip.first_seen,
        tags=ip.tags,
        line=3326,
    )
    assert ip.first_seen is not None and ip.first_seen.year == 2017
    assert 'misp-galaxy:threat-actor="Sofacy"' not in ip.tags
    assert 'misp-galaxy:mitre-malware="JHUHUGIT"' not in ip.tags
    assert ip.tags[:2] == ("tlp:white", 'workflow:state="incomplete"')
    assert (T.FILENAME, filename_regex("Trump’s_Attack_on_Syria_English.docx")) in {
        (i.type, i.value) for i in inds
    }


def test_search_response_with_malware_sample() -> None:
    path = DATA / "malware_exist.json"
    inds, issues = _read(path)
    assert len(issues) == 0
    assert [(i.type, i.value) for i in inds] == [
        (T.FILENAME, filename_regex("simple.json")),  # from malware-sample filename|md5
        (T.MD5, "7637beddacbeac59d44469b2b120b9e6"),
        (T.SHA1, "023853a4331db8d67e44553004cf338ec1b7440e"),
        (T.SHA256, "6ae8b0f1c7d6f3238d1fc14038018c3b4704c8cc23dac1c2bfd2c81b5a278eef"),
    ]
    assert {i.confidence for i in inds} == {90}  # threat level 1 (high)
    assert inds[0].name == "Test existing malware PyMISP" and inds[0].line == 56


def test_to_ids_respected() -> None:
    path = DATA / "no-ids" / "misp_event.json"
    assert _read(path) == ([], IssueLog())
    inds, issues = _read(path, all_attributes=True)
    assert len(issues) == 0
    assert [(i.type, i.value, i.name, i.tags) for i in inds] == [
        (
            T.URL,
            "http://fake.website.com/malware/is/here",
            "A Random Event",
            ('ecsirt:malicious-code="ransomware"', "for_intelmq_processing"),
        )
    ]


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("ip-src", "192.0.2.1", [(T.IPV4, "192.0.2.1")]),
        ("ip-dst", "2001:DB8::1", [(T.IPV6, "2001:db8::1")]),
        ("ip-dst", "10.0.0.0/8", [(T.CIDR, "10.0.0.0/8")]),
        ("ip-dst|port", "192.0.2.2|443", [(T.IPV4, "192.0.2.2")]),
        ("ip-src|port", "2001:db8::2|8080", [(T.IPV6, "2001:db8::2")]),
        ("domain", "Evil.Example", [(T.DOMAIN, "evil.example")]),
        ("hostname", "c2.evil.example", [(T.DOMAIN, "c2.evil.example")]),
        ("hostname|port", "c2.evil.example|8443", [(T.DOMAIN, "c2.evil.example")]),
        (
            "domain|ip",
            "evil.example|192.0.2.3",
            [(T.DOMAIN, "evil.example"), (T.IPV4, "192.0.2.3")],
        ),
        ("url", "http://evil.example/a", [(T.URL, "http://evil.example/a")]),
        ("uri", "/gate.php", []),
        ("uri", "https://evil.example/gate.php", [(T.URL, "https://evil.example/gate.php")]),
        ("md5", "D41D8CD98F00B204E9800998ECF8427E", [(T.MD5, "d41d8cd98f00b204e9800998ecf8427e")]),
        (
            "sha1",
            "da39a3ee5e6b4b0d3255bfef95601890afd80709",
            [(T.SHA1, "da39a3ee5e6b4b0d3255bfef95601890afd80709")],
        ),
        (
            "filename|sha256",
            "a.exe|" + "e" * 64,
            [(T.FILENAME, filename_regex("a.exe")), (T.SHA256, "e" * 64)],
        ),
        ("filename", "b c.dll", [(T.FILENAME, filename_regex("b c.dll"))]),
        ("regkey", r"HKLM\Software\x", []),
        ("ssdeep", "3:a:b", []),
    ],
)
def test_attribute_types(kind: str, value: str, expected: list[tuple[IndicatorType, str]]) -> None:
    event = {"info": "t", "Attribute": [{"type": kind, "value": value, "to_ids": "1"}]}
    issues = IssueLog()
    inds = list(indicators_from_event(event, "t", issues))
    assert [(i.type, i.value) for i in inds] == expected
    assert len(issues) == 0


def test_bad_values_reported_and_rest_read(tmp_path: Path) -> None:
    event = {
        "Event": {
            "info": "mixed",
            "threat_level_id": "2",
            "Tag": [{"name": 'misp-galaxy:malpedia="Emotet"'}, {"name": 'osint:certainty="75"'}],
            "Attribute": [
                {
                    "uuid": "11111111-1111-4111-8111-111111111111",
                    "type": "md5",
                    "value": "zz",
                    "to_ids": True,
                },
                {
                    "uuid": "22222222-2222-4222-8222-222222222222",
                    "type": "domain",
                    "value": "ok.example",
                    "to_ids": True,
                },
                {
                    "uuid": "33333333-3333-4333-8333-333333333333",
                    "type": "filename|md5",
                    "value": "nohash",
                    "to_ids": True,
                },
                {"type": "domain", "value": "gone.example", "to_ids": True, "deleted": True},
            ],
        }
    }
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event, indent=1))
    inds, issues = _read(path)
    assert [(i.value, i.family, i.confidence, i.tags) for i in inds] == [
        ("ok.example", "Emotet", 75, ())
    ]
    assert [(i.line, i.message.split(":")[0]) for i in issues.issues] == [
        (15, "MISP md5"),
        (27, "filename|md5 value is not two '|'-separated parts"),
    ]
    bad = tmp_path / "bad.json"
    bad.write_text('{"Event": {\n"info": }')
    inds, issues = _read(bad)
    assert inds == [] and issues.issues[0].line == 2
    with pytest.raises(InputError):
        list(read_events(tmp_path / "missing.json", IssueLog()))


def test_detection() -> None:
    for path in [XORIST, DATA / "existing_event.json", DATA / "malware_exist.json"]:
        assert detect(path) is FORMATS["misp"], path
    assert detect(DATA / "no-ids" / "misp_event.json") is FORMATS["misp"]
    assert detect(DATA / "feed" / "manifest.json") is FORMATS["misp-feed"]
    assert detect(Path(__file__).parent / "data" / "stix" / "apt1.json") is FORMATS["stix"]


FEED_TOTAL = 4 + 81


def test_feed_folder_read_once() -> None:
    feed = DATA / "feed"
    issues = IssueLog()
    from_folder = list(read_path(feed, issues))
    assert len(issues) == 0
    assert len(from_folder) == FEED_TOTAL
    from_manifest = list(read_path(feed / "manifest.json", IssueLog()))
    assert [i.key() for i in from_manifest] == [i.key() for i in from_folder]
    # an event listed by its folder's manifest is read through the manifest only
    event = feed / "57c4445b-c548-4654-af0b-4be3950d210f.json"
    assert detect(event) is FORMATS["misp"]
    assert list(read_misp(event, IssueLog())) == []
    assert len(list(read_events(event, IssueLog()))) == 4


def test_feed_missing_event(tmp_path: Path) -> None:
    shutil.copy(DATA / "feed" / "manifest.json", tmp_path / "manifest.json")
    shutil.copy(XORIST, tmp_path / XORIST.name)
    issues = IssueLog()
    assert len(list(read_feed(tmp_path / "manifest.json", issues))) == 4
    assert [(i.line, i.message) for i in issues.issues] == [
        (31, "event file missing: 5a3c2fcd-8328-42bb-a95e-4f4402de0b81.json")
    ]


def _indicators() -> list[Indicator]:
    seen = datetime(2024, 3, 1, 12, 30, tzinfo=UTC)
    last = datetime(2024, 4, 1, tzinfo=UTC)
    return [
        make(T.IPV4, "192.0.2.10", family="Emotet", confidence=80, first_seen=seen, last_seen=last),
        make(T.IPV6, "2001:db8::10", first_seen=seen, tags=("tlp:green",)),
        make(T.CIDR, "198.51.100.0/24", first_seen=seen),
        make(T.DOMAIN, "evil.example", confidence=0, first_seen=seen),
        make(T.URL, "http://evil.example/x?y=1", first_seen=seen),
        make(T.MD5, "d41d8cd98f00b204e9800998ecf8427e", family="Mirai", first_seen=seen),
        make(T.SHA1, "da39a3ee5e6b4b0d3255bfef95601890afd80709", first_seen=seen),
        make(T.SHA256, "e" * 64, first_seen=seen),
        Indicator(T.FILENAME, filename_regex("invoice.pdf.exe"), first_seen=seen),
    ]


def _comparable(ind: Indicator) -> tuple[object, ...]:
    return (
        ind.type,
        ind.value,
        ind.family,
        ind.confidence,
        ind.first_seen,
        ind.last_seen,
        ind.tags,
    )


def test_event_round_trip(tmp_path: Path) -> None:
    extra = [Indicator(T.FILENAME, r"\\Temp\\[a-z]{8}\.exe$"), Indicator(T.YARA, "rule x {}")]
    out = tmp_path / "export.json"
    assert write_path(_indicators() + extra, out, "misp") == 9  # no MISP type for the rest
    assert detect(out) is FORMATS["misp"]
    issues = IssueLog()
    back = list(read_path(out, issues))
    assert len(issues) == 0
    assert [_comparable(i) for i in back] == [_comparable(i) for i in _indicators()]
    assert {i.name for i in back} == {"Quét export: export"}


def test_write_feed(tmp_path: Path) -> None:
    feed = tmp_path / "feed"
    assert write_feed(_indicators(), feed, "Quét daily") == 9
    ev_uuid = build_event([], "Quét daily")["Event"]["uuid"]
    assert sorted(p.name for p in feed.iterdir()) == sorted(
        ["manifest.json", "hashes.csv", f"{ev_uuid}.json"]
    )
    manifest = json.loads((feed / "manifest.json").read_text())
    assert set(manifest) == {ev_uuid}
    assert set(manifest[ev_uuid]) == {
        "Orgc",
        "Tag",
        "info",
        "date",
        "analysis",
        "threat_level_id",
        "timestamp",
    }
    assert manifest[ev_uuid]["info"] == "Quét daily"
    rows = (feed / "hashes.csv").read_text().splitlines()
    md5 = hashlib.md5(b"evil.example").hexdigest()
    assert len(rows) == 9 and f"{md5},{ev_uuid}" in rows
    assert detect(feed / "hashes.csv") is FORMATS["misp-feed"]
    # a second event joins the feed; re-writing the first replaces it
    assert write_feed(_indicators()[:2], feed, "Quét weekly") == 2
    assert write_feed(_indicators()[:3], feed, "Quét daily") == 3
    assert len(json.loads((feed / "manifest.json").read_text())) == 2
    assert len((feed / "hashes.csv").read_text().splitlines()) == 5
    issues = IssueLog()
    inds = list(read_path(feed, issues))
    assert len(issues) == 0  # hashes.csv is recognised and holds no indicators
    assert len(inds) == 5
    assert Counter(i.name for i in inds) == {"Quét daily": 3, "Quét weekly": 2}


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "Event",
                    "Attribute",
                    "Object",
                    "Tag",
                    "name",
                    "type",
                    "value",
                    "to_ids",
                    "info",
                    "threat_level_id",
                    "timestamp",
                    "first_seen",
                    "response",
                    "uuid",
                ]
            ),
            children,
            max_size=6,
        )
    ),
    max_leaves=25,
)


@settings(max_examples=150, deadline=None)
@given(_json)
def test_fuzz_events(tmp_path_factory: pytest.TempPathFactory, doc: object) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "x.json"
    path.write_text(json.dumps(doc))
    for ind in read_events(path, IssueLog(), all_attributes=True):
        assert isinstance(ind, Indicator)


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(
        ["ip-dst", "ip-src|port", "domain|ip", "filename|md5", "url", "hostname", "malware-sample"]
    ),
    st.text(max_size=60),
)
def test_fuzz_attribute_values(kind: str, value: str) -> None:
    event = {"Attribute": [{"type": kind, "value": value, "to_ids": True}]}
    issues = IssueLog()
    inds = list(indicators_from_event(event, "f", issues))
    # nothing is dropped silently: a known type gives indicators or says why not
    assert inds or len(issues) >= 1
    assert all(isinstance(i, Indicator) for i in inds)
    try:
        expected = attribute_values(kind, value)
    except InputError:
        expected = []
    assert len(inds) <= len(expected)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_manifest_bytes(tmp_path_factory: pytest.TempPathFactory, raw: bytes) -> None:
    folder = tmp_path_factory.mktemp("feed")
    (folder / "manifest.json").write_bytes(raw)
    list(read_feed(folder / "manifest.json", IssueLog()))
