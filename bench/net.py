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
import multiprocessing
import os
import random
import resource
import shutil
import subprocess
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
    benign = sorted(
        {
            f"{_name(rng)}{rng.randint(0, 99) if rng.random() < 0.3 else ''}.{rng.choice(TLDS)}"
            for _ in range(300_000)
        }
    )
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


# -- measuring -----------------------------------------------------------------------------


class PeakRSS:
    """Peak resident memory of this process while a block runs (sampled every 20 ms)."""

    def __init__(self, pid: int | None = None) -> None:
        self.proc = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except psutil.NoSuchProcess:
                return
            time.sleep(0.02)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if self.proc.is_running():
            self.peak = max(self.peak, self.proc.memory_info().rss)


def cpu() -> float:
    """CPU seconds this process has used (all threads): a figure that other load on the
    machine does not distort the way wall time is."""
    t = psutil.Process().cpu_times()
    return float(t.user + t.system)


def mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def prepare(events: int, n_ind: int) -> tuple[Path, Path, dict[str, list[str]], dict[str, int]]:
    OUT.mkdir(parents=True, exist_ok=True)
    log, txt, meta = OUT / "dns.log", OUT / "indicators.txt", OUT / "meta.json"
    want = {"events": events, "indicators": n_ind, "version": 3}
    if meta.exists() and log.exists() and txt.exists():
        cached = json.loads(meta.read_text())
        if cached.get("want") == want:
            values = json.loads((OUT / "indicators.json").read_text())
            return log, txt, values, cached["counts"]
    t0 = time.perf_counter()
    values = make_indicators(n_ind, random.Random(5))
    (OUT / "indicators.json").write_text(json.dumps(values))
    txt.write_text("\n".join(v for items in values.values() for v in items) + "\n")
    counts = write_log(log, events, values)
    meta.write_text(json.dumps({"want": want, "counts": counts}))
    print(f"generated {log} ({mib(log.stat().st_size)}) in {time.perf_counter() - t0:.0f} s")
    return log, txt, values, counts


def bench_batch(log: Path, values: dict[str, list[str]], events: int) -> tuple[float, set[int]]:
    from quet.netwatch.batch import BatchMatcher

    gc.collect()
    before = psutil.Process().memory_info().rss
    t0 = time.perf_counter()
    with PeakRSS() as load_peak:
        m = BatchMatcher(iter_indicators(values), threads=2)
    load_s = time.perf_counter() - t0
    gc.collect()
    held = psutil.Process().memory_info().rss - before
    print(
        f"batch: {sum(map(len, values.values())):,} indicators loaded in {load_s:.1f} s; "
        f"held {mib(held)} (RSS growth; DuckDB's own count {mib(m.nbytes())}; "
        f"peak while loading {mib(load_peak.peak - before)} above the start)"
    )
    t0 = time.perf_counter()
    cpu0 = cpu()
    with PeakRSS() as peak:
        alerts = m.scan([log])
    took = time.perf_counter() - t0
    cpu_s = cpu() - cpu0
    lines = {
        int(r[0])
        for r in m.con.execute(
            "select distinct line from raw_hits h where not exists (select 1 from dropped d "
            "where d.field = h.field and d.value = h.value and d.client = h.client "
            "and d.iid = h.iid)"
        ).fetchall()
    }
    print(
        f"batch: {events:,} events in {took:.1f} s = {events / took:,.0f} events/s "
        f"({cpu_s:.1f} CPU-s: {events / cpu_s:,.0f} events per CPU-second); "
        f"{len(alerts):,} alerts, {sum(a.count for a in alerts):,} hits on {len(lines):,} lines; "
        f"peak RSS {mib(peak.peak)}"
    )
    m.close()
    return events / took, lines


def bench_follow(log: Path, n: int) -> float:
    """The follow path in a process of its own (spawned, not forked), as `quet net watch` runs:
    measured here, it would pay for this process's heap (the generated lists, the batch run)
    on every pass of Python's garbage collector, and share the GIL with the RSS sampler."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        return float(pool.apply(_follow_child, (str(log), n)))


def _follow_child(log_path: str, n: int) -> float:
    log = Path(log_path)
    values = json.loads((OUT / "indicators.json").read_text())
    from quet.indicators.model import IssueLog
    from quet.indicators.sets import IndicatorSet
    from quet.netwatch.alerts import aggregate
    from quet.netwatch.matcher import match_events
    from quet.netwatch.sources import read_path

    prefix = OUT / f"dns-{n}.log"
    if not prefix.exists():
        with open(log, "rb") as src, open(prefix, "wb") as dst:
            for i, line in enumerate(src):
                if i >= n + 8:
                    break
                dst.write(line)
    iset = IndicatorSet.build(iter_indicators(values))
    del values
    gc.collect()
    t0 = time.perf_counter()
    cpu0 = cpu()
    with PeakRSS() as peak:
        alerts = aggregate(match_events(read_path(prefix, IssueLog()), iset))
    took = time.perf_counter() - t0
    cpu_s = cpu() - cpu0
    print(
        f"follow (zeek source + streaming matcher, first {n:,} lines): {n / took:,.0f} events/s "
        f"({n / cpu_s:,.0f} per CPU-second); "
        f"{len(alerts):,} alerts; IndicatorSet {mib(iset.nbytes())}; peak RSS {mib(peak.peak)}"
    )
    return n / took


def bench_grep(log: Path, txt: Path, events: int, ours: set[int]) -> float | None:
    if shutil.which("grep") is None:
        print("grep: not found")
        return None
    t0 = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    # grep's own peak RSS, polled: the children's ru_maxrss would report this process's size
    # (the child is forked from it before it becomes grep).
    proc = subprocess.Popen(
        ["grep", "-n", "-F", "-f", str(txt), str(log)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "LC_ALL": "C"},
    )
    with PeakRSS(proc.pid) as peak:
        out, _ = proc.communicate()
    took = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    rss = peak.peak
    cpu_s = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    found = {int(x.split(b":", 1)[0]) for x in out.splitlines()}
    print(
        f"grep -F -f: {events / took:,.0f} events/s ({took:.1f} s, {events / cpu_s:,.0f} per "
        f"CPU-second), {len(found):,} lines, "
        f"peak RSS {mib(rss)}; false positives (substring, not labels): {len(found - ours):,}; "
        f"missed (CIDR members, which grep cannot see): {len(ours - found):,}"
    )
    return events / took


def bench_python(log: Path, values: dict[str, list[str]], events: int) -> float:
    """The naive loop: split each line, look the exact query and answers up in a set."""
    listed = set(values["domain"]) | set(values["ipv4"])
    hits = 0
    t0 = time.perf_counter()
    cpu0 = cpu()
    with open(log, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("#"):
                continue
            cols = line.split("\t")
            if cols[9] in listed or any(a in listed for a in cols[21].split(",")):
                hits += 1
    took = time.perf_counter() - t0
    print(
        f"python loop (exact set lookup, no labels): {events / took:,.0f} events/s "
        f"({events / (cpu() - cpu0):,.0f} per CPU-second), {hits:,} hits"
    )
    return events / took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--indicators", type=int, default=1_000_000)
    ap.add_argument("--follow", type=int, default=1_000_000, help="lines for the follow path")
    ap.add_argument("--no-grep", action="store_true")
    args = ap.parse_args()
    print(f"{os.cpu_count()} CPUs, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    log, txt, values, counts = prepare(args.events, args.indicators)
    print(
        f"log {mib(log.stat().st_size)}: {args.events:,} events, planted {counts['hits']:,} "
        f"listed names, {counts['ip_hits']:,} listed answer IPs, {counts['near']:,} near misses"
    )
    batch, ours = bench_batch(log, values, args.events)
    follow = bench_follow(log, min(args.follow, args.events))
    grep = None if args.no_grep else bench_grep(log, txt, args.events, ours)
    plain = bench_python(log, values, args.events)
    print(
        f"ratios: batch/follow {batch / follow:.1f}x, batch/python {batch / plain:.1f}x"
        + (f", batch/grep {batch / grep:.1f}x" if grep else "")
    )
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
