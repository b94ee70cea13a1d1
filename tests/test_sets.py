"""IndicatorSet: label and prefix semantics, batch lookups agreeing with single ones, agreement
with a naive reference on random data, and save/load round trips (memory-mapped or not)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quet.errors import InputError
from quet.indicators.domainhash import (
    HashIndex,
    batch_suffixes,
    chunks,
    domain_hash,
    domain_key,
    name_hashes,
    suffix_hashes,
)
from quet.indicators.model import Indicator, IndicatorType, IssueLog, guess, make
from quet.indicators.sets import IndicatorSet

T = IndicatorType
SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def sample() -> IndicatorSet:
    return IndicatorSet.build(
        [
            make("ipv4", "10.1.2.3", name="exact", family="Mirai", source="feed-a"),
            make("cidr", "10.0.0.0/8", name="/8"),
            make("cidr", "10.1.0.0/16", name="/16 low", confidence=20),
            make("cidr", "10.1.0.0/16", name="/16 high", confidence=90),
            make("cidr", "10.1.2.0/24", name="/24"),
            make("domain", "evil.com", name="evil", tags=("c2", "botnet"), campaign="op1"),
            make("domain", "a.evil.com", name="a.evil"),
            make("domain", "higan.org", name="higan"),
            make("url", "HTTP://Evil.com:80/x?q=1#frag", name="url"),
            make("ipv6", "2001:db8::1", name="v6"),
            make("cidr", "2001:db8::/32", name="v6 net"),
            make("ipv6", "::ffff:192.0.2.7", name="mapped"),
            make("md5", "00" * 15 + "01", name="md5 ending"),
            make("md5", "01" + "00" * 15, name="md5 zeros"),  # trailing zero bytes
            make("sha256", SHA256, name="sha"),
            Indicator(T.FILENAME, r"\\evil\.exe$", name="skipped"),
        ]
    )


def names(s: IndicatorSet, value: str) -> list[str]:
    return [i.name for i in s.lookup(value)]


def test_build_counts_and_one_full_record() -> None:
    s = sample()
    assert len(s) == 15 and s.skipped == 1
    assert s.counts() == {
        "v4": 2, "v6": 1, "c4": 4, "c6": 1, "dom": 3, "url": 1, "md5": 2, "sha1": 0, "sha256": 1,
    }  # fmt: skip
    assert s.lookup("x.y.EVIL.com.") == [
        Indicator(
            T.DOMAIN, "evil.com", name="evil", tags=("c2", "botnet"), campaign="op1", confidence=50
        )
    ]
    assert s.lookup("10.1.2.3")[0] == Indicator(
        T.IPV4, "10.1.2.3", name="exact", family="Mirai", source="feed-a"
    )


def test_domains_match_by_labels() -> None:
    s = sample()
    assert names(s, "a.b.evil.com") == ["evil"]
    assert names(s, "x.a.evil.com") == ["a.evil", "evil"]  # most specific first
    assert names(s, "evil.com") == ["evil"]
    assert names(s, "michigan.org") == []
    assert names(s, "higan.org.evil.net") == []
    assert names(s, "com") == []
    assert [i.value for i in s.lookup("x.a.evil.com")] == ["a.evil.com", "evil.com"]


def test_ips_exact_then_longest_prefix() -> None:
    s = sample()
    assert names(s, "10.1.2.3") == ["exact", "/24"]
    assert names(s, "10.1.2.4") == ["/24"]
    assert names(s, "10.1.9.9") == ["/16 high", "/16 low"]  # duplicates: most confident first
    assert names(s, "10.200.0.1") == ["/8"]
    assert names(s, "11.0.0.1") == []
    assert names(s, "::ffff:10.1.2.3") == ["exact", "/24"]  # IPv4-mapped IPv6
    assert names(s, "192.0.2.7") == ["mapped"]
    assert s.lookup("192.0.2.7")[0].type is T.IPV4
    assert names(s, "2001:db8::1") == ["v6", "v6 net"]
    assert names(s, "2001:db8:ffff::1") == ["v6 net"]
    assert names(s, "2001:db9::1") == []
    assert names(s, "10.1.0.0/16") == ["/16 high", "/16 low"]
    assert [i.value for i in s.lookup("2001:db8::5")] == ["2001:db8::/32"]


def test_urls_hashes_and_junk() -> None:
    s = sample()
    assert names(s, "http://evil.com/x?q=1") == ["url", "evil"]
    assert s.lookup("http://evil.com/x?q=1")[0].value == "http://evil.com/x?q=1"
    assert names(s, "https://a.evil.com/") == ["a.evil", "evil"]
    assert names(s, "http://10.1.2.3:8080/") == ["exact", "/24"]
    assert names(s, "00" * 15 + "01") == ["md5 ending"]
    assert names(s, "01" + "00" * 15) == ["md5 zeros"]
    assert [i.value for i in s.lookup("01" + "00" * 15)] == ["01" + "00" * 15]
    assert names(s, SHA256.upper()) == ["sha"]
    for junk in ("", "   ", "300.1.1.1", "not a thing", "http://", "::g"):
        assert s.lookup(junk) == []


def test_batches_agree_with_single_lookups() -> None:
    s = sample()
    ips = ["10.1.2.3", "10.1.2.4", "10.1.9.9", "10.9.9.9", "11.0.0.1", "bad", "::ffff:10.1.2.3"]
    got = s.lookup_ipv4_batch(ips)
    assert got.dtype == np.int32
    assert [s.indicator(int(i)).name if i >= 0 else None for i in got] == [
        "exact", "/24", "/16 high", "/8", None, None, "exact",
    ]  # fmt: skip
    as_ints = np.array([int(ipaddress.IPv4Address(ip)) for ip in ips[:5]], dtype=np.uint32)
    assert list(s.lookup_ipv4_batch(as_ints)) == list(got[:5])
    doms = ["x.a.evil.com", "EVIL.COM.", "michigan.org", "higan.org", "com", "", "bücher.evil.com"]
    got = s.lookup_domain_batch(doms)
    assert [s.indicator(int(i), "?").name if i >= 0 else None for i in got] == [
        "a.evil", "evil", None, "higan", None, None, "evil",
    ]  # fmt: skip
    assert list(s.lookup_domain_batch(["higan.org", "a.EVIL.com."])) == [got[3], got[0]]
    assert list(s.lookup_domain_batch([])) == []


def test_bad_values_are_reported() -> None:
    issues = IssueLog()
    bad = [
        Indicator(T.IPV4, "999.1.1.1", source="f.txt", line=3),
        Indicator(T.DOMAIN, "localhost", source="f.txt", line=4),
        Indicator(T.MD5, "abc", source="f.txt", line=5),
        make("ipv4", "1.2.3.4"),
    ]
    s = IndicatorSet.build(bad, issues)
    assert len(s) == 1 and s.skipped == 3
    assert [(i.path, i.line) for i in issues.issues] == [("f.txt", 3), ("f.txt", 4), ("f.txt", 5)]


@pytest.mark.parametrize("mmap", [True, False])
def test_save_load_round_trip(tmp_path: Path, mmap: bool) -> None:
    s = sample()
    path = tmp_path / "intel.npz"
    s.save(path)
    loaded = IndicatorSet.load(path, mmap=mmap)
    assert len(loaded) == len(s) and loaded.skipped == 1 and loaded.nbytes() == s.nbytes()
    for q in ("x.a.evil.com", "10.1.9.9", "2001:db8::1", "http://evil.com/x?q=1", SHA256):
        assert loaded.lookup(q) == s.lookup(q)
    assert isinstance(loaded._a["v4_keys"], np.memmap) is mmap
    empty = IndicatorSet.build([])
    empty.save(tmp_path / "empty.npz")
    assert IndicatorSet.load(tmp_path / "empty.npz").lookup("1.2.3.4") == []
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match=r"junk\.npz"):
        IndicatorSet.load(tmp_path / "junk.npz")


# -- agreement with a naive reference on random data -------------------------------------

LABELS = ["a", "b", "evil", "higan", "michigan", "com", "org"]
domains = st.lists(st.sampled_from(LABELS), min_size=2, max_size=4).map(".".join)
ipv4s = st.builds(lambda x, y: f"10.0.{x}.{y}", st.integers(0, 3), st.integers(0, 7))
cidrs = st.builds(
    lambda ip, p: str(ipaddress.ip_network(f"{ip}/{p}", strict=False)), ipv4s, st.integers(8, 32)
)
ipv6s = st.builds(lambda x: f"2001:db8::{x:x}", st.integers(0, 7))
cidr6s = st.builds(lambda x, p: f"2001:db8::{x:x}/{p}", st.integers(0, 7), st.integers(120, 128))
items = st.one_of(
    st.tuples(st.just("domain"), domains),
    st.tuples(st.just("ipv4"), ipv4s),
    st.tuples(st.just("cidr"), cidrs),
    st.tuples(st.just("ipv6"), ipv6s),
    st.tuples(st.just("cidr"), cidr6s.map(lambda c: str(ipaddress.ip_network(c, strict=False)))),
)
queries = st.one_of(domains, ipv4s, ipv6s, ipv4s.map(lambda ip: f"::ffff:{ip}"))


def _net(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(value)


def naive(inds: list[Indicator], query: str) -> list[tuple[str, str, str]]:
    kind, v = guess(query)
    out: list[Indicator] = []
    if kind is T.DOMAIN:
        hits = [
            i for i in inds if i.type is T.DOMAIN and (v == i.value or v.endswith("." + i.value))
        ]
        out = sorted(hits, key=lambda i: -len(i.value))
    else:
        ip = ipaddress.ip_address(v)
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        out = [
            i for i in inds if i.type in (T.IPV4, T.IPV6) and ipaddress.ip_address(i.value) == ip
        ]
        nets = [i for i in inds if i.type is T.CIDR and ip in _net(i.value)]
        if nets:
            best = max(_net(i.value).prefixlen for i in nets)
            out += [i for i in nets if _net(i.value).prefixlen == best]
    return sorted((i.type.value, i.value, i.name) for i in out)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(items, max_size=30), st.lists(queries, min_size=1, max_size=20))
def test_lookup_agrees_with_naive_reference(spec: list[tuple[str, str]], qs: list[str]) -> None:
    inds = [make(kind, value, name=f"n{n}") for n, (kind, value) in enumerate(spec)]
    s = IndicatorSet.build(inds)
    for q in qs:
        got = sorted((i.type.value, i.value, i.name) for i in s.lookup(q))
        assert got == naive(inds, q), q
    v4 = [q for q in qs if guess(q)[0] is T.IPV4 or q.startswith("::ffff:")]
    dom = [q for q in qs if guess(q)[0] is T.DOMAIN]
    for q, idx in zip(v4, s.lookup_ipv4_batch(v4), strict=True):
        hits = s.lookup(q)
        assert (idx >= 0) == bool(hits)
        if hits:  # the best hit: the exact address, else the longest prefix
            assert s.indicator(int(idx)).value == hits[0].value
    for q, idx in zip(dom, s.lookup_domain_batch(dom), strict=True):
        hits = s.lookup(q)
        assert (idx >= 0) == bool(hits)
        if hits:  # the most specific suffix
            assert s.indicator(int(idx)).name in {h.name for h in hits if h.value == hits[0].value}


# -- the domain hash: one function, scalar and batch --------------------------------------

names_st = st.lists(
    st.text(alphabet="ab.-_Z\u00fc*", min_size=0, max_size=12), min_size=1, max_size=30
)


@settings(max_examples=200, deadline=None)
@given(names_st)
def test_batch_hashes_agree_with_the_scalar_hash(names: list[str]) -> None:
    keys = [domain_key(n) for n in names]
    keys = [k for k in keys if "\n" not in k]
    assert list(name_hashes(keys)) == [domain_hash(k) for k in keys]
    rev = "\n".join(keys).encode()[::-1]
    hashes, owner, count = batch_suffixes(rev)
    assert count == len(keys)
    got: list[list[int]] = [[] for _ in keys]
    for h, o in zip(hashes.tolist(), owner.tolist(), strict=True):
        got[len(keys) - 1 - o].append(h)
    for key, hs in zip(keys, got, strict=True):
        assert hs[::-1] == suffix_hashes(key), key  # most specific first
        suffixes = [key[i + 1 :] for i, c in enumerate(key) if c == "."]
        expected = [x for x in [key, *suffixes] if "." in x]
        assert hs[::-1] == [domain_hash(x) for x in expected], key


def test_domain_hash_is_stable() -> None:
    # Stored sets depend on it: a change needs a new FORMAT.
    assert domain_hash("evil.com") == 0xD25472F600E51969
    assert domain_hash("") == 0


def test_chunks_cover_every_name() -> None:
    rev = b"\n".join([b"a" * i for i in range(50)])
    pieces = [rev[lo:hi] for lo, hi in chunks(rev, size=40)]
    assert len(pieces) > 5 and b"\n".join(pieces) == rev


def test_big_and_raw_batches_agree_with_single_lookups() -> None:
    listed = [f"n{i}.evil{i % 7}.com" for i in range(0, 210_000, 3)]  # hashed in two batches
    listed += ["evil.org", "a.b.c.d.e.f"]
    s = IndicatorSet.build(make("domain", d, name=d) for d in listed)
    queries = [f"x.n{i}.evil{i % 7}.com" for i in range(40_000)]  # > 512 KiB: several chunks
    queries += ["", "com", " Evil.ORG ", "*.evil.org", "evil.org.", "x\nevil.org", "a.b.c.d.e.f",
                "f", "bücher.evil.org", "z" * 300 + ".evil.org", ".evil.org", "evil..org"]  # fmt: skip
    got = s.lookup_domain_batch(queries)
    for q, idx in zip(queries, got, strict=True):
        hits = s.lookup(q)
        assert (idx >= 0) == bool(hits), q
        if hits:
            assert s.indicator(int(idx)).name == hits[0].name, q
    assert int((got >= 0).sum()) == len(range(0, 40_000, 3)) + 7


def test_hash_index_finds_the_first_equal_row() -> None:
    rng = np.random.default_rng(5)
    keys = np.sort(np.concatenate([rng.integers(0, 2**64, 5000, dtype=np.uint64)] * 2))
    queries = np.concatenate([keys[::7], rng.integers(0, 2**64, 5000, dtype=np.uint64)])
    at, rows = HashIndex(keys).find(queries)
    first = np.searchsorted(keys, queries)
    expected = np.flatnonzero(keys[np.minimum(first, len(keys) - 1)] == queries)
    assert list(at) == list(expected) and list(rows) == list(first[expected])


def test_old_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "old.npz"
    sample().save(path)
    arrays = dict(np.load(path))
    arrays["format"] = np.array([1], dtype=np.int32)
    np.savez(path, **arrays)
    with pytest.raises(InputError, match=r"format 1.*build it again"):
        IndicatorSet.load(path)
