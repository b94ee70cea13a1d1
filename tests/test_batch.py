"""The DuckDB batch matcher gives the streaming matcher's alerts: on the data-driven matcher
cases, on every real sample log, on label/CIDR/bad-line/gzip cases written here."""

from __future__ import annotations

import gzip
import ipaddress
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from quet.errors import InputError
from quet.indicators.model import Indicator, IndicatorType, IssueLog, guess
from quet.indicators.sets import IndicatorSet
from quet.indicators.warninglists import Warninglist, WarninglistSet
from quet.netwatch.alerts import Alert, aggregate
from quet.netwatch.batch import BatchMatcher, scan_batch, zeek_header
from quet.netwatch.matcher import InternalNets, match_events
from quet.netwatch.records import NetEvent
from quet.netwatch.sources import read_path

T = IndicatorType
DATA = Path(__file__).parent / "data" / "netwatch"
ZEEK = DATA / "zeek" / "btest-baseline"
CASES = yaml.safe_load((DATA / "matcher_cases.yaml").read_text())
HEADER = (
    "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\t{path}\n"
    "#fields\t{fields}\n#types\t{types}\n"
)
DNS_FIELDS = (
    "ts uid id.orig_h id.orig_p id.resp_h id.resp_p proto trans_id query rcode_name answers"
)
DNS_TYPES = "time string addr port addr port enum count string string vector[string]"
CONN_FIELDS = "ts uid id.orig_h id.orig_p id.resp_h id.resp_p proto service"
CONN_TYPES = "time string addr port addr port enum string"


def zeek_log(path: Path, log: str, rows: list[str]) -> Path:
    fields, types = (DNS_FIELDS, DNS_TYPES) if log == "dns" else (CONN_FIELDS, CONN_TYPES)
    head = HEADER.format(path=log, fields=fields.replace(" ", "\t"), types=types.replace(" ", "\t"))
    path.write_text(head + "".join(r.replace(" ", "\t") + "\n" for r in rows) + "#close\tx\n")
    return path


def streaming(
    paths: list[Path],
    inds: list[Indicator],
    wl: WarninglistSet | None = None,
    issues: IssueLog | None = None,
) -> list[Alert]:
    issues = issues if issues is not None else IssueLog()
    events = [ev for p in paths for ev in read_path(p, issues)]
    return aggregate(match_events(events, IndicatorSet.build(inds), wl))


# -- the data-driven matcher cases -------------------------------------------------------------


def _case_warninglists(spec: Any) -> WarninglistSet | None:
    if spec is None:
        return None
    if spec == "default":
        return WarninglistSet.default()
    return WarninglistSet(
        Warninglist(
            name=wl["name"],
            description=wl.get("description", ""),
            type=wl.get("type", "string"),
            matching_attributes=tuple(wl.get("matching_attributes", ())),
            entries=list(wl["list"] if "list" in wl else wl["entries"]),
        )
        for wl in spec
    )


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_matcher_cases_give_the_streaming_alerts(case: dict[str, Any]) -> None:
    inds = [Indicator(T(k), v, family=f, name=f, source="case") for k, v, f in case["indicators"]]
    events = []
    for i, spec in enumerate(case["events"]):
        ev = NetEvent(**{k: v for k, v in spec.items()})
        ev.source, ev.line = "case.log", i + 1
        events.append(ev)
    internal = InternalNets(case["internal"]) if "internal" in case else None
    wl = _case_warninglists(case.get("warninglists"))
    want = aggregate(match_events(events, IndicatorSet.build(inds), wl, internal=internal))
    matcher = BatchMatcher(inds, wl, internal=internal)
    got = matcher.scan_events(events)
    matcher.close()
    assert got == want


# -- every real sample ---------------------------------------------------------------------------


def _drawn_indicators(paths: list[Path]) -> list[Indicator]:
    """Indicators taken from the logs themselves (IPs, their /16 or /64, names and their parent
    domains, URLs, hashes), so that many values of every kind hit."""
    values: set[tuple[T, str]] = set()
    for i, ev in enumerate(e for p in paths for e in read_path(p, IssueLog())):
        for ip in (ev.server, ev.client, *ev.answers):
            if not ip or i % 3:
                continue
            try:
                addr = ipaddress.ip_address(ip)
            except ValueError:
                values.add((T.DOMAIN, ".".join(ip.split(".")[-2:])))
                continue
            values.add((T.IPV4 if addr.version == 4 else T.IPV6, ip))
            plen = 16 if addr.version == 4 else 64
            values.add((T.CIDR, str(ipaddress.ip_network(f"{ip}/{plen}", strict=False))))
        for name in (ev.query, ev.host):
            if name and "." in name and not name[-1].isdigit():
                values.add((T.DOMAIN, ".".join(name.split(".")[-2:]) if i % 2 else name))
        if ev.url and i % 2:
            values.add((T.URL, ev.url))
        for kind, digest in ((T.MD5, ev.md5), (T.SHA1, ev.sha1), (T.SHA256, ev.sha256)):
            if digest:
                values.add((kind, digest))
    inds = []
    for kind, value in sorted(values):
        try:
            norm = value if kind is T.CIDR else guess(value)[1]
        except InputError:  # a value the model refuses is simply not listed
            continue
        inds.append(Indicator(kind, norm, name=f"n-{norm}", family="F", source="feed"))
    return inds


@pytest.mark.parametrize("wl", [None, "default"])
def test_every_sample_log_gives_the_streaming_alerts(wl: str | None) -> None:
    paths = sorted(p for p in DATA.iterdir() if p.is_dir())
    inds = _drawn_indicators(paths)
    lists = WarninglistSet.default() if wl else None
    want_issues, got_issues = IssueLog(), IssueLog()
    want = streaming(paths, inds, lists, want_issues)
    got = scan_batch(paths, inds, lists, got_issues)
    assert len(want) > 100
    assert got == want
    assert [str(i) for i in got_issues.issues] == [str(i) for i in want_issues.issues]


def test_zeek_dns_and_conn_go_the_duckdb_way() -> None:
    dns = zeek_header(ZEEK / "opt.basic" / "dns.log")
    assert dns is not None and dns.path == "dns" and dns.skip == 8 and not dns.gzip
    assert dns.fields[:3] == ["ts", "uid", "id.orig_h"]
    assert zeek_header(ZEEK / "opt.basic" / "conn.log") is not None
    assert zeek_header(ZEEK / "opt.basic" / "http.log") is None  # the Python source reads it
    assert zeek_header(DATA / "suricata" / "tenzir_rrdata-eve.json") is None


# -- semantics on logs written here ----------------------------------------------------------------


def test_domains_match_by_labels_not_substrings(tmp_path: Path) -> None:
    log = zeek_log(
        tmp_path / "dns.log",
        "dns",
        [
            "1700000000.000000 C1 10.1.1.1 5000 10.0.0.53 53 udp 1 michigan.org NOERROR 1.2.3.4",
            "1700000001.500000 C2 10.1.1.1 5001 10.0.0.53 53 udp 2 higan.org NOERROR -",
            "1700000002.000000 C3 10.1.1.2 5002 10.0.0.53 53 udp 3 WWW.Higan.Org. NOERROR (empty)",
            "1700000003.000000 C4 10.1.1.1 5003 10.0.0.53 53 udp 4 higan.org.evil.net NOERROR -",
            "1700000004.000000 C5 10.1.1.1 5004 10.0.0.53 53 udp 5 x.com NOERROR cdn.higan.org,5.6.7.8",
        ],
    )
    inds = [Indicator(T.DOMAIN, "higan.org", name="Higan C2", family="Higan", source="feed-a")]
    got = scan_batch([log], inds)
    assert got == streaming([log], inds)
    by_client = {a.client: a for a in got}
    assert set(by_client) == {"10.1.1.1", "10.1.1.2"}
    one = by_client["10.1.1.1"]
    assert (one.indicator_type, one.indicator, one.count) == ("domain", "higan.org", 2)
    assert one.fields == ["query", "answer"]
    assert one.examples == [(str(log), 9, "higan.org"), (str(log), 12, "cdn.higan.org")]
    assert one.first_seen == datetime(2023, 11, 14, 22, 13, 21, 500000, tzinfo=UTC)
    assert one.last_seen == datetime(2023, 11, 14, 22, 13, 24, tzinfo=UTC)
    assert (one.name, one.family, one.source_feed) == ("Higan C2", "Higan", "feed-a")
    assert by_client["10.1.1.2"].examples == [(str(log), 10, "www.higan.org")]


def test_cidrs_by_longest_prefix_and_exact_ips_too(tmp_path: Path) -> None:
    log = zeek_log(
        tmp_path / "conn.log",
        "conn",
        [
            "1700000000.0 C1 10.1.1.1 5000 203.0.113.200 443 tcp ssl",
            "1700000001.0 C2 10.1.1.1 5001 203.0.113.5 443 tcp ssl",
            "1700000002.0 C3 10.1.1.1 5002 198.51.100.7 80 tcp http",
            "1700000003.0 C4 198.51.100.9 5003 10.1.1.3 22 tcp ssh",
            "1700000004.0 C5 10.1.1.4 5004 192.0.2.1 53 udp dns",
        ],
    )
    inds = [
        Indicator(T.CIDR, "203.0.113.0/24", name="wide"),
        Indicator(T.CIDR, "203.0.113.128/25", name="narrow"),
        Indicator(T.IPV4, "198.51.100.7", name="exact"),
        Indicator(T.CIDR, "198.51.100.0/24", name="range"),
    ]
    got = scan_batch([log], inds)
    assert got == streaming([log], inds)
    seen = {(a.client, a.indicator, a.count, tuple(a.fields)) for a in got}
    assert seen == {
        ("10.1.1.1", "203.0.113.128/25", 1, ("server",)),
        ("10.1.1.1", "203.0.113.0/24", 1, ("server",)),
        ("10.1.1.1", "198.51.100.7", 1, ("server",)),
        ("10.1.1.1", "198.51.100.0/24", 1, ("server",)),
        # An inbound connection from a listed host: the internal side is the server.
        ("10.1.1.3", "198.51.100.0/24", 1, ("client",)),
    }


def test_bad_lines_are_counted_with_their_line_and_skipped(tmp_path: Path) -> None:
    log = zeek_log(
        tmp_path / "dns.log",
        "dns",
        [
            "1700000000.0 C1 10.1.1.1 5000 10.0.0.53 53 udp 1 evil.com NOERROR -",
            "1700000001.0 C2 10.1.1.1 5001 10.0.0.53 53 udp",
            "1700000002.0 C3 10.1.1.1 5002 10.0.0.53 53 udp 3 evil.com NOERROR - extra",
            "yesterday C4 10.1.1.1 5003 10.0.0.53 53 udp 4 evil.com NOERROR -",
            "1700000004.0 C5 - 5004 10.0.0.53 53 udp 5 evil.com NOERROR -",
            "1700000005.0 C6 10.1.1.1 5005 10.0.0.53 53 udp 6 a.evil.com NOERROR -",
        ],
    )
    inds = [Indicator(T.DOMAIN, "evil.com")]
    issues, want_issues = IssueLog(), IssueLog()
    got = scan_batch([log], inds, issues=issues)
    assert got == streaming([log], inds, issues=want_issues)
    assert [(i.line, i.path) for i in issues.issues] == [(n, str(log)) for n in (9, 10, 11, 12)]
    assert [i.line for i in issues.issues] == [i.line for i in want_issues.issues]
    assert len(got) == 1 and got[0].count == 2
    assert [e[1] for e in got[0].examples] == [8, 13]


def test_gzip_logs_are_read_by_duckdb(tmp_path: Path) -> None:
    plain = tmp_path / "dns.log"
    shutil.copy(ZEEK / "opt.basic" / "dns.log", plain)
    packed = tmp_path / "dns.log.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    header = zeek_header(packed)
    assert header is not None and header.gzip
    inds = [Indicator(T.DOMAIN, "wikimedia.org"), Indicator(T.CIDR, "208.80.152.0/24")]
    got = scan_batch([packed], inds)
    assert got == streaming([packed], inds)
    base = scan_batch([plain], inds)
    assert [(a.client, a.indicator, a.count) for a in got] == [
        (a.client, a.indicator, a.count) for a in base
    ]
    assert sum(a.count for a in got) > 10


def test_a_folder_mixes_duckdb_and_python_readers(tmp_path: Path) -> None:
    for sub in ("opt.basic", "scripts.base.files.x509.files"):
        shutil.copytree(ZEEK / sub, tmp_path / sub)
    shutil.copy(DATA / "suricata" / "fever_alertify_input.json", tmp_path / "eve.json")
    (tmp_path / "notes.txt").write_text("not a log\n")
    inds = _drawn_indicators([tmp_path])
    issues = IssueLog()
    got = scan_batch([tmp_path], inds, issues=issues)
    assert got == streaming([tmp_path], inds)
    assert {Path(e[0]).name for a in got for e in a.examples} >= {"dns.log", "conn.log"}
    assert [(Path(i.path).name, i.line) for i in issues.issues] == [("notes.txt", 0)]


def test_indicators_are_deduplicated_and_unindexable_ones_counted() -> None:
    issues = IssueLog()
    m = BatchMatcher(
        [
            Indicator(T.DOMAIN, "evil.com", confidence=10, name="low"),
            Indicator(T.DOMAIN, "EVIL.com.", confidence=90, name="high"),
            Indicator(T.IPV4, "not-an-ip", source="f.txt", line=3),
            Indicator(T.FILENAME, "x.exe"),
            Indicator(T.CIDR, "::ffff:198.51.100.0/120"),
        ],
        issues=issues,
    )
    assert m.counts() == {"dom": 1, "c4": 1}
    assert m.skipped == 2 and [(i.path, i.line) for i in issues.issues] == [("f.txt", 3)]
    ev = NetEvent("zeek:dns", client="10.0.0.1", query="a.evil.com", source="x", line=1)
    (alert,) = m.scan_events([ev])
    assert alert.name == "high"
    m.close()


def test_client_values_count_only_for_outside_clients(tmp_path: Path) -> None:
    # The prefilter never probes an internal client (its value could only be dropped later);
    # with other internal networks the same addresses are outside, and their listed clients hit.
    log = zeek_log(
        tmp_path / "dns.log",
        "dns",
        [
            "1700000000.0 C1 10.9.9.9 5000 10.0.0.53 53 udp 1 quiet.example NOERROR -",
            "1700000001.0 C2 192.168.7.7 5001 10.0.0.53 53 udp 2 quiet.example NOERROR -",
            "1700000002.0 C3 172.20.1.1 5002 10.0.0.53 53 udp 3 quiet.example NOERROR -",
        ],
    )
    inds = [
        Indicator(T.IPV4, "10.9.9.9", name="a"),
        Indicator(T.CIDR, "192.168.7.0/24", name="b"),
        Indicator(T.IPV4, "172.20.1.1", name="c"),
    ]
    assert scan_batch([log], inds) == streaming([log], inds) == []
    other = InternalNets(["10.0.0.0/24", "100.64.0.0/10"])
    m = BatchMatcher(inds, internal=other)
    got = m.scan([log])
    m.close()
    events = list(read_path(log, IssueLog()))
    want = aggregate(match_events(events, IndicatorSet.build(inds), internal=other))
    assert got == want
    assert {(a.indicator, a.client, tuple(a.fields)) for a in got} == {
        ("10.9.9.9", "10.0.0.53", ("client",)),
        ("192.168.7.0/24", "10.0.0.53", ("client",)),
        ("172.20.1.1", "10.0.0.53", ("client",)),
    }


def test_too_many_prefix_keys_make_every_address_a_candidate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import quet.netwatch.batch as batch

    monkeypatch.setattr(batch, "MAX_V4_PREFIX_KEYS", 0)
    log = zeek_log(
        tmp_path / "conn.log",
        "conn",
        [
            "1700000000.0 C1 10.1.1.1 5000 203.0.113.200 443 tcp ssl",
            "1700000001.0 C2 10.1.1.1 5001 198.51.100.5 443 tcp ssl",
            "1700000002.0 C3 203.0.113.9 5002 10.1.1.2 22 tcp ssh",
        ],
    )
    inds = [Indicator(T.CIDR, "203.0.0.0/16", name="wide")]
    m = BatchMatcher(inds)
    assert m._v4_all
    got = m.scan([log])
    m.close()
    assert got == streaming([log], inds)
    assert {(a.client, a.count) for a in got} == {("10.1.1.1", 1), ("10.1.1.2", 1)}


@pytest.mark.parametrize(
    "case",
    [
        test_domains_match_by_labels_not_substrings,
        test_cidrs_by_longest_prefix_and_exact_ips_too,
        test_bad_lines_are_counted_with_their_line_and_skipped,
        test_client_values_count_only_for_outside_clients,
    ],
)
def test_huge_logs_are_probed_row_by_row_with_the_same_answers(
    case: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import quet.netwatch.batch as batch

    monkeypatch.setattr(batch, "MAX_KEPT_BYTES", 0)
    case(tmp_path)
    log = tmp_path / "dns.log"
    shutil.copy(ZEEK / "opt.basic" / "dns.log", log)
    inds = _drawn_indicators([log])
    assert scan_batch([log], inds) == streaming([log], inds)
