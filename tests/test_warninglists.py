"""MISP warninglists: each list type's semantics on the real MISP lists, attribute fitting,
the shipped default set, and bad files reported by file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quet.errors import InputError
from quet.indicators.model import Indicator, IndicatorType, IssueLog, make
from quet.indicators.warninglists import Warninglist, WarninglistSet, read_list

DATA = Path(__file__).parent / "data" / "warninglists"
RFC1918 = "List of RFC 1918 CIDR blocks"
RFC5735 = "List of RFC 5735 CIDR blocks"
MULTICAST = "List of RFC 5771 multicast CIDR blocks"
DNS6 = "List of known IPv6 public DNS resolvers"
EMPTY = "List of known hashes for empty files"
SHORTENERS = "List of known URL Shorteners domains"
MYIP = "List of known domains to know external IP"
SINKHOLES = "List of known sinkholes"
TLDS = "TLDs as known by IANA"
TOP1K = "Top 1,000 domains from Cloudflare Radar"


def one(*names: str) -> WarninglistSet:
    issues = IssueLog()
    wls = WarninglistSet.load([DATA / n / "list.json" for n in names], issues)
    assert len(issues) == 0
    return wls


def m(wls: WarninglistSet, kind: str, value: str) -> str | None:
    return wls.match(make(kind, value))


def test_load_folder_counts_and_issues() -> None:
    issues = IssueLog()
    wls = WarninglistSet.load([DATA], issues)
    assert len(wls) == 13  # 10 real lists, 3 good synthetic ones (bad-entries keeps 2 nets)
    assert [str(i) for i in issues.issues] == [
        f"{DATA}/synthetic/bad-entries/list.json:6: empty or non-text entry: 7",
        f"{DATA}/synthetic/bad-json/list.json:8: not JSON: Expecting value",
        f"{DATA}/synthetic/bad-type/list.json:1: not a MISP warninglist: 'type' must be one "
        "of string, substring, hostname, cidr, regex, not 'bloom'",
        f"{DATA}/synthetic/bad-entries/list.json:5: not an IP network: '300.1.2.0/24'",
        f"{DATA}/synthetic/bad-entries/list.json:8: not an IP network: 'not-a-net'",
    ]
    bad = next(wl for wl in wls.lists if wl.slug == "bad-entries")
    assert bad.entries == ["192.0.2.0/24", "300.1.2.0/24", "2001:db8::/32", "not-a-net"]
    assert m(wls, "ipv6", "2001:db8::1") == "Test bad entries"


def test_one_fully_expected_list() -> None:
    wl = read_list(DATA / "rfc1918" / "list.json", IssueLog())
    assert wl == Warninglist(
        name=RFC1918,
        description="Event contains one or more entries part of the private network CIDR blocks (RFC 1918)",
        type="cidr",
        matching_attributes=("ip-src", "ip-dst", "domain|ip", "ip-dst|port", "ip-src|port"),
        entries=["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"],
        version=5,
        slug="rfc1918",
        path=str(DATA / "rfc1918" / "list.json"),
    )


def test_cidr_lists() -> None:
    wls = one("rfc1918", "public-dns-v6", "sinkholes")
    assert m(wls, "ipv4", "10.200.3.4") == RFC1918
    assert m(wls, "ipv4", "172.31.255.255") == RFC1918
    assert m(wls, "ipv4", "172.32.0.0") is None
    assert m(wls, "ipv4", "11.0.0.1") is None
    assert m(wls, "ipv6", "::ffff:192.168.1.1") == RFC1918  # IPv4-mapped IPv6
    assert m(wls, "cidr", "10.1.0.0/16") == RFC1918  # inside a listed network
    assert m(wls, "cidr", "10.0.0.0/7") is None  # wider than it: not all benign
    assert m(wls, "ipv6", "2001:4860:4860::8888") == DNS6
    assert m(wls, "ipv6", "2001:4860:4860::8887") is None
    assert m(wls, "ipv4", "104.244.13.7") == SINKHOLES  # 104.244.12.0/22
    assert m(wls, "ipv4", "104.155.11.149") == SINKHOLES  # a bare address entry
    # A URL is checked by its host; a domain is never resolved against CIDR lists.
    assert m(wls, "url", "http://192.168.1.1:8080/admin") == RFC1918
    assert m(wls, "url", "http://[2001:4860:4860::8888]/") == DNS6
    assert m(wls, "url", "http://8.8.8.8/") is None
    assert m(wls, "domain", "10.0.0.1.example.com") is None
    assert m(wls, "md5", "d41d8cd98f00b204e9800998ecf8427e") is None


def test_string_lists_are_exact_and_case_insensitive() -> None:
    wls = one("empty-hashes", "tlds", "cloudflare-top1k")
    assert m(wls, "md5", "D41D8CD98F00B204E9800998ECF8427E") == EMPTY
    assert m(wls, "sha1", "da39a3ee5e6b4b0d3255bfef95601890afd80709") == EMPTY
    sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert m(wls, "sha256", sha256) == EMPTY
    assert m(wls, "sha256", "0" * 64) is None
    assert wls.match(Indicator(IndicatorType.DOMAIN, "com")) == TLDS  # list has "COM"
    assert m(wls, "domain", "google.com") == TOP1K
    assert m(wls, "domain", "mail.google.com") is None  # string lists do not walk labels
    assert m(wls, "url", "https://google.com/x") is None
    assert m(wls, "ipv4", "1.1.1.1") is None


def test_hostname_lists_match_by_labels() -> None:
    wls = one("url-shortener", "whats-my-ip")
    assert m(wls, "domain", "bit.ly") == SHORTENERS
    assert m(wls, "domain", "a.b.bit.ly") == SHORTENERS
    assert m(wls, "domain", "notbit.ly") is None  # never by substring
    assert m(wls, "url", "https://bit.ly/3xYz") == SHORTENERS
    assert m(wls, "url", "https://x.api.ipify.org/?format=json") == MYIP
    assert m(wls, "domain", "checkip.dyndns.org") == MYIP
    assert m(wls, "domain", "dyndns.org") is None  # the parent of a listed name is not listed
    assert m(wls, "sha1", "da39a3ee5e6b4b0d3255bfef95601890afd80709") is None


def test_substring_and_regex_lists() -> None:
    wls = one("synthetic/substring", "synthetic/regex")
    assert m(wls, "domain", "download.windowsupdate.com") == "Test substring list"
    assert m(wls, "url", "http://x.test/wp-content/plugins/akismet/a.js") == "Test substring list"
    assert m(wls, "url", "http://x.test/wp-content/plugins/other/a.js") is None
    assert m(wls, "ipv4", "1.2.3.4") is None  # substring list fits url/hostname/domain only
    # No matching_attributes: the regex list applies to every type.
    assert m(wls, "domain", "0123456789abcdef0123456789abcdef.example") == "Test regex list"
    assert m(wls, "domain", "0123456789abcdef0123456789abcdef.example.org") is None
    assert m(wls, "url", "HTTPS://CDN.Foo.test/x") == "Test regex list"  # /.../i flag
    assert m(wls, "url", "https://cdn.foo.test.evil.com/x") is None


def test_first_list_wins() -> None:
    wls = one("rfc5735", "rfc1918", "multicast")
    assert m(wls, "ipv4", "10.0.0.1") == RFC5735
    assert m(wls, "ipv4", "239.1.2.3") == RFC5735  # 224/4 is in RFC 5735 too
    assert one("multicast", "rfc5735").match(make("ipv4", "239.1.2.3")) == MULTICAST


def test_default_set() -> None:
    wls = WarninglistSet.default()
    assert sorted(wl.slug for wl in wls.lists) == [
        "empty-hashes",
        "multicast",
        "public-dns-v6",
        "rfc1918",
        "rfc5735",
        "rfc6598",
    ]
    assert m(wls, "ipv4", "100.64.1.1") == "List of RFC 6598 CIDR blocks"
    assert m(wls, "ipv4", "127.0.0.1") == RFC5735
    assert m(wls, "md5", "d41d8cd98f00b204e9800998ecf8427e") == EMPTY
    assert m(wls, "ipv4", "104.155.11.149") is None  # sinkholes are interesting, not benign
    assert m(wls, "domain", "bit.ly") is None
    assert m(wls, "ipv4", "3.5.140.2") is None  # cloud ranges are not suppressed


def test_missing_path_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such warninglist"):
        WarninglistSet.load([tmp_path / "nope"], IssueLog())


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    text=st.one_of(
        st.text(max_size=200),
        st.builds(
            lambda kind, entries, attrs: json.dumps(
                {"name": "x", "type": kind, "list": entries, "matching_attributes": attrs}
            ),
            st.sampled_from(["string", "substring", "hostname", "cidr", "regex", "nope"]),
            st.lists(st.one_of(st.text(max_size=30), st.integers(), st.none()), max_size=8),
            st.lists(st.sampled_from(["ip-src", "domain", "url", "md5", "email"]), max_size=3),
        ),
    ),
    probe=st.sampled_from(
        [("ipv4", "10.0.0.1"), ("domain", "a.example.com"), ("url", "http://x.org/(")]
    ),
)
def test_arbitrary_files_never_raise(tmp_path: Path, text: str, probe: tuple[str, str]) -> None:
    path = tmp_path / "list.json"
    path.write_text(text, encoding="utf-8")
    issues = IssueLog()
    wls = WarninglistSet.load([path], issues)
    assert len(wls) in (0, 1)
    if len(wls) == 0:
        assert len(issues) >= 1 and all(i.path == str(path) for i in issues.issues)
    result = wls.match(make(*probe))
    assert result in (None, "x")


# -- the merged plans agree with the plain list-by-list walk ------------------------------

PROBES = [
    ("ipv4", "10.200.3.4"), ("ipv4", "104.155.11.149"), ("ipv4", "239.1.2.3"),
    ("ipv4", "8.8.8.8"), ("ipv4", "192.0.2.9"), ("ipv6", "2001:4860:4860::8888"),
    ("ipv6", "::ffff:192.168.1.1"), ("ipv6", "2001:db8::1"), ("cidr", "10.1.0.0/16"),
    ("cidr", "10.0.0.0/7"), ("cidr", "2001:db8::/48"), ("domain", "a.b.bit.ly"),
    ("domain", "google.com"), ("domain", "checkip.dyndns.org"), ("domain", "com"),
    ("domain", "download.windowsupdate.com"), ("md5", "d41d8cd98f00b204e9800998ecf8427e"),
    ("sha1", "da39a3ee5e6b4b0d3255bfef95601890afd80709"), ("url", "https://bit.ly/3xYz"),
    ("url", "http://192.168.1.1:8080/admin"), ("url", "http://[2001:4860:4860::8888]/"),
    ("url", "HTTPS://CDN.Foo.test/x"), ("url", "http://u:p@10.0.0.1/"), ("url", "bit.ly/x"),
    ("url", "http://x.test/wp-content/plugins/akismet/a.js"), ("url", "http://[::1/"),
]  # fmt: skip


def test_merged_plans_agree_with_the_walk_on_real_lists() -> None:
    wls = WarninglistSet.load([DATA], IssueLog())
    answers = []
    for kind, value in PROBES:
        ind = Indicator(IndicatorType(kind), value)
        answers.append(wls.match(ind))
        assert answers[-1] == wls._match_each(ind), value
    assert sum(a is not None for a in answers) == 23
    # Raw (not normalised) values go the slow way and still agree.
    for kind, value in [("ipv4", " 10.0.0.1 "), ("domain", "A.Bit.LY."), ("url", "bit.ly/x")]:
        ind = Indicator(IndicatorType(kind), value)
        assert wls.match(ind) == wls._match_each(ind) is not None


ENTRIES = {
    "cidr": ["10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "192.0.2.0/24", "2001:db8::/32",
             "2001:db8::/64", "0.0.0.0/0", "::ffff:10.9.0.0/112", "10.1.2.3"],
    "hostname": ["evil.com", "a.evil.com", "com", "10.1.2.3", "*.bit.ly", "2001:db8::1"],
    "string": ["evil.com", "10.1.2.3", "http://evil.com/", "D41D8CD98F00B204E9800998ECF8427E",
               "2001:DB8::1", "com"],
    "substring": ["evil", "10.1", "/x"],
    "regex": [r"^a\.", r"/EVIL/i", r"\d+$"],
}  # fmt: skip
ATTRS = ["ip-src", "domain", "hostname", "url", "md5", "domain|ip", "email", "filename|md5"]
VALUES = st.sampled_from(
    [
        ("ipv4", "10.1.2.3"), ("ipv4", "10.2.0.1"), ("ipv4", "192.0.2.1"), ("ipv4", "1.1.1.1"),
        ("ipv6", "2001:db8::1"), ("ipv6", "2001:db8:1::1"), ("ipv6", "::ffff:10.9.1.1"),
        ("cidr", "10.1.0.0/16"), ("cidr", "10.0.0.0/7"), ("cidr", "2001:db8::/40"),
        ("domain", "evil.com"), ("domain", "x.a.evil.com"), ("domain", "b.evil.net"),
        ("domain", "a.b.bit.ly"), ("url", "http://evil.com/"), ("url", "http://10.1.2.3/x"),
        ("url", "https://x.a.evil.com:8443/p?q=1"), ("url", "http://[2001:db8::1]/"),
        ("url", "http://b.bit.ly/y1"), ("md5", "d41d8cd98f00b204e9800998ecf8427e"),
        ("md5", "0" * 32),
    ]
)  # fmt: skip
LISTS = st.lists(
    st.builds(
        lambda kind, attrs, picks: (kind, attrs, picks),
        st.sampled_from(sorted(ENTRIES)),
        st.lists(st.sampled_from(ATTRS), max_size=3, unique=True),
        st.lists(st.integers(0, 8), min_size=1, max_size=4),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(LISTS, st.lists(VALUES, min_size=1, max_size=10))
def test_merged_plans_agree_with_the_walk(
    spec: list[tuple[str, list[str], list[int]]], values: list[tuple[str, str]]
) -> None:
    lists = [
        Warninglist(
            f"l{i}", "", kind, tuple(attrs), [ENTRIES[kind][p % len(ENTRIES[kind])] for p in picks]
        )
        for i, (kind, attrs, picks) in enumerate(spec)
    ]
    wls = WarninglistSet(lists)
    for kind, value in values:
        ind = make(kind, value)
        assert wls.match(ind) == wls._match_each(ind), (kind, value)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=40),
        st.builds(
            lambda scheme, host, rest: f"{scheme}://{host}{rest}",
            st.sampled_from(["http", "HTTPS", "h-x+y.z", "1x", "ht tp"]),
            st.text(alphabet="aB9.-:@[]%_ \t\u00e9", max_size=20),
            st.sampled_from(["", "/", "/p?q", "?x", "#f", ":80/", "\n/"]),
        ),
    )
)
def test_fast_url_host_agrees_with_urlsplit(url: str) -> None:
    from quet.indicators.warninglists import _fast_url_host, _url_host

    assert _fast_url_host(url) == _url_host(url)
