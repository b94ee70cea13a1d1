"""Follow-mode throughput of `quet net watch`: a Zeek dns.log of N lines (10% of queries under a
listed domain) followed from its start; events/s (wall clock and per CPU-second, with the load
average) and peak RSS. Target: >= 200k events/s.

    .venv/bin/python bench/net_follow.py [--lines 1000000] [--indicators 100000] [--hits 0.1]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

from quet.indicators.model import Indicator, IndicatorType
from quet.indicators.sets import IndicatorSet
from quet.indicators.warninglists import WarninglistSet
from quet.netwatch.follow import Watcher
from quet.netwatch.matcher import Matcher

HEADER = (
    "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tdns\n"
    "#open\t2024-05-01-00-00-00\n"
    "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\ttrans_id\trtt\tquery"
    "\tqclass\tqclass_name\tqtype\tqtype_name\trcode\trcode_name\tAA\tTC\tRD\tRA\tZ\tanswers"
    "\tTTLs\trejected\n"
    "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tcount\tinterval\tstring\tcount\tstring"
    "\tcount\tstring\tcount\tstring\tbool\tbool\tbool\tbool\tcount\tvector[string]"
    "\tvector[interval]\tbool\n"
)


def generate(path: Path, lines: int, bad: list[str], hit_rate: float, seed: int = 7) -> int:
    rnd = random.Random(seed)
    benign = [f"host{i}.site{i % 9973}.example.net" for i in range(20000)]
    hits = 0
    t0 = 1714521600.0
    with path.open("w", encoding="ascii") as fh:
        fh.write(HEADER)
        rows = []
        for i in range(lines):
            if rnd.random() < hit_rate:
                query = f"w{i % 97}.{rnd.choice(bad)}"
                hits += 1
            else:
                query = rnd.choice(benign)
            h = i % 5000  # a network of 5,000 hosts
            client = f"10.{h >> 8}.{h & 255}.{1 + i % 7}"
            answer = f"93.184.{(i >> 8) & 255}.{i & 255}"
            rows.append(
                f"{t0 + i * 0.001:.6f}\tC{i:x}\t{client}\t{40000 + i % 20000}\t10.0.0.53\t53\tudp"
                f"\t{i & 0xFFFF}\t0.010000\t{query}\t1\tC_INTERNET\t1\tA\t0\tNOERROR\tF\tF\tT\tT"
                f"\t0\t{answer}\t60.000000\tF\n"
            )
            if len(rows) >= 65536:
                fh.writelines(rows)
                rows = []
        fh.writelines(rows)
        fh.write("#close\t2024-05-01-01-00-00\n")
    return hits


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--indicators", type=int, default=100_000)
    ap.add_argument("--hits", type=float, default=0.1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="quet-bench-") as tmp:
        log = Path(tmp) / "dns.log"
        bad = [f"bad{i}.c2-{i % 31}.test" for i in range(args.indicators)]
        t = time.perf_counter()
        expected = generate(log, args.lines, bad[:1000], args.hits)
        print(
            f"generated {args.lines:,} lines ({log.stat().st_size / 1e6:.0f} MB) with "
            f"{expected:,} hits in {time.perf_counter() - t:.1f} s"
        )
        iset = IndicatorSet.build(
            Indicator(IndicatorType.DOMAIN, d, family="Bench", source="bench") for d in bad
        )
        watcher = Watcher([log], Matcher(iset, WarninglistSet.default()), from_start=True)
        load = os.getloadavg()[0]
        t, cpu = time.perf_counter(), time.process_time()
        while watcher.step():
            pass
        secs = time.perf_counter() - t
        cpu = time.process_time() - cpu
        watcher.close()
        events = watcher.stats.total()
        hits = sum(a.count for a in watcher.aggregator.alerts.values())
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"followed {events:,} events in {secs:.2f} s: {events / secs:,.0f} events/s "
            f"({len(watcher.aggregator.alerts):,} alerts, {hits:,} hits; "
            f"{len(watcher.issues)} bad lines); peak RSS {rss:.0f} MB"
        )
        # Other jobs on the machine stretch the wall clock; CPU time shows what the code costs.
        print(
            f"CPU {cpu:.2f} s: {events / cpu:,.0f} events per CPU-second; load average "
            f"{load:.2f} before, {os.getloadavg()[0]:.2f} after ({os.cpu_count()} CPUs)"
        )
        if hits != expected or events != args.lines:
            print(
                f"MISMATCH: expected {expected:,} hits and {args.lines:,} events", file=sys.stderr
            )
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
