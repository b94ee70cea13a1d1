"""Memory and lookup speed of HashSet: 1M random SHA256 + 1M MD5 signatures.

Run: .venv/bin/python bench/hashes_memory.py [--n 1000000]
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import time

import psutil

from quet.indicators.hashes import HashSet
from quet.indicators.model import Indicator, IndicatorType


def rss() -> int:
    return int(psutil.Process().memory_info().rss)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=1_000_000, help="signatures per hash type")
    ap.add_argument("--lookups", type=int, default=100_000)
    args = ap.parse_args()
    rng = random.Random(1)
    gc.collect()
    before = rss()
    t0 = time.perf_counter()
    hs = HashSet()
    names = [f"Win.Trojan.Family{i}-{i * 7}" for i in range(1000)]  # DBs repeat names a lot
    keep_sha: list[str] = []
    keep_md5: list[str] = []
    for i in range(args.n):
        sha = rng.randbytes(32).hex()
        md5 = rng.randbytes(16).hex()
        if i % (args.n // 1000 or 1) == 0:
            keep_sha.append(sha)
            keep_md5.append(md5)
        size = None if i % 3 == 0 else rng.randrange(1, 10_000_000)
        hs.add(
            Indicator(IndicatorType.SHA256, sha, name=names[i % 1000], source="main.hsb", size=size)
        )
        hs.add(
            Indicator(IndicatorType.MD5, md5, name=names[i % 1000], source="main.hdb", size=size)
        )
    t_add = time.perf_counter() - t0
    hs.freeze()
    t_build = time.perf_counter() - t0
    gc.collect()
    after = rss()
    print(f"signatures: {len(hs):,} {hs.counts()}")
    print(f"add: {t_add:.1f}s, add+freeze: {t_build:.1f}s")
    print(f"nbytes: {hs.nbytes() / 2**20:.1f} MiB ({hs.nbytes() / len(hs):.1f} B/signature)")
    print(
        f"RSS growth: {(after - before) / 2**20:.1f} MiB ({(after - before) / len(hs):.1f} B/signature)"
    )

    probes = [rng.randbytes(32).hex() for _ in range(args.lookups)]
    md5s = [rng.randbytes(16).hex() for _ in range(args.lookups)]
    t0 = time.perf_counter()
    for sha, md5 in zip(probes, md5s, strict=True):
        hs.lookup(md5, "", sha, 1234)
    dt = time.perf_counter() - t0
    print(
        f"lookup (miss, md5+sha256): {args.lookups / dt:,.0f}/s, {dt / args.lookups * 1e6:.1f} us each"
    )
    t0 = time.perf_counter()
    found = 0
    reps = max(1, args.lookups // len(keep_sha))
    for _ in range(reps):
        for sha, md5 in zip(keep_sha, keep_md5, strict=True):
            found += bool(hs.lookup(md5, "", sha, -1))
    dt = time.perf_counter() - t0
    n = reps * len(keep_sha)
    print(f"lookup (hit): {n / dt:,.0f}/s, {dt / n * 1e6:.1f} us each; {found}/{n} found")
    assert found == n
    if os.environ.get("QUET_BENCH_STRICT"):
        assert hs.nbytes() / len(hs) < 64


if __name__ == "__main__":
    main()
