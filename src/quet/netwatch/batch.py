"""Batch matching through DuckDB: logs parsed once (Zeek dns/conn TSV by DuckDB's CSV reader,
every other format through the Python sources and Arrow) and matched by joins; the alerts are
those of the streaming matcher (`match_events` + `aggregate`)."""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from quet.errors import InputError
from quet.indicators.domainhash import domain_key
from quet.indicators.model import Indicator, IndicatorType, IssueLog, normalise_url
from quet.indicators.warninglists import WarninglistSet
from quet.netwatch import batch_sql as q
from quet.netwatch import parts
from quet.netwatch.alerts import Alert
from quet.netwatch.batch_sql import FAST_LOGS, ZeekHeader, zeek_events_sql, zeek_header
from quet.netwatch.matcher import DEFAULT_INTERNAL, InternalNets, _full_url, _host_of
from quet.netwatch.records import NetEvent
from quet.netwatch.sources import gc_paused, read_path

T = IndicatorType
__all__ = ["FAST_LOGS", "BatchMatcher", "ZeekHeader", "events_table", "scan_batch", "zeek_header"]
MAX_V4_PREFIX_KEYS = 4_000_000  # /24 keys that short listed networks may expand into
# A Zeek log up to this size (gzip counted at 10x) keeps its rows in memory during the scan
# (~0.8 byte per log byte) so the prefilter computes keys per distinct value; a larger one is
# probed row by row, about 25 % slower, in constant memory.
MAX_KEPT_BYTES = 2_000_000_000
_ARROW_BATCH = 65_536
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EMPTY = ("-", "(empty)", "")
_HASH_LEN = {T.MD5: 32, T.SHA1: 40, T.SHA256: 64}


# -- indicators --------------------------------------------------------------------------------


class _V6:
    """IPv6 addresses and networks: few in practice, looked up in Python on distinct values."""

    def __init__(self) -> None:
        self.exact: dict[int, int] = {}
        self.nets: dict[int, dict[int, int]] = {}

    def lookup(self, text: str) -> list[int]:
        try:
            ip = ipaddress.IPv6Address(text.strip("[]"))
        except ValueError:
            return []
        n = int(ip)
        found = [self.exact[n]] if n in self.exact else []
        for plen in sorted(self.nets, reverse=True):
            iid = self.nets[plen].get(n >> (128 - plen))
            if iid is not None:
                return [*found, iid]
        return found


def _indicator_row(ind: Indicator) -> tuple[str, str, str, int, int] | None:
    """(kind, key, listed value, prefix length, network) of an indicator as the tables hold it;
    None for types no log value can hit (filenames, YARA). ValueError when unreadable."""
    kind, value = ind.type, ind.value.strip()
    if kind in (T.IPV4, T.IPV6):
        ip = ipaddress.ip_address(value.strip("[]"))
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        text = ip.compressed
        return ("v4" if ip.version == 4 else "v6"), text, text, 0, 0
    if kind is T.CIDR:
        net = ipaddress.ip_network(value, strict=False)
        if isinstance(net, ipaddress.IPv6Network):
            mapped = net.network_address.ipv4_mapped
            if mapped is not None and net.prefixlen >= 96:
                plen = net.prefixlen - 96
                net4 = ipaddress.IPv4Network(f"{mapped}/{plen}")
                return "c4", net4.compressed, net4.compressed, plen, int(mapped) >> (32 - plen)
            return "c6", net.compressed, net.compressed, net.prefixlen, 0
        plen = net.prefixlen
        return "c4", net.compressed, net.compressed, plen, int(net.network_address) >> (32 - plen)
    if kind is T.DOMAIN:
        key = domain_key(value)
        if "." not in key or "\n" in key:
            raise ValueError(f"not a domain name: {value[:80]!r}")
        return "dom", key, key, 0, 0
    if kind is T.URL:
        norm = normalise_url(value)
        return "url", norm, norm, 0, 0
    if kind in _HASH_LEN:
        digest = value.lower()
        bytes.fromhex(digest)
        if len(digest) != _HASH_LEN[kind]:
            raise ValueError(f"not a {kind.value} digest: {value[:80]!r}")
        return kind.value, digest, digest, 0, 0
    return None


@dataclass(frozen=True)
class _Meta:
    name: str
    family: str
    source: str


# -- other formats through the Python sources ------------------------------------------------------

_EVENT_SCHEMA = pa.schema(
    [
        ("src", pa.string()),
        ("line", pa.int64()),
        ("eid", pa.int64()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("client", pa.string()),
        ("server", pa.string()),
        ("query", pa.string()),
        ("answers", pa.list_(pa.string())),
        ("host", pa.string()),
        ("url", pa.string()),
        ("url_norm", pa.string()),
        ("md5", pa.string()),
        ("sha1", pa.string()),
        ("sha256", pa.string()),
        ("bad", pa.string()),
    ]
)


def _url_norm(ev: NetEvent) -> str:
    if not ev.url:
        return ""
    url = _full_url(ev)
    try:
        return normalise_url(url) if url else ""
    except InputError:
        return ""


def _event_host(ev: NetEvent) -> str:
    host = _host_of(ev.host) if ev.host else ""
    if not host and ev.url and "://" in ev.url:
        host = _host_of(ev.url.split("://", 1)[1].split("/", 1)[0])
    return host


def events_table(events: Iterable[NetEvent]) -> Iterator[pa.Table]:
    """NetEvents as Arrow tables of the event relation, a batch at a time."""
    rows: list[NetEvent] = []
    done = 0

    def flush() -> pa.Table:
        return pa.table(
            {
                "src": [e.source for e in rows],
                "line": [e.line for e in rows],
                "eid": range(done, done + len(rows)),
                "ts": [e.ts for e in rows],
                "client": [e.client for e in rows],
                "server": [e.server for e in rows],
                "query": [e.query for e in rows],
                "answers": [
                    [a.lower().rstrip(".") if "." in a else a for a in e.answers] for e in rows
                ],
                "host": [_event_host(e) for e in rows],
                "url": [e.url for e in rows],
                "url_norm": [_url_norm(e) for e in rows],
                "md5": [e.md5.lower() for e in rows],
                "sha1": [e.sha1.lower() for e in rows],
                "sha256": [e.sha256.lower() for e in rows],
                "bad": [""] * len(rows),
            },
            schema=_EVENT_SCHEMA,
        )

    for ev in events:
        rows.append(ev)
        if len(rows) >= _ARROW_BATCH:
            yield flush()
            done += len(rows)
            rows = []
    if rows:
        yield flush()


# -- the matcher -------------------------------------------------------------------------------


def log_files(paths: Sequence[Path]) -> list[Path]:
    """The files of `paths` in the order read_path reads them (folders recursively, sorted,
    hidden parts skipped). A missing path is an InputError."""
    out: list[Path] = []
    for path in map(Path, paths):
        if not path.exists():
            raise InputError("no such file or folder", path=str(path))
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if not any(part.startswith(".") for part in child.relative_to(path).parts):
                    out.append(child)
        else:
            out.append(path)
    return out


class BatchMatcher:
    """Indicators loaded once into DuckDB tables; `scan` matches log files against them."""

    def __init__(
        self,
        indicators: Iterable[Indicator],
        warninglists: WarninglistSet | None = None,
        *,
        threads: int = 2,
        memory_limit: str = "2GB",
        internal: InternalNets | None = None,
        issues: IssueLog | None = None,
    ) -> None:
        self.wl = warninglists
        self.threads = max(1, threads)
        self.internal = internal if internal is not None else InternalNets(DEFAULT_INTERNAL)
        self._internal_nets = [str(n) for n in self.internal.nets]
        self.con = duckdb.connect(
            config={
                "threads": threads,
                "memory_limit": memory_limit,
                "preserve_insertion_order": True,
                "autoinstall_known_extensions": False,
                "autoload_known_extensions": False,
                # Hand memory freed in bulk (the load's staging tables) back to the system:
                # with the default (512 MB) a million indicators kept ~340 MiB of RSS for
                # 104 MiB of tables; with this, ~225 MiB (bench/net.py's "held").
                "allocator_bulk_deallocation_flush_threshold": "8MB",
            }
        )
        self.con.execute("set TimeZone = 'UTC'")
        self.skipped = 0
        self._metas: list[_Meta] = []
        self._v6 = _V6()
        with gc_paused():
            self._load(indicators, issues)

    # -- loading ---------------------------------------------------------------------------

    def _load(self, indicators: Iterable[Indicator], issues: IssueLog | None) -> None:
        cols: dict[str, list[Any]] = {
            k: [] for k in ("kind", "key", "value", "plen", "net", "mid", "conf")
        }
        meta_ids: dict[_Meta, int] = {}
        con = self.con
        con.execute(
            "create table ind_raw (seq BIGINT, kind VARCHAR, key VARCHAR, value VARCHAR, "
            "plen INTEGER, net UBIGINT, mid INTEGER, conf SMALLINT, type VARCHAR)"
        )
        seq = 0

        def flush() -> None:
            n = len(cols["kind"])
            if not n:
                return
            tbl = pa.table(
                {
                    "seq": pa.array(range(seq - n, seq), pa.int64()),
                    **{k: cols[k] for k in ("kind", "key", "value")},
                    "plen": pa.array(cols["plen"], pa.int32()),
                    "net": pa.array(cols["net"], pa.uint64()),
                    "mid": pa.array(cols["mid"], pa.int32()),
                    "conf": pa.array(cols["conf"], pa.int16()),
                }
            )
            con.register("ind_batch", tbl)
            con.execute(
                "insert into ind_raw select seq, kind, key, value, plen, net, mid, conf, "
                "case kind when 'dom' then 'domain' when 'v4' then 'ipv4' when 'v6' then 'ipv6' "
                "when 'c4' then 'cidr' when 'c6' then 'cidr' else kind end from ind_batch"
            )
            con.unregister("ind_batch")
            for v in cols.values():
                v.clear()

        for ind in indicators:
            try:
                row = _indicator_row(ind)
            except (ValueError, InputError) as exc:
                self.skipped += 1
                if issues is not None:
                    issues.add(ind.source, ind.line, f"not indexed: {exc}")
                continue
            if row is None:
                self.skipped += 1
                continue
            meta = _Meta(ind.name, ind.family, ind.source)
            mid = meta_ids.get(meta)
            if mid is None:
                mid = meta_ids[meta] = len(self._metas)
                self._metas.append(meta)
            for k, v in zip(("kind", "key", "value", "plen", "net"), row, strict=True):
                cols[k].append(v)
            cols["mid"].append(mid)
            cols["conf"].append(max(0, min(100, int(ind.confidence))))
            seq += 1
            if len(cols["kind"]) >= 200_000:
                flush()
        flush()
        # One indicator per listed value, the most confident first (as IndicatorSet keeps them).
        con.execute(
            """create table ind as select row_number() over () as iid, * exclude (seq, conf) from (
                 select * from ind_raw
                 qualify row_number() over (partition by kind, key order by conf desc, seq) = 1)"""
        )
        con.execute("drop table ind_raw")
        con.execute("create view dom as select key, iid from ind where kind = 'dom'")
        con.execute("create view v4x as select key, iid from ind where kind = 'v4'")
        con.execute("create view c4 as select plen, net, iid from ind where kind = 'c4'")
        for kind, key, iid, plen in con.execute(
            "select kind, key, iid, plen from ind where kind in ('v6', 'c6')"
        ).fetchall():
            if kind == "v6":
                self._v6.exact[int(ipaddress.IPv6Address(key))] = iid
            else:
                net = ipaddress.IPv6Network(key)
                self._v6.nets.setdefault(plen, {})[int(net.network_address) >> (128 - plen)] = iid
        self._prefilter()

    def _prefilter(self) -> None:
        con = self.con
        expand = con.execute(
            "select coalesce(sum(1::BIGINT << (24 - plen)), 0) from ind "
            "where kind = 'c4' and plen < 24"
        ).fetchone()
        v4_all = self._v4_all = bool(expand and expand[0] > MAX_V4_PREFIX_KEYS)
        self._has_v6 = bool(self._v6.exact or self._v6.nets)
        slash24 = "format('{}.{}.{}', (a >> 24) & 255, (a >> 16) & 255, (a >> 8) & 255)"
        con.execute(
            "create table pk2 as select distinct key as k from ind "
            "where kind = 'dom' and length(key) - length(replace(key, '.', '')) = 1"
        )
        con.execute(
            f"create table pk3 as select distinct {q.LAST3.format(v='key')} as k from ind "
            "where kind = 'dom' and length(key) - length(replace(key, '.', '')) > 1"
        )
        con.execute(
            f"""create table pk4 as select distinct k from (
              select {q.SLASH24.format(v="key")} k from ind where kind = 'v4'
              union all
              select {slash24} from (select net << (32 - plen) as a from ind
                                     where kind = 'c4' and plen >= 24)
              union all
              select {slash24} from (
                select (net << (32 - plen)) + (unnest(range((1 << (24 - plen))::BIGINT)) << 8) as a
                from ind where kind = 'c4' and plen < 24 and not {v4_all}))"""
        )

        # May a name's key end in a digit? (Else an answer ending in one needs no name test.)
        row = con.execute(
            "select exists (select 1 from pk2 where right(k, 1) between '0' and '9') "
            "or exists (select 1 from pk3 where right(k, 1) between '0' and '9')"
        ).fetchone()
        self._digit_names = bool(row and row[0])

    def nbytes(self) -> int:
        """Memory DuckDB holds for the indicator tables (its buffer manager's count)."""
        row = self.con.execute("select sum(memory_usage_bytes) from duckdb_memory()").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def counts(self) -> dict[str, int]:
        return dict(self.con.execute("select kind, count(*) from ind group by kind").fetchall())

    # -- scanning --------------------------------------------------------------------------

    def scan(self, paths: Sequence[Path], issues: IssueLog | None = None) -> list[Alert]:
        """Alerts of the log files (or folders) in `paths`, the most frequent first."""
        with gc_paused():  # many small objects, no cycles: no collector passes over the heap
            return self._scan(paths, issues if issues is not None else IssueLog())

    def _scan(self, paths: Sequence[Path], issues: IssueLog) -> list[Alert]:
        files = log_files(paths)
        self._begin([str(f) for f in files])
        given = {Path(p) for p in paths}
        for path in files:
            header = zeek_header(path)
            if header is None:
                self._python_events(path, issues, strict=path in given)
            elif path.stat().st_size * (10 if header.gzip else 1) > MAX_KEPT_BYTES:
                self._candidates(
                    zeek_events_sql(path, header, self._v4_all, self._has_v6, self._internal_nets)
                )
            else:
                self._zeek_log(path, header)
        return self._finish(issues)

    def scan_events(self, events: Iterable[NetEvent]) -> list[Alert]:
        """Alerts of events already read (what `aggregate(match_events(events, ...))` gives)."""
        with gc_paused():
            return self._scan_events(events)

    def _scan_events(self, events: Iterable[NetEvent]) -> list[Alert]:
        tables = list(events_table(events))
        srcs = sorted({s for t in tables for s in t.column("src").unique().to_pylist()})
        self._begin(srcs)
        for tbl in tables:
            self._register_events(tbl)
        return self._finish(IssueLog())

    def _begin(self, srcs: list[str]) -> None:
        con = self.con
        con.execute(
            "create or replace temp table files (src VARCHAR, ord INTEGER);"
            "create or replace temp table cand (src VARCHAR, line BIGINT, eid BIGINT, "
            "ts TIMESTAMPTZ, client VARCHAR, server VARCHAR, field VARCHAR, value VARCHAR, "
            "key VARCHAR, kind VARCHAR, rank INTEGER)"
        )
        if srcs:
            con.executemany("insert into files values (?, ?)", [(s, i) for i, s in enumerate(srcs)])

    def _finish(self, issues: IssueLog) -> list[Alert]:
        con = self.con
        for src, line, why in con.execute(
            "select src, line, value from cand where kind = 'bad' order by src, line"
        ).fetchall():
            issues.add(src, int(line), why)
        con.execute(q.HITS)
        self._ipv6_hits()
        self._drops()
        return self._alerts()

    def _register_events(self, tbl: pa.Table) -> None:
        self.con.register("py_events", tbl)
        self._candidates("select * from py_events")
        self.con.unregister("py_events")

    def _candidates(self, events: str) -> None:
        self.con.execute(q.CANDIDATES.format(obs=q.observables(events)))

    def _zeek_log(self, path: Path, header: ZeekHeader) -> None:
        """A Zeek dns/conn TSV log read by DuckDB: its raw rows kept (in parts read side by
        side when the log is plain and large), then the candidate rows by distinct values."""
        con = self.con
        ranges = [] if header.gzip else parts.cut(path, header.skip, self.threads)
        tables = [f"quet_part_{i}" for i in range(max(1, len(ranges)))]
        try:
            if not ranges:
                rows = q.zeek_rows_sql(str(path), header, header.skip, header.gzip)
                con.execute(f"create or replace table {tables[0]} as {rows}")
            else:

                def work(i: int, pipe: str) -> None:
                    rows = q.zeek_rows_sql(pipe, header, 0, False)
                    with con.cursor() as cur:
                        cur.execute(f"create or replace table {tables[i]} as {rows}")

                parts.read_side_by_side(path, ranges, work)
            before, seen = [], 0
            for table in tables:
                before.append(seen)
                row = con.execute(f"select count(*) from {table}").fetchone()
                seen += int(row[0]) if row else 0
            self._candidates(
                q.zeek_candidates_sql(
                    path,
                    header,
                    list(zip(tables, before, strict=True)),
                    self._v4_all,
                    self._has_v6,
                    self._internal_nets,
                    self._digit_names,
                )
            )
        finally:
            for table in tables:
                con.execute(f"drop table if exists {table}")

    def _python_events(self, path: Path, issues: IssueLog, strict: bool) -> None:
        try:
            for tbl in events_table(read_path(path, issues)):
                self._register_events(tbl)
        except InputError as exc:
            if strict:
                raise
            issues.add(str(path), 0, str(exc))

    def _ipv6_hits(self) -> None:
        """IPv6 candidates, looked up in Python on their distinct values; an IPv4-mapped address
        is looked up as the IPv4 address it carries."""
        con = self.con
        values = [
            v for (v,) in con.execute("select distinct key from cand where kind = 'v6'").fetchall()
        ]
        pairs = [(v, iid) for v in values for iid in self._v6.lookup(v)]
        mapped = []
        for v in values:
            try:
                m = ipaddress.IPv6Address(v.strip("[]")).ipv4_mapped
            except ValueError:
                continue
            if m is not None:
                mapped.append((v, str(m), int(m)))
        if mapped:
            con.execute("create or replace temp table v6map (key VARCHAR, v4 VARCHAR, ip UBIGINT)")
            con.executemany("insert into v6map values (?, ?, ?)", mapped)
            pairs += con.execute(q.MAPPED_V4).fetchall()
        if not pairs:
            return
        con.execute("create or replace temp table v6hits (key VARCHAR, iid BIGINT)")
        con.executemany("insert into v6hits values (?, ?)", pairs)
        con.execute(
            "insert into raw_hits select c.src, c.line, c.eid, c.ts, c.client, c.server, c.field, "
            "c.value, c.rank, h.iid from cand c join v6hits h on c.kind = 'v6' and c.key = h.key"
        )

    def _drops(self) -> None:
        """Hits that never count: a side of a connection that is not the remote one (the
        server unless only the server is ours, the client unless it is outside; both when
        neither is ours), a value or a listed indicator on a warninglist."""
        con = self.con
        con.execute(
            "create or replace temp table dropped (field VARCHAR, value VARCHAR, client VARCHAR, "
            "iid BIGINT)"
        )
        rows = con.execute(
            "select distinct h.field, h.value, h.client, h.server, h.iid, ind.type, ind.value "
            "from raw_hits h join ind using (iid)"
        ).fetchall()
        drop: list[tuple[str, str, str, int]] = []
        benign: dict[tuple[str, str], bool] = {}
        internal = self.internal

        def suppressed(kind: IndicatorType, value: str) -> bool:
            if self.wl is None:
                return False
            known = benign.get((kind.value, value))
            if known is None:
                known = self.wl.match(Indicator(kind, value)) is not None
                benign[(kind.value, value)] = known
            return known

        for field, value, client, server, iid, itype, ivalue in rows:
            kind = T(itype)
            value_kind = kind
            if kind in (T.IPV4, T.IPV6, T.CIDR):
                value_kind = T.IPV6 if ":" in value else T.IPV4
            if field == "client":
                wrong_side = client in internal
            elif field == "server":
                wrong_side = client not in internal and server in internal
            else:
                wrong_side = False
            if wrong_side or suppressed(value_kind, value) or suppressed(kind, ivalue):
                drop.append((field, value, client, iid))
        if drop:
            con.executemany("insert into dropped values (?, ?, ?, ?)", drop)

    def _alerts(self) -> list[Alert]:
        # Column by column through Arrow and numpy (a row, or an Arrow scalar, at a time costs
        # more than the query when there are many alerts); times as microseconds since the
        # epoch, -1 for none.
        tbl = self.con.sql(
            "select h, t, v, m, coalesce(epoch_us(f), -1) as f, coalesce(epoch_us(l), -1) as l, "
            "c, fl, ex from (" + q.ALERTS + ") a(h, t, v, m, f, l, c, fl, ex)"
        ).to_arrow_table()
        host, itype, ivalue, mid, first, last, count = (_pyvalues(tbl.column(i)) for i in range(7))
        fields = _pylists(tbl.column(7))
        # Each example is [file, line, value]: three strings in a row of the flattened lists.
        triples = _pylists(tbl.column(8), depth=2)
        metas = self._metas
        alerts = []
        for k, meta_id in enumerate(mid):
            meta = metas[meta_id]
            it = iter(triples[k])
            alerts.append(
                Alert(
                    client=host[k],
                    indicator_type=itype[k],
                    indicator=ivalue[k],
                    name=meta.name,
                    family=meta.family,
                    source_feed=meta.source,
                    first_seen=None if first[k] < 0 else _EPOCH + timedelta(microseconds=first[k]),
                    last_seen=None if last[k] < 0 else _EPOCH + timedelta(microseconds=last[k]),
                    count=count[k],
                    fields=fields[k],
                    examples=[
                        (src, int(line), value)
                        for src, line, value in zip(it, it, it, strict=False)
                    ],
                )
            )
        alerts.sort(key=lambda a: (-a.count, a.client, a.indicator_type, a.indicator))
        return alerts

    def close(self) -> None:
        self.con.close()


def _pyvalues(col: pa.ChunkedArray) -> list[Any]:
    """A column without nulls as Python values (through numpy: no Arrow scalar per value)."""
    return col.to_numpy().tolist() if col.num_chunks else []


def _pylists(col: pa.ChunkedArray, depth: int = 1) -> list[list[Any]]:
    """A list column without nulls as Python lists, its values flattened `depth` levels."""
    arr = col.combine_chunks()
    ends = arr.offsets.to_numpy().tolist()
    ends = [e - ends[0] for e in ends]  # flatten() starts at the first list's first value
    values = arr.flatten()
    for _ in range(depth - 1):
        inner = values.offsets.to_numpy().tolist()
        ends = [inner[e] - inner[0] for e in ends]
        values = values.flatten()
    flat = values.to_numpy(zero_copy_only=False).tolist()
    return [flat[a:b] for a, b in itertools.pairwise(ends)]


def scan_batch(
    paths: list[Path],
    indicators: Iterable[Indicator],
    warninglists: WarninglistSet | None = None,
    issues: IssueLog | None = None,
    threads: int = 2,
) -> list[Alert]:
    """The alerts `aggregate(match_events(...))` gives for the events of `paths`, through DuckDB:
    one pass over each log, then joins on the few candidate values."""
    matcher = BatchMatcher(indicators, warninglists, threads=threads, issues=issues)
    try:
        return matcher.scan(paths, issues)
    finally:
        matcher.close()
