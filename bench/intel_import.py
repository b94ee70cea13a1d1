"""Benchmark of the intel store import: 1,000,000 random indicators (ipv4, domain, url, sha256)
into a fresh SQLite store, then the same again (all updates). Prints time and rate of each.

    .venv/bin/python bench/intel_import.py [--n 1000000] [--db URL] [--warninglists]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from quet.indicators.model import Indicator, IndicatorType
from quet.store.db import connect
from quet.store.intel import import_indicators, stats


def generate(n: int, seed: int = 1) -> Iterator[Indicator]:
    rnd = random.Random(seed)
    for i in range(n):
        kind = i % 4
        if kind == 0:
            ip = f"{rnd.randint(1, 223)}.{rnd.randint(0, 255)}.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}"
            yield Indicator(IndicatorType.IPV4, ip, family="Mirai", confidence=60)
        elif kind == 1:
            yield Indicator(
                IndicatorType.DOMAIN, f"h{rnd.getrandbits(48):x}.example-bad{i % 97}.com"
            )
        elif kind == 2:
            host = f"d{rnd.getrandbits(40):x}.example.net"
            yield Indicator(
                IndicatorType.URL, f"http://{host}/p/{rnd.getrandbits(32):x}.exe", tags=("payload",)
            )
        else:
            yield Indicator(
                IndicatorType.SHA256, f"{rnd.getrandbits(256):064x}", name="Win.Trojan.X"
            )


def run(n: int, url: str, use_warninglists: bool) -> None:
    engine = connect(url)
    lists = None
    if use_warninglists:
        from quet.indicators.warninglists import WarninglistSet

        lists = WarninglistSet.default()
    for label in ("first import (all new)", "re-import (all updates)"):
        start = time.perf_counter()
        summary = import_indicators(engine, generate(n), source="bench", warninglists=lists)
        took = time.perf_counter() - start
        print(
            f"{label}: {n:,} indicators in {took:.1f} s = {n / took:,.0f}/s "
            f"(added {summary.added:,}, updated {summary.updated:,}, "
            f"suppressed {summary.suppressed:,})"
        )
    print("store:", stats(engine)["by_type"])
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--db", default=None, help="store URL (default: a fresh SQLite file)")
    parser.add_argument("--warninglists", action="store_true", help="filter with the shipped lists")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'bench.sqlite'}"
        run(args.n, url, args.warninglists)


if __name__ == "__main__":
    main()
