"""IPSet (exact, then longest prefix) and DomainSet (label-boundary matching)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quet.indicators.formats.loki import read_c2
from quet.indicators.model import Indicator, IndicatorType, IssueLog, make
from quet.indicators.netsets import DomainSet, IPSet

DATA = Path(__file__).parent / "data"


def ipset(*items: tuple[str, str]) -> IPSet:
    s = IPSet()
    for kind, value in items:
        s.add(make(kind, value, name=value))
    s.freeze()
    return s


def test_exact_before_longest_prefix() -> None:
    s = ipset(
        ("cidr", "10.0.0.0/8"),
        ("cidr", "10.1.0.0/16"),
        ("cidr", "10.1.2.0/24"),
        ("ipv4", "10.1.2.3"),
    )
    assert s.lookup("10.1.2.3").name == "10.1.2.3"  # type: ignore[union-attr]
    assert s.lookup("10.1.2.4").name == "10.1.2.0/24"  # type: ignore[union-attr]
    assert s.lookup("10.1.9.9").name == "10.1.0.0/16"  # type: ignore[union-attr]
    assert s.lookup("10.200.0.1").name == "10.0.0.0/8"  # type: ignore[union-attr]
    assert s.lookup("11.0.0.1") is None
    assert len(s) == 4


def test_ipv6_and_mapped_and_bad_input() -> None:
    s = ipset(("ipv6", "2001:DB8::1"), ("cidr", "2001:db8:abcd::/48"), ("ipv4", "192.0.2.7"))
    assert s.lookup("2001:db8:0:0:0:0:0:1") is not None
    assert s.lookup("[2001:db8::1]") is not None
    assert s.lookup("2001:db8:abcd:1::5").name == "2001:db8:abcd::/48"  # type: ignore[union-attr]
    assert s.lookup("2001:db8:abce::1") is None
    assert s.lookup("::ffff:192.0.2.7") is not None  # IPv4-mapped IPv6 is the IPv4 address
    for bad in ("", "300.1.1.1", "evil.com", "1.2.3", "::g"):
        assert s.lookup(bad) is None
    # an IPv4 network never matches IPv6 addresses of the same integer value
    s4 = ipset(("cidr", "0.0.0.0/8"))
    assert s4.lookup("::1") is None
    assert s4.lookup("0.1.2.3") is not None


def test_lookup_before_freeze_and_host_cidr() -> None:
    s = IPSet()
    s.add(make("cidr", "198.51.100.0/24"))
    s.add(make("cidr", "203.0.113.9/32"))
    assert s.lookup("198.51.100.200") is not None
    assert s.lookup("203.0.113.9") is not None
    assert s.lookup("203.0.113.10") is None


def test_duplicates_keep_the_most_confident() -> None:
    s = IPSet()
    s.add(make("ipv4", "192.0.2.1", name="low", confidence=20))
    s.add(make("ipv4", "192.0.2.1", name="high", confidence=90))
    s.add(make("ipv4", "192.0.2.1", name="later-equal", confidence=90))
    assert len(s) == 1
    assert s.lookup("192.0.2.1").name == "high"  # type: ignore[union-attr]


def test_rejects_other_types() -> None:
    with pytest.raises(ValueError):
        IPSet().add(make("domain", "evil.com"))
    with pytest.raises(ValueError):
        DomainSet().add(make("ipv4", "1.2.3.4"))


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 32)), min_size=1, max_size=20),
    st.integers(0, 2**32 - 1),
)
def test_longest_prefix_matches_ipaddress(nets: list[tuple[int, int]], probe: int) -> None:
    s = IPSet()
    networks = []
    for addr, plen in nets:
        net = ipaddress.ip_network((addr, plen), strict=False)
        networks.append(net)
        s.add(Indicator(IndicatorType.CIDR, net.compressed, name=net.compressed))
    ip = ipaddress.ip_address(probe)
    containing = [n for n in networks if ip in n]
    hit = s.lookup(str(ip))
    if not containing:
        assert hit is None
    else:
        assert hit is not None
        assert ipaddress.ip_network(hit.value).prefixlen == max(n.prefixlen for n in containing)
        assert ip in ipaddress.ip_network(hit.value)


def domains(*names: str) -> DomainSet:
    d = DomainSet()
    for n in names:
        d.add(make("domain", n, name=n))
    return d


def test_domain_labels_not_substrings() -> None:
    d = domains("higan.org", "evil.com")
    assert d.lookup("michigan.org") is None
    assert d.lookup("higan.org.example") is None
    assert d.lookup("xevil.com") is None
    assert d.lookup("a.b.evil.com").name == "evil.com"  # type: ignore[union-attr]
    assert d.lookup("EVIL.COM.").name == "evil.com"  # type: ignore[union-attr]
    assert d.lookup("www.higan.org").name == "higan.org"  # type: ignore[union-attr]
    assert d.lookup("") is None
    assert d.lookup(".") is None
    assert d.lookup("com") is None
    assert len(d) == 2


def test_most_specific_wins_and_idna() -> None:
    d = domains("example.com", "cdn.example.com", "bücher.de")
    assert d.lookup("x.cdn.example.com").name == "cdn.example.com"  # type: ignore[union-attr]
    assert d.lookup("x.www.example.com").name == "example.com"  # type: ignore[union-attr]
    assert d.lookup("shop.BÜCHER.de") is not None
    assert d.lookup("shop.xn--bcher-kva.de") is not None


def test_real_loki_c2_list() -> None:
    issues = IssueLog()
    ips, names = IPSet(), DomainSet()
    for ind in read_c2(DATA / "loki" / "c2-iocs.first500.txt", issues):
        (names if ind.type is IndicatorType.DOMAIN else ips).add(ind)
    ips.freeze()
    assert len(issues) == 0
    hit = names.lookup("deep.sub.me.scieron.com")
    assert hit is not None and hit.value == "me.scieron.com"
    assert names.lookup("scieron.com") is None  # only the subdomain is listed
    ip = ips.lookup("58.64.143.244")
    assert ip is not None and ip.name.startswith("FireEye Operation Snowman")
    assert ips.lookup("58.64.143.245") is None
