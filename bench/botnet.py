"""Botnet attribution benchmark: 10 M sinkhole events against 100 k registered ranges — Quét's
DuckDB path (the SQL of quet.botnet.sql: de-duplication, longest-prefix attribution, the rows
for botnet_ips and the day/week/month statistics) and a pytricia path (a Python loop over the
events: de-duplicate with a set, look each new address up in a pytricia trie).

Run: .venv/bin/python bench/botnet.py [--events 10000000] [--ranges 100000] [--ips 1000000]
     [--days 7] [--threads 2]
The generated events and ranges are cached under bench/out/botnet/ (rebuilt when sizes change).
Each path runs in its own child process, so its peak RSS (ru_maxrss) is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

OUT = Path(__file__).parent / "out" / "botnet"
FAMILIES = [
    "mirai",
    "gamarue",
    "necurs",
    "qakbot",
    "emotet",
    "ramnit",
    "sality",
    "conficker",
    "mozi",
    "gafgyt",
    "avalanche",
    "nymaim",
]
PLENS = [16, 18, 20, 22, 23, 24, 24, 24, 24, 25, 26, 27, 28, 29, 30, 32]
FIRST_DAY = date(2026, 11, 16)


# -- data ------------------------------------------------------------------------------------


def _ip_text(ips: np.ndarray) -> pa.Array:
    octets = [pa.array((ips >> s) & 255).cast(pa.string()) for s in (24, 16, 8, 0)]
    return pc.binary_join_element_wise(*octets, ".")


def make_data(n_events: int, n_ranges: int, n_ips: int, days: int, seed: int = 6) -> dict[str, int]:
    """Ranges: `n_ranges` distinct networks (/16 to /32, 1 in 5 nested inside another) owned by
    20 k organisations. Addresses: `n_ips` distinct public IPv4, 70 % inside some range; each
    keeps one family (one in ten has a second). Events: each picks an address with a Zipf-like
    weight (bots call home at very different rates) and a day; so many events repeat an
    (ip, family, day), as in real sinkhole feeds."""
    rng = np.random.default_rng(seed)
    plens = rng.choice(PLENS, n_ranges)
    base = rng.integers(1 << 24, 223 << 24, n_ranges, dtype=np.int64)
    # nest one in five inside an earlier range: same prefix, longer length
    nested = rng.random(n_ranges) < 0.2
    parent = rng.integers(0, n_ranges, n_ranges)
    base = np.where(nested, base[parent], base)
    plens = np.where(nested, np.minimum(plens[parent] + rng.integers(2, 8, n_ranges), 32), plens)
    net = (base >> (32 - plens)) << (32 - plens)
    uniq = np.unique(np.stack([net, plens], axis=1), axis=0)
    net, plens = uniq[:, 0], uniq[:, 1]
    cidrs = pc.binary_join_element_wise(_ip_text(net), pa.array(plens).cast(pa.string()), "/")
    orgs = rng.integers(1, 20_001, len(net))
    pq.write_table(pa.table({"org_id": orgs, "cidr": cidrs}), OUT / "ranges.parquet")

    pick = rng.integers(0, len(net), int(n_ips * 0.7))
    inside = net[pick] + rng.integers(0, 1 << (32 - plens[pick]))
    outside = rng.integers(1 << 24, 223 << 24, n_ips - len(pick))
    ips = np.unique(np.concatenate([inside, outside]))
    fam1 = rng.integers(0, len(FAMILIES), len(ips))
    fam2 = np.where(rng.random(len(ips)) < 0.1, rng.integers(0, len(FAMILIES), len(ips)), fam1)
    weight = 1.0 / rng.zipf(1.6, len(ips)).clip(1, 10_000)
    weight /= weight.sum()
    which = rng.choice(len(ips), n_events, p=weight)
    fam = np.where(rng.random(n_events) < 0.8, fam1[which], fam2[which])
    day = rng.integers(0, days, n_events)
    lo = ips[which] | (0xFFFF << 32)
    events = pa.table(
        {
            "ip": _ip_text(ips).take(pa.array(which)),
            "family": pa.array(FAMILIES).take(pa.array(fam)),
            "day": pa.array(np.datetime64(FIRST_DAY) + day.astype("timedelta64[D]")).cast(
                pa.date32()
            ),
            "hi": pa.array(np.zeros(n_events, dtype=np.int64)),
            "lo": pa.array(lo.astype(np.int64)),
        }
    )
    pq.write_table(events, OUT / "events.parquet", compression="zstd")
    return {"ranges": len(net), "ips": len(ips), "events": n_events}


def prepare(args: argparse.Namespace) -> dict[str, int]:
    OUT.mkdir(parents=True, exist_ok=True)
    key = {"events": args.events, "ranges": args.ranges, "ips": args.ips, "days": args.days, "v": 1}
    meta = OUT / "meta.json"
    if meta.is_file() and json.loads(meta.read_text()).get("key") == key:
        return dict(json.loads(meta.read_text())["sizes"])
    print("generating data …", flush=True)
    sizes = make_data(args.events, args.ranges, args.ips, args.days)
    meta.write_text(json.dumps({"key": key, "sizes": sizes}))
    return sizes


# -- the two paths (each in a child process) ----------------------------------------------------


def run_duckdb(threads: int) -> dict[str, object]:
    from quet.botnet import duck
    from quet.botnet.attribute import org_table, periods_of
    from quet.botnet.eventstore import EventStore
    from quet.botnet.geo import org_ranges

    events = pq.read_table(OUT / "events.parquet")
    nets = pq.read_table(OUT / "ranges.parquet")
    ranges, _ = org_ranges(
        list(zip(nets.column("org_id").to_pylist(), nets.column("cidr").to_pylist(), strict=True))
    )
    ids = sorted(set(nets.column("org_id").to_pylist()))
    orgs = org_table([(i, None, f"org {i}", "unit", "government" if i % 3 else "") for i in ids])
    store = EventStore(OUT / "store")  # empty: every event is new
    started = time.perf_counter()
    con = duck.connect(threads)
    con.register(
        "incoming", events.append_column("src", pa.array(np.zeros(events.num_rows, np.int64)))
    )
    fresh = store.new_events(con, "incoming")
    dedup = time.perf_counter() - started
    days = pc.unique(fresh.column("day")).to_pylist()
    periods, _, _ = periods_of(days)
    timings: dict[str, float] = {}
    out = duck.run(duck.Inputs([], fresh, ranges, orgs, periods), con=con, timings=timings)
    total = time.perf_counter() - started
    attribution = dedup + sum(
        timings[k] for k in ("events", "ips", "range_keys", "hits", "best", "attr")
    )
    attributed = out["ip_rows"].filter(pc.is_valid(out["ip_rows"].column("org_id")))
    return {
        "seconds": total,
        "attribution_seconds": attribution,
        "dedup_seconds": dedup,
        "timings": timings,
        "new_events": fresh.num_rows,
        "ip_rows": out["ip_rows"].num_rows,
        "stats_rows": out["stats"].num_rows,
        "attributed_ips": len(set(attributed.column("ip").to_pylist())),
        "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def run_pytricia() -> dict[str, object]:
    import pytricia

    events = pq.read_table(OUT / "events.parquet", columns=["ip", "family", "day"])
    nets = pq.read_table(OUT / "ranges.parquet")
    started = time.perf_counter()
    trie = pytricia.PyTricia(32)
    for org, cidr in zip(
        nets.column("org_id").to_pylist(), nets.column("cidr").to_pylist(), strict=True
    ):
        trie[cidr] = org
    seen: set[tuple[str, str, int]] = set()
    owner: dict[str, int | None] = {}
    per_org: dict[int | None, set[str]] = {}
    for batch in events.to_batches(max_chunksize=1 << 20):
        ips = batch.column(0).to_pylist()
        fams = batch.column(1).to_pylist()
        days = batch.column(2).cast(pa.int32()).to_pylist()
        for ip, fam, day in zip(ips, fams, days, strict=True):
            key = (ip, fam, day)
            if key in seen:
                continue
            seen.add(key)
            if ip not in owner:
                org = trie.get(ip)
                owner[ip] = org
                per_org.setdefault(org, set()).add(ip)
    total = time.perf_counter() - started
    return {
        "seconds": total,
        "new_events": len(seen),
        "attributed_ips": sum(1 for o in owner.values() if o is not None),
        "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def child(path: str, threads: int) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", path, "--threads", str(threads)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        sys.exit(f"{path} failed:\n{proc.stderr}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


# -- report ------------------------------------------------------------------------------------


def mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--ranges", type=int, default=100_000)
    parser.add_argument("--ips", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", choices=["duckdb", "pytricia"])
    parser.add_argument("--no-pytricia", action="store_true")
    args = parser.parse_args()
    if args.child:
        measured = run_duckdb(args.threads) if args.child == "duckdb" else run_pytricia()
        print(json.dumps(measured))
        return

    sizes = prepare(args)
    load = os.getloadavg()
    print(
        f"{sizes['events']:,} events, {sizes['ips']:,} distinct addresses over {args.days} days, "
        f"{sizes['ranges']:,} registered ranges; load average {load[0]:.1f}; "
        f"DuckDB threads {args.threads}",
        flush=True,
    )
    n = sizes["events"]
    duck = child("duckdb", args.threads)
    rate = n / float(duck["seconds"])  # type: ignore[arg-type]
    attr_rate = n / float(duck["attribution_seconds"])  # type: ignore[arg-type]
    print(
        f"duckdb   : {duck['seconds']:.2f} s = {rate:,.0f} events/s in all "
        f"(de-duplication + attribution {duck['attribution_seconds']:.2f} s = {attr_rate:,.0f} "
        f"events/s); {duck['new_events']:,} new (ip, family, day), {duck['ip_rows']:,} ip rows, "
        f"{duck['stats_rows']:,} statistics rows; peak RSS {mib(duck['peak_rss'])}",  # type: ignore[arg-type]
        flush=True,
    )
    timings = duck["timings"]
    assert isinstance(timings, dict)
    print("           " + ", ".join(f"{k} {v:.2f}" for k, v in timings.items()))
    result: dict[str, object] = {"sizes": sizes, "args": vars(args), "load": load, "duckdb": duck}
    if not args.no_pytricia:
        tri = child("pytricia", args.threads)
        trate = n / float(tri["seconds"])  # type: ignore[arg-type]
        print(
            f"pytricia : {tri['seconds']:.2f} s = {trate:,.0f} events/s (de-duplication + "
            f"attribution only, no statistics); peak RSS {mib(tri['peak_rss'])}",  # type: ignore[arg-type]
            flush=True,
        )
        same = (tri["new_events"], tri["attributed_ips"]) == (
            duck["new_events"],
            duck["attributed_ips"],
        )
        print(
            f"ratio    : DuckDB (everything) {rate / trate:.1f}x pytricia's events/s, "
            f"{attr_rate / trate:.1f}x on attribution alone; memory "
            f"{float(duck['peak_rss']) / float(tri['peak_rss']):.2f}x; "  # type: ignore[arg-type]
            f"same attribution: {'yes' if same else 'NO'}"
        )
        result["pytricia"] = tri
        result["same"] = same
    target = attr_rate >= 1_000_000
    print(
        f"target   : ≥ 1 M events/s attributed on DuckDB: {'PASS' if target else 'FAIL'} ({attr_rate:,.0f})"
    )
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (OUT.parent / f"botnet-{stamp}.json").write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
