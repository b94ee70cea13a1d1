"""Memory and lookup speed of IndicatorSet on 1 M indicators (500k domains, 400k IPv4, 50k CIDRs,
50k URLs), against the text size and a plain Python dict of the same strings; and the cost of
WarninglistSet.match (the shipped lists) per indicator, as `quet intel import` pays it.

Run: .venv/bin/python bench/intel_lookup.py [--scale 1.0] [--only warninglists|sets]
"""

from __future__ import annotations

import argparse
import gc
import ipaddress
import os
import random
import string
import sys
import time
from collections.abc import Iterator

import duckdb
import numpy as np
import psutil
import pyarrow as pa

from quet.indicators.model import Indicator, IndicatorType
from quet.indicators.sets import IndicatorSet
from quet.indicators.warninglists import WarninglistSet

T = IndicatorType
TLDS = ["com", "net", "org", "ru", "cn", "info", "xyz", "top", "vn", "com.vn", "co.uk", "io"]
FAMILIES = ["Mirai", "Emotet", "QakBot", "AgentTesla", "Formbook", "Ramnit", "Sality", "Gafgyt"]
SOURCES = ["urlhaus", "threatfox", "feodo", "maltrail", "misp-circl", "otx", "vncert"]


def rss() -> int:
    return int(psutil.Process().memory_info().rss)


def word(rng: random.Random) -> str:
    return "".join(rng.choices(string.ascii_lowercase + string.digits, k=rng.randint(4, 14)))


def make_domain(rng: random.Random) -> str:
    labels = [word(rng) for _ in range(rng.choice([1, 1, 1, 2, 3]))]
    return ".".join([*labels, rng.choice(TLDS)])


def make_values(n: int, rng: random.Random) -> dict[str, list[str]]:
    v4 = [str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(int(n * 0.4))]
    cidrs = [
        str(ipaddress.ip_network(f"{ipaddress.IPv4Address(rng.getrandbits(32))}/{p}", False))
        for p in rng.choices([16, 20, 22, 24, 24, 24, 28, 30], k=int(n * 0.05))
    ]
    doms = [make_domain(rng) for _ in range(int(n * 0.5))]
    urls = [
        f"http://{rng.choice(doms)}/{word(rng)}/{word(rng)}.php?id={rng.randint(1, 99999)}"
        for _ in range(int(n * 0.05))
    ]
    return {"ipv4": v4, "cidr": cidrs, "domain": doms, "url": urls}


def indicators(values: dict[str, list[str]], rng: random.Random) -> Iterator[Indicator]:
    for kind, items in values.items():
        for i, value in enumerate(items):
            yield Indicator(
                T(kind),
                value,
                name=f"{rng.choice(FAMILIES)} C2",
                family=FAMILIES[i % len(FAMILIES)],
                source=SOURCES[i % len(SOURCES)],
                confidence=rng.choice([50, 75, 90, 100]),
            )


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:,.0f}/s"


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def bench_warninglists(n: int, rng: random.Random) -> None:
    """µs per WarninglistSet.match over n mixed indicators shaped like the import benchmark's
    (IPv4 with some private and multicast ones, domains, URLs by name and by IP, SHA256)."""
    wls = WarninglistSet.default()
    inds: list[Indicator] = []
    for i in range(n):
        kind = i % 5
        if kind == 0:
            ip = f"{rng.randint(1, 239)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
            inds.append(Indicator(T.IPV4, ip))
        elif kind == 1:
            inds.append(Indicator(T.DOMAIN, make_domain(rng)))
        elif kind == 2:
            host = (
                make_domain(rng)
                if i % 3
                else f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
            )
            inds.append(Indicator(T.URL, f"http://{host}/p/{rng.getrandbits(32):x}.exe"))
        elif kind == 3:
            inds.append(Indicator(T.SHA256, f"{rng.getrandbits(256):064x}"))
        else:
            inds.append(Indicator(T.MD5, f"{rng.getrandbits(128):032x}"))
    match = wls.match
    t0 = time.perf_counter()
    hits = sum(1 for ind in inds if match(ind) is not None)
    took = time.perf_counter() - t0
    print(
        f"warninglists ({len(wls)} shipped lists): {took / n * 1e6:.2f} µs per match over "
        f"{n:,} mixed indicators ({took:.2f} s), {hits:,} suppressed; load {load()}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scale", type=float, default=1.0, help="1.0 = 1 M indicators")
    ap.add_argument("--queries", type=int, default=1_000_000)
    ap.add_argument("--only", choices=["warninglists", "sets"], default=None)
    args = ap.parse_args()
    n = int(1_000_000 * args.scale)
    print(f"load average: {load()} ({os.cpu_count()} CPUs)")
    if args.only != "sets":
        bench_warninglists(n, random.Random(3))
        if args.only == "warninglists":
            return
    rng = random.Random(7)
    values = make_values(n, rng)
    text_bytes = sum(len(v) + 1 for items in values.values() for v in items)
    total = sum(len(v) for v in values.values())
    print(f"indicators: {total:,} ({', '.join(f'{k} {len(v):,}' for k, v in values.items())})")
    print(f"text, one per line: {text_bytes / 2**20:.1f} MiB")

    gc.collect()
    before = rss()
    t0 = time.perf_counter()
    s = IndicatorSet.build(indicators(values, rng))
    build = time.perf_counter() - t0
    gc.collect()
    grown = rss() - before
    print(f"build: {build:.1f}s, {len(s):,} indicators, {s.counts()}")
    print(
        f"nbytes: {s.nbytes() / 2**20:.1f} MiB = {s.nbytes() / text_bytes:.2f}x text "
        f"({s.nbytes() / len(s):.1f} B/indicator); RSS growth {grown / 2**20:.1f} MiB"
    )

    # Queries: half hits (subdomains of listed domains, addresses in listed ranges), half misses.
    q = args.queries
    doms = values["domain"]
    dq = [
        (f"{word(rng)}.{rng.choice(doms)}" if i % 4 == 0 else rng.choice(doms))
        if i % 2
        else make_domain(rng)
        for i in range(q)
    ]
    v4 = values["ipv4"]
    nets = [ipaddress.ip_network(c) for c in values["cidr"]]
    iq = [
        (rng.choice(v4) if i % 4 == 1 else str(rng.choice(nets)[rng.randrange(4)]))
        if i % 2
        else str(ipaddress.IPv4Address(rng.getrandbits(32)))
        for i in range(q)
    ]
    t0 = time.perf_counter()
    res = s.lookup_ipv4_batch(iq)
    t_ip = time.perf_counter() - t0
    print(f"IPv4 batch (text): {rate(q, t_ip)}, {int((res >= 0).sum()):,} hits; load {load()}")
    as_int = np.array([int(ipaddress.IPv4Address(x)) for x in iq], dtype=np.uint32)
    t0 = time.perf_counter()
    res = s.lookup_ipv4_batch(as_int)
    print(f"IPv4 batch (uint32): {rate(q, time.perf_counter() - t0)}")
    s.lookup_domain_batch(dq[:10])  # builds the hash filter, once per set
    t0 = time.perf_counter()
    res = s.lookup_domain_batch(dq)
    t_dom = time.perf_counter() - t0
    print(
        f"domain batch (numpy suffix hashes, bit filter, bucket index): {rate(q, t_dom)}, "
        f"{int((res >= 0).sum()):,} hits; load {load()}; search index "
        f"{s.index_nbytes() / 2**20:.1f} MiB"
    )
    duckdb_path(values["domain"], dq)

    k = min(q, 100_000)
    mixed = [x for pair in zip(dq[: k // 2], iq[: k // 2], strict=True) for x in pair]
    t0 = time.perf_counter()
    hits = sum(1 for x in mixed if s.lookup(x))
    print(
        f"single lookup(), mixed domains and IPs: {rate(len(mixed), time.perf_counter() - t0)}, {hits:,} hits"
    )

    del s
    gc.collect()
    before = rss()
    plain = {
        v: (f"{rng.choice(FAMILIES)} C2", rng.choice(SOURCES))
        for items in values.values()
        for v in items
    }
    gc.collect()
    print(
        f"plain dict of the strings (value -> (name, source)): RSS growth "
        f"{(rss() - before) / 2**20:.1f} MiB = {(rss() - before) / text_bytes:.2f}x text "
        f"(getsizeof dict alone {sys.getsizeof(plain) / 2**20:.1f} MiB)"
    )


def duckdb_path(listed: list[str], queries: list[str]) -> None:
    """The vectorised alternative: DuckDB splits names into suffixes and hashes them with its
    own hash() (not stable across versions, not computable in Python), then a hash join."""
    con = duckdb.connect()
    listed_hashes = con.execute(
        "select hash(d) h from (select unnest($1) d)", [listed]
    ).fetchnumpy()["h"]
    keys = pa.table({"k": np.unique(listed_hashes)})
    tbl = pa.table({"n": queries})
    con.register("keys_t", keys)
    con.register("q", tbl)
    t0 = time.perf_counter()
    hits = con.execute(
        """select count(distinct i) from (
             select i, unnest(list_transform(range(len(p) - 1),
                    lambda j: array_to_string(p[j + 1:], '.'))) s
             from (select row_number() over () i, string_split(lower(n), '.') p from q)
           ) join keys_t on hash(s) = k"""
    ).fetchone()
    print(
        f"domain batch (DuckDB split + hash() + join, comparison only): {rate(len(queries), time.perf_counter() - t0)}, {hits[0] if hits else 0:,} hits"
    )


if __name__ == "__main__":
    main()
