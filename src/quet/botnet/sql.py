"""The one definition of botnet attribution and statistics, as SQL that DuckDB (`duck.py`) and
Spark SQL (`spark.py`) both run unchanged.

Input relations (the runners provide them):
  stored  (ip, family, day, hi, lo)           events already in the store, for the days needed
  fresh   (ip, family, day, hi, lo, src)      new events of this import (src = file index)
  ranges  (kind, hi, lo, plen, org_id, asn, isp, province, country)
          kind 'org' (registered ranges), 'asn' and 'geo' (MaxMind networks), one row per
          (kind, network) (`unique_ranges` keeps the first); addresses are
          128-bit (IPv4 mapped into ::ffff:0:0/96, prefix length + 96) split in two signed
          64-bit halves
  orgs    (org_id, name, sector, province)    sector and province already inherited
  periods (period, start)                     the statistics periods to (re)compute
Outputs: ip_rows (for botnet_ips), stats (for botnet_stats), counts (per file).

Longest prefix match is an equality join per prefix length present in `ranges`: the address
shifted right by (64 - plen) or (128 - plen) equals the range's key; the longest matching
prefix wins per (ip, kind). Only functions both engines know are used (`shiftright` is a Spark
function that the DuckDB runner defines as a macro); the only dialect shims live in the
runners. Attribution is per distinct address, so repeated events cost almost nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa

OUTPUTS = ("ip_rows", "stats", "counts")
DIMS = ("all", "family", "province", "asn", "sector", "org")
PERIODS = ("day", "week", "month")

EVENTS = """
select ip, family, day, hi, lo, cast(-1 as bigint) as src, false as is_new from stored
union all
select ip, family, day, hi, lo, src, true as is_new from fresh
"""

# One row per address; an address is its two halves (hashing integers is cheaper than text).
IPS = """
select ip, hi, lo, (hi = 0 and shiftright(lo, 32) = 65535) as is4
from (select hi, lo, min(ip) as ip from events group by hi, lo) x
"""

# The key of a range: its network shifted right to the prefix length (0 for ::/0 and 0/0).
RANGE_KEYS = """
select kind, hi, lo, plen, org_id, asn, isp, province, country,
       case when plen = 0 then cast(0 as bigint)
            when plen <= 64 then shiftright(hi, 64 - plen)
            else shiftright(lo, 128 - plen) end as k
from ranges
"""


def _hits_for(plen: int) -> str:
    cols = "e.hi, e.lo, r.kind, r.plen, r.org_id, r.asn, r.isp, r.province, r.country"
    if plen == 0:
        on = "r.plen = 0"
    elif plen <= 64:
        on = f"r.plen = {plen} and r.k = shiftright(e.hi, {64 - plen})"
    elif plen < 128:
        on = f"r.plen = {plen} and r.hi = e.hi and r.k = shiftright(e.lo, {128 - plen})"
    else:
        on = "r.plen = 128 and r.hi = e.hi and r.k = e.lo"
    # An IPv6 range shorter than /96 never holds an IPv4 address (those are ::ffff:a.b.c.d).
    where = " where not e.is4" if plen < 96 else ""
    return f"select {cols} from ips e join range_keys r on {on}{where}"


def hits_sql(plens: Iterable[int]) -> str:
    """Every (ip, range) pair where the range holds the address, one join per prefix length
    (/128 always, so that the union is never empty)."""
    lengths = sorted({int(p) for p in plens} | {128})
    return "\nunion all\n".join(_hits_for(p) for p in lengths)


# The longest prefix per address and kind. `ranges` holds one row per (kind, network), so the
# values at the longest length are unique (max_by is deterministic); each kind's own columns
# are never null.
BEST = """
select hi, lo, kind, max(plen) as plen, max_by(org_id, plen) as org_id, max_by(asn, plen) as asn,
       max_by(isp, plen) as isp, max_by(province, plen) as province,
       max_by(country, plen) as country
from hits group by hi, lo, kind
"""

# Per address: the owning organisation, ASN/ISP, province (the owning organisation's province
# when it has one, else the geo database's, already mapped to the official name) and country; with the organisation's sector and name for statistics.
ATTR = """
select i.ip, i.hi, i.lo, o.org_id, a.asn, coalesce(a.isp, '') as isp,
       coalesce(nullif(og.province, ''), g.province, '') as province,
       coalesce(g.country, '') as country,
       coalesce(og.sector, '') as sector, coalesce(og.name, '') as org_name
from ips i
left join best o on o.hi = i.hi and o.lo = i.lo and o.kind = 'org'
left join best a on a.hi = i.hi and a.lo = i.lo and a.kind = 'asn'
left join best g on g.hi = i.hi and g.lo = i.lo and g.kind = 'geo'
left join orgs og on og.org_id = o.org_id
"""

# Grouping and joining on the two integer halves of an address is much cheaper than on text.
IP_ROWS = """
select a.ip, g.family, g.first_day, g.last_day, g.days,
       a.org_id, a.asn, a.isp, a.province, a.country
from (select hi, lo, family, min(day) as first_day, max(day) as last_day, count(*) as days
      from events where is_new group by hi, lo, family) g
join attr a on a.hi = g.hi and a.lo = g.lo
"""

# Statistics: unique addresses per period and key. Rows are first made distinct per
# (period, start, address, family) and per (period, start, address), so counting is count(*).
# Events are already distinct per (address, family, day): the store never holds a row twice
# and new rows are only those it does not hold.
PERIOD_ROWS = """
select 'day' as period, day as start, hi, lo, family from events
where day in (select start from periods where period = 'day')
union all
select distinct 'week' as period, cast(date_trunc('week', day) as date) as start, hi, lo, family
from events
where cast(date_trunc('week', day) as date) in (select start from periods where period = 'week')
union all
select distinct 'month' as period, cast(date_trunc('month', day) as date) as start, hi, lo,
       family
from events
where cast(date_trunc('month', day) as date) in (select start from periods where period = 'month')
"""

PERIOD_IPS = """
select p.period, p.start, a.asn, a.isp, a.province, a.sector, a.org_id, a.org_name
from (select distinct period, start, hi, lo from period_rows) p
join attr a on a.hi = p.hi and a.lo = p.lo
"""

STATS = """
select period, start, 'all' as dim, '' as key, '' as label, count(*) as ips
from period_ips group by period, start
union all
select period, start, 'family' as dim, family as key, family as label, count(*) as ips
from period_rows group by period, start, family
union all
select period, start, 'province' as dim, province as key, province as label, count(*) as ips
from period_ips group by period, start, province
union all
select period, start, 'asn' as dim, coalesce(cast(asn as string), '') as key,
       max(isp) as label, count(*) as ips
from period_ips group by period, start, asn
union all
select period, start, 'sector' as dim, sector as key, sector as label, count(*) as ips
from period_ips group by period, start, sector
union all
select period, start, 'org' as dim, coalesce(cast(org_id as string), '') as key,
       max(org_name) as label, count(*) as ips
from period_ips group by period, start, org_id
"""

COUNTS = """
select e.src, count(*) as new_events, count(a.org_id) as attributed
from events e join attr a on a.hi = e.hi and a.lo = e.lo
where e.is_new
group by e.src
"""


def statements(plens: Iterable[int]) -> list[tuple[str, str]]:
    """The named statements in order: each is a relation later ones use; the names in
    OUTPUTS are the results."""
    return [
        ("events", EVENTS),
        ("ips", IPS),
        ("range_keys", RANGE_KEYS),
        ("hits", hits_sql(plens)),
        ("best", BEST),
        ("attr", ATTR),
        ("ip_rows", IP_ROWS),
        ("period_rows", PERIOD_ROWS),
        ("period_ips", PERIOD_IPS),
        ("stats", STATS),
        ("counts", COUNTS),
    ]


# -- the relations' Arrow shapes (both runners take and give these) ---------------------------

FRESH_SCHEMA = pa.schema(
    [
        ("ip", pa.string()),
        ("family", pa.string()),
        ("day", pa.date32()),
        ("hi", pa.int64()),
        ("lo", pa.int64()),
        ("src", pa.int64()),
    ]
)
RANGE_SCHEMA = pa.schema(
    [
        ("kind", pa.string()),
        ("hi", pa.int64()),
        ("lo", pa.int64()),
        ("plen", pa.int32()),
        ("org_id", pa.int64()),
        ("asn", pa.int64()),
        ("isp", pa.string()),
        ("province", pa.string()),
        ("country", pa.string()),
    ]
)
ORG_SCHEMA = pa.schema(
    [
        ("org_id", pa.int64()),
        ("name", pa.string()),
        ("sector", pa.string()),
        ("province", pa.string()),
    ]
)
PERIOD_SCHEMA = pa.schema([("period", pa.string()), ("start", pa.date32())])
OUTPUT_SCHEMAS = {
    "ip_rows": pa.schema(
        [
            ("ip", pa.string()),
            ("family", pa.string()),
            ("first_day", pa.date32()),
            ("last_day", pa.date32()),
            ("days", pa.int64()),
            ("org_id", pa.int64()),
            ("asn", pa.int64()),
            ("isp", pa.string()),
            ("province", pa.string()),
            ("country", pa.string()),
        ]
    ),
    "stats": pa.schema(
        [
            ("period", pa.string()),
            ("start", pa.date32()),
            ("dim", pa.string()),
            ("key", pa.string()),
            ("label", pa.string()),
            ("ips", pa.int64()),
        ]
    ),
    "counts": pa.schema(
        [("src", pa.int64()), ("new_events", pa.int64()), ("attributed", pa.int64())]
    ),
}


def conform(name: str, table: pa.Table) -> pa.Table:
    """An output as its declared Arrow schema (column types differ a little between engines)."""
    schema = OUTPUT_SCHEMAS[name]
    return pa.table([table.column(f.name).cast(f.type) for f in schema], schema=schema)


def unique_ranges(ranges: pa.Table) -> pa.Table:
    """One row per (kind, hi, lo, plen): a network registered twice keeps the row that sorts
    first (for organisations, the lowest id), so the longest match is never a tie."""
    if ranges.num_rows == 0:
        return ranges
    order = ranges.sort_by(
        [
            ("kind", "ascending"),
            ("hi", "ascending"),
            ("lo", "ascending"),
            ("plen", "ascending"),
            ("org_id", "ascending"),
        ]
    )
    keys = pa.table(
        [order.column(c) for c in ("kind", "hi", "lo", "plen")], names=["kind", "hi", "lo", "plen"]
    )
    idx = keys.append_column("i", pa.array(range(keys.num_rows), pa.int64()))
    first = idx.group_by(["kind", "hi", "lo", "plen"], use_threads=False).aggregate([("i", "min")])
    return order.take(first.column("i_min").combine_chunks().sort())
