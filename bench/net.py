"""Network watch benchmark: 10 M Zeek dns.log events against 1 M indicators — Quét's batch path
(DuckDB joins), its follow path (the streaming matcher), `grep -F -f` and a plain Python loop.

Run: .venv/bin/python bench/net.py [--events 10000000] [--indicators 1000000] [--follow 1000000]
The generated log and indicator list are cached under bench/out/net/ (rebuilt when sizes change).
"""

from __future__ import annotations

import argparse
import gc
import ipaddress
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.compute as pc

from quet.indicators.model import Indicator, IndicatorType

T = IndicatorType
OUT = Path(__file__).parent / "out" / "net"
TLDS = ["com", "net", "org", "ru", "cn", "info", "xyz", "top", "vn", "com.vn", "co.uk", "io", "de"]
SUBS = ["", "", "", "www", "mail", "api", "cdn", "static", "img", "login", "m", "update", "s3"]
SYLLABLES = [
    "ka", "lo", "mi", "chi", "gan", "ter", "net", "web", "shop", "bank", "cloud", "data", "tech",
    "viet", "nam", "ha", "noi", "sai", "gon", "tin", "bao", "news", "go", "my", "sun", "star",
    "link", "hub", "soft", "info", "media", "store", "game", "play", "pay", "mail", "host", "box",
]  # fmt: skip
FAMILIES = ["Mirai", "Emotet", "QakBot", "AgentTesla", "Formbook", "Ramnit", "Sality", "Gafgyt"]
FEEDS = ["urlhaus", "threatfox", "feodo", "maltrail", "misp-circl", "otx", "vncert"]
HEADER = (
    "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tdns\n"
    "#open\t2026-11-25-08-00-00\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\t"
    "proto\ttrans_id\trtt\tquery\tqclass\tqclass_name\tqtype\tqtype_name\trcode\trcode_name\tAA\t"
    "TC\tRD\tRA\tZ\tanswers\tTTLs\trejected\n#types\ttime\tstring\taddr\tport\taddr\tport\tenum\t"
    "count\tinterval\tstring\tcount\tstring\tcount\tstring\tcount\tstring\tbool\tbool\tbool\tbool\t"
    "count\tvector[string]\tvector[interval]\tbool\n"
)


# -- data ----------------------------------------------------------------------------------


def _name(rng: random.Random) -> str:
    return "".join(rng.choices(SYLLABLES, k=rng.randint(2, 4)))


def _dga(rng: random.Random) -> str:
    return "".join(rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=rng.randint(6, 14)))


def _public(rng: random.Random) -> ipaddress.IPv4Address:
    """A public unicast address: feeds do not list private ranges (warninglists drop them)."""
    while True:
        ip = ipaddress.IPv4Address(rng.randrange(1 << 24, 223 << 24))
        if ip.is_global:
            return ip


def make_indicators(n: int, rng: random.Random) -> dict[str, list[str]]:
    """85 % domains (some readable, most DGA-like), 12 % IPv4, 3 % CIDRs (/16 to /30)."""
    n_dom, n_ip = int(n * 0.85), int(n * 0.12)
    doms: set[str] = set()
    while len(doms) < n_dom:
        base = _name(rng) if rng.random() < 0.3 else _dga(rng)
        doms.add(f"{base}.{rng.choice(TLDS)}")
    ips = {str(_public(rng)) for _ in range(n_ip)}
    cidrs = {
        str(ipaddress.ip_network(f"{_public(rng)}/{p}", False))
        for p in rng.choices([20, 22, 24, 24, 24, 24, 28, 30], k=n - n_dom - n_ip)
    }
    return {"domain": sorted(doms), "ipv4": sorted(ips), "cidr": sorted(cidrs)}


def iter_indicators(values: dict[str, list[str]]) -> Iterator[Indicator]:
    for kind, items in values.items():
        for i, value in enumerate(items):
            yield Indicator(
                T(kind),
                value,
                name=f"{FAMILIES[i % 8]} C2",
                family=FAMILIES[i % 8],
                source=FEEDS[i % len(FEEDS)],
            )


def _pick(pool: list[str], idx: np.ndarray) -> pa.Array:
    return pa.array(pool).take(pa.array(idx))


def write_log(path: Path, n: int, values: dict[str, list[str]], seed: int = 11) -> dict[str, int]:
    """A Zeek dns.log of n lines: 98.5 % benign names (Zipf popularity, many subdomains), 1 %
    queries for a listed domain or one of its subdomains, 0.5 % near misses that only substring
    matching takes for hits (`x` + a listed name: `michigan.org` beside `higan.org`); answers
    are IPs, 0.1 % of them listed. Built column by column with numpy and pyarrow."""
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    benign = sorted({f"{_name(rng)}{rng.randint(0, 99) if rng.random() < 0.3 else ''}.{rng.choice(TLDS)}" for _ in range(300_000)})
    listed = set(values["domain"])
    benign = [b for b in benign if b not in listed]
    sub_benign = [f"{s}.{b}" if s else b for b in benign for s in [rng.choice(SUBS)]]
    doms = values["domain"]
    listed_ips = values["ipv4"]
    clients = [f"10.{i // 250}.{i % 250}.{rng.randint(1, 254)}" for i in range(5000)]
    counts = {"hits": 0, "near": 0, "ip_hits": 0}
    chunk = 1_000_000
    with open(path, "w") as f:
        f.write(HEADER)
    with open(path, "ab") as f:
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            kind = nrng.random(m)
            hit = kind < 0.01
            near = (kind >= 0.01) & (kind < 0.015)
            zipf = (nrng.zipf(1.1, m) - 1) % len(sub_benign)
            pool_idx = (zipf * 7919) % len(sub_benign)  # spread popularity over the names
            query = _pick(sub_benign, pool_idx).to_pylist()
            for i in np.flatnonzero(hit):
                d = doms[int(nrng.integers(len(doms)))]
                query[i] = d if nrng.random() < 0.5 else f"{rng.choice(SUBS[3:])}.{d}"
            for i in np.flatnonzero(near):
                query[i] = "x" + doms[int(nrng.integers(len(doms)))]
            counts["hits"] += int(hit.sum())
            counts["near"] += int(near.sum())
            # A name mostly resolves to the same address (10 % of answers vary, as with CDNs).
            ans_ip = nrng.integers(1 << 24, 223 << 24, m, dtype=np.int64)
            keep = (nrng.random(m) < 0.9) & ~hit & ~near
            ans_ip[keep] = (pool_idx[keep] * 2654435761) % (222 << 24) + (1 << 24)
            answers = [
                f"{a >> 24}.{(a >> 16) & 255}.{(a >> 8) & 255}.{a & 255}" for a in ans_ip.tolist()
            ]
            aaaa = nrng.random(m) < 0.3
            ip_hit = (nrng.random(m) < 0.001) & ~aaaa
            for i in np.flatnonzero(ip_hit):
                answers[i] = listed_ips[int(nrng.integers(len(listed_ips)))]
            counts["ip_hits"] += int(ip_hit.sum())
            micros = 1764057600_000000 + (start + np.arange(m)) * 500
            cols = [
                pc.binary_join_element_wise(
                    pc.cast(pa.array(micros // 1_000_000), pa.string()),
                    pc.utf8_lpad(pc.cast(pa.array(micros % 1_000_000), pa.string()), 6, "0"),
                    ".",
                ),
                pc.binary_join_element_wise("C", pc.cast(pa.array(nrng.integers(10**15, 10**16, m)), pa.string()), ""),
                _pick(clients, nrng.integers(0, len(clients), m)),
                pc.cast(pa.array(nrng.integers(1024, 65535, m)), pa.string()),
                pa.array(["10.0.0.53"] * m),
                pa.array(["53"] * m),
                pa.array(["udp"] * m),
                pc.cast(pa.array(nrng.integers(0, 65535, m)), pa.string()),
                pa.array(["0.000412"] * m),
                pa.array(query),
                pa.array(["1"] * m),
                pa.array(["C_INTERNET"] * m),
                pa.array(np.where(aaaa, "28", "1")),
                pa.array(np.where(aaaa, "AAAA", "A")),
                pa.array(["0"] * m),
                pa.array(["NOERROR"] * m),
                pa.array(["F"] * m), pa.array(["F"] * m), pa.array(["T"] * m), pa.array(["T"] * m),
                pa.array(["0"] * m),
                pc.if_else(pa.array(aaaa), pa.scalar("-"), pa.array(answers)),
                pc.if_else(pa.array(aaaa), pa.scalar("-"), pa.scalar("300.000000")),
                pa.array(["F"] * m),
            ]  # fmt: skip
            lines = pc.binary_join_element_wise(*cols, "\t")
            body = "\n".join(lines.to_pylist()) + "\n"
            f.write(body.encode())
    return counts
