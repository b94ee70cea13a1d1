"""abuse.ch feeds: URLhaus, ThreatFox (JSON and CSV), Feodo Tracker and MalwareBazaar dumps in
their published layouts; detection among the other CSV formats, bad rows and fuzzing."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quet.errors import InputError
from quet.indicators.formats import FORMATS, detect
from quet.indicators.model import Indicator, IndicatorType, IssueLog

DATA = Path(__file__).parent / "data"
URLHAUS = DATA / "urlhaus" / "csv_recent.csv"
TF_CSV = DATA / "threatfox" / "recent.csv"
TF_CSV_2026 = DATA / "threatfox" / "recent-2026.csv"
TF_JSON = DATA / "threatfox" / "recent.json"
FEODO = DATA / "feodo" / "ipblocklist.csv"
BAZAAR = DATA / "malwarebazaar" / "recent.csv"
READERS = ["urlhaus", "threatfox-csv", "threatfox-json", "feodo", "malwarebazaar"]


def read(fmt: str, path: Path, issues: IssueLog | None = None) -> list[Indicator]:
    reader = FORMATS[fmt].read
    assert reader is not None
    return list(reader(path, issues if issues is not None else IssueLog()))


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("path", "fmt", "count"),
    [
        (URLHAUS, "urlhaus", 6),
        (TF_CSV, "threatfox-csv", 6),
        (TF_CSV_2026, "threatfox-csv", 3),
        (TF_JSON, "threatfox-json", 5),
        (FEODO, "feodo", 5),
        (BAZAAR, "malwarebazaar", 9),
    ],
)
def test_samples(path: Path, fmt: str, count: int) -> None:
    detected = detect(path)
    assert detected is not None and detected.name == fmt
    issues = IssueLog()
    assert len(read(fmt, path, issues)) == count
    assert len(issues) == 0, [str(i) for i in issues.issues]


def test_urlhaus_record() -> None:
    inds = read("urlhaus", URLHAUS)
    assert inds[1] == Indicator(
        IndicatorType.URL,
        "https://invoice-portal.example.net/docs/Invoice_2026.exe",
        name="malware_download",
        source=str(URLHAUS),
        confidence=90,
        first_seen=t("2026-11-20 10:11:47"),
        last_seen=t("2026-11-20 10:11:47"),
        tags=("exe", "RemcosRAT", "online", "ref:https://urlhaus.abuse.ch/url/3301005/"),
        line=11,
    )
    assert inds[0].value == "http://198.51.100.23:41234/i"
    assert inds[3].tags == ("online", "ref:https://urlhaus.abuse.ch/url/3301003/")  # "None"
    assert inds[3].last_seen is None
    assert inds[4].value == "http://[2001:db8::beef]:8080/loader.sh"
    assert (inds[2].confidence, "offline" in inds[2].tags) == (75, True)


def test_threatfox_csv_record_and_layouts() -> None:
    inds = read("threatfox-csv", TF_CSV)
    assert inds[1] == Indicator(
        IndicatorType.IPV4,
        "8.134.12.90",
        name="win.cobalt_strike",
        family="Cobalt Strike",
        source=str(TF_CSV),
        confidence=100,
        first_seen=t("2024-07-16 05:25:36"),
        tags=("CobaltStrike", "cs-watermark-987654321", "botnet_cc", "port:7777"),
        line=11,
    )
    assert [i.type for i in inds] == [
        IndicatorType.URL,
        IndicatorType.IPV4,
        IndicatorType.IPV4,
        IndicatorType.DOMAIN,
        IndicatorType.SHA256,
        IndicatorType.MD5,
    ]
    assert inds[0].tags[-1].startswith("ref:https://bazaar.abuse.ch/sample/")
    assert inds[5].confidence == 25 and inds[5].family == "Unknown malware"
    # The 2026 layout adds is_compromised before reference: read by the header, not position.
    newer = read("threatfox-csv", TF_CSV_2026)
    assert [(i.value, i.family, i.tags) for i in newer] == [
        ("158.94.209.216", "Remcos", ("botnet_cc", "port:2404")),
        ("fl.qq1x.example", "Vidar", ("botnet_cc",)),
        (
            "https://wps-fake.example.cn/setup.exe",
            "ValleyRAT",
            ("exe", "ValleyRAT", "payload_delivery"),
        ),
    ]
    assert newer[1].last_seen == t("2026-09-14 13:00:01")


def test_threatfox_json_matches_csv() -> None:
    from_json = read("threatfox-json", TF_JSON)
    from_csv = read("threatfox-csv", TF_CSV)
    key = [
        (i.type, i.value, i.name, i.family, i.confidence, i.first_seen, i.tags) for i in from_json
    ]
    # The CSV has one more IOC (1301609); the rest is the same data.
    assert key == [
        (i.type, i.value, i.name, i.family, i.confidence, i.first_seen, i.tags)
        for i in from_csv
        if i.value != "172.245.184.135"
    ]
    assert [i.line for i in from_json] == [2, 19, 36, 53, 70]


def test_feodo_record() -> None:
    inds = read("feodo", FEODO)
    assert inds[1] == Indicator(
        IndicatorType.IPV4,
        "51.178.161.32",
        name="Dridex C2",
        family="Dridex",
        source=str(FEODO),
        confidence=90,
        first_seen=t("2021-01-17 07:44:46"),
        last_seen=t("2026-11-20 00:00:00"),
        tags=("port:4643", "online"),
        line=11,
    )
    assert [i.family for i in inds] == ["Dridex", "Dridex", "Emotet", "QakBot", "QakBot"]
    assert inds[0].confidence == 60


def test_malwarebazaar_one_row_three_hashes() -> None:
    inds = read("malwarebazaar", BAZAAR)
    eicar = inds[:3]
    assert [(i.type, i.value) for i in eicar] == [
        (IndicatorType.SHA256, "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"),
        (IndicatorType.MD5, "44d88612fea8a8f36de82e1278abb02f"),
        (IndicatorType.SHA1, "3395856ce81f2b7382dee72602f798b642f14140"),
    ]
    assert eicar[0] == Indicator(
        IndicatorType.SHA256,
        "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f",
        name="eicar.com",
        family="",  # signature "n/a"
        source=str(BAZAAR),
        confidence=100,
        first_seen=t("2026-11-20 09:58:12"),
        tags=("com",),
        line=10,
    )
    assert {i.family for i in inds[3:6]} == {"AgentTesla"}
    assert {i.family for i in inds[6:]} == {"Mirai"}


def test_bad_rows(tmp_path: Path) -> None:
    p = tmp_path / "urlhaus.csv"
    lines = URLHAUS.read_text().splitlines()[:9]  # banner and header
    p.write_text(
        "\n".join(
            [
                *lines,
                '"1","2026-01-01 00:00:00","http://ok.example/a","online","","malware_download","","",""',
                '"2","2026-01-01 00:00:00","","online","","malware_download","","",""',
                '"3","2026-01-01 00:00:00","http://bad host/x","online"',
                '"4","2026-01-01 00:00:00","http://[::1/x","online","","x","","",""',
                '"5","bad date","http://ok2.example/b","offline","","malware_download","","",""',
            ]
        )
    )
    issues = IssueLog()
    inds = read("urlhaus", p, issues)
    assert [(i.value, i.first_seen) for i in inds] == [
        ("http://ok.example/a", t("2026-01-01 00:00:00")),
        ("http://ok2.example/b", None),
    ]
    assert [i.line for i in issues.issues] == [11, 12, 13]
    assert "4 cells, expected 9" in issues.issues[1].message
    tf = tmp_path / "tf.csv"
    tf.write_text(
        '# "first_seen_utc","ioc_id","ioc_value","ioc_type","confidence_level"\n'
        '"2024-01-01 00:00:00", "1", "x.example", "email", "50"\n'
        '"2024-01-01 00:00:00", "2", "x.example", "domain", "high"\n'
        '"2024-01-01 00:00:00", "3", "1.2.3.4:80", "ip:port", "50"\n'
    )
    issues = IssueLog()
    assert [i.value for i in read("threatfox-csv", tf, issues)] == ["1.2.3.4"]
    assert ["unknown ioc_type" in i.message for i in issues.issues] == [True, False]


def test_threatfox_json_bad_input(tmp_path: Path) -> None:
    p = tmp_path / "bad.json"
    p.write_text('{"ioc_value": \n  oops')
    issues = IssueLog()
    assert read("threatfox-json", p, issues) == []
    assert issues.issues[0].line == 2 and "not JSON" in issues.issues[0].message
    q = tmp_path / "odd.json"
    q.write_text(
        json.dumps(
            {
                "1": [{"ioc_value": "[2001:db8::1]:443", "ioc_type": "ip:port", "tags": ["a"]}],
                "2": ["not an object"],
                "3": [{"ioc_value": "nothex", "ioc_type": "md5_hash"}],
            },
            indent=1,
        )
    )
    issues = IssueLog()
    [ind] = read("threatfox-json", q, issues)
    assert (ind.type, ind.value, ind.tags) == (IndicatorType.IPV6, "2001:db8::1", ("a", "port:443"))
    assert [(i.line, i.message.split(":")[0]) for i in issues.issues] == [
        (11, "IOC 2"),
        (14, "IOC 3"),
    ]
    r = tmp_path / "list.json"
    r.write_text("[1, 2]")
    issues = IssueLog()
    assert read("threatfox-json", r, issues) == [] and len(issues) == 1


def test_detection_among_csv_formats(tmp_path: Path) -> None:
    # URLhaus ships its full dump as csv.txt inside a zip; Quét's own CSV stays "csv".
    txt = tmp_path / "csv.txt"
    txt.write_bytes(URLHAUS.read_bytes())
    assert (f := detect(txt)) is not None and f.name == "urlhaus"
    own = tmp_path / "mine.csv"
    own.write_text("type,value,name\ndomain,evil.example,x\n")
    assert (f := detect(own)) is not None and f.name == "csv"
    for src, name in ((FEODO, "feodo"), (BAZAAR, "malwarebazaar"), (TF_CSV, "threatfox-csv")):
        bare = tmp_path / f"{name}-export"  # no extension: sniffed among every format
        bare.write_bytes(src.read_bytes())
        assert (f := detect(bare)) is not None and f.name == name


@pytest.mark.parametrize("fmt", READERS)
def test_missing_file_is_input_error(tmp_path: Path, fmt: str) -> None:
    with pytest.raises(InputError):
        read(fmt, tmp_path / "missing.csv")


_CELL = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["ip:port", "domain", "url", "md5_hash", "sha256_hash", "None", "n/a", ""]),
    st.from_regex(re.compile(r"[a-z0-9.:/\[\]-]{1,30}"), fullmatch=True),
    st.from_regex(re.compile(r"[0-9a-f]{32}|[0-9a-f]{64}"), fullmatch=True),
)
_ROW = st.builds(lambda cells: ", ".join(f'"{c}"' for c in cells), st.lists(_CELL, max_size=15))
_LINE = st.one_of(st.text(max_size=60), _ROW, st.sampled_from(["#", "# id,url,url_status"]))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(_LINE, max_size=10), st.sampled_from(READERS), st.booleans())
def test_fuzz_never_raises(tmp_path: Path, lines: list[str], fmt: str, header: bool) -> None:
    source = {"urlhaus": URLHAUS, "threatfox-csv": TF_CSV, "feodo": FEODO, "malwarebazaar": BAZAAR}
    head = source[fmt].read_text().splitlines()[:9] if header and fmt in source else []
    p = tmp_path / "fuzz.csv"
    p.write_text("\n".join(head + lines), encoding="utf-8", errors="surrogatepass")
    issues = IssueLog()
    for ind in read(fmt, p, issues):
        assert 0 <= ind.confidence <= 100 and ind.value


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10) | _CELL,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_CELL, inner, max_size=4),
        max_leaves=12,
    )
)
def test_fuzz_json_never_raises(tmp_path: Path, doc: object) -> None:
    p = tmp_path / "fuzz.json"
    p.write_text(json.dumps({"1": doc, "2": [{"ioc_type": "url", "ioc_value": doc}]}))
    issues = IssueLog()
    for ind in read("threatfox-json", p, issues):
        assert ind.value
