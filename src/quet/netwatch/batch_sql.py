"""The SQL of the batch matcher: Zeek dns/conn logs read by DuckDB as the event relation, the
observable values of events, a prefilter that keeps the few candidates, and the joins (IP exact
and per listed prefix length, domain label suffixes, URLs, hashes). `batch.py` runs it."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from quet.errors import InputError
from quet.netwatch.sources import GZIP_MAGIC, head

FAST_LOGS = ("dns", "conn")  # the high-volume Zeek logs read by DuckDB itself


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


# The event relation every reader produces (the fast Zeek reader in SQL, the Python sources
# through Arrow): src, line, eid (unique in its file: a packet may give two events), ts TIMESTAMPTZ, client, server, query, answers VARCHAR[], host
# (a bare name or IP), url (as logged) and url_norm (normalised, '' when none), md5, sha1,
# sha256, and bad (why the line was not read; '' for a good one).
#
# Observables: (field, value, kind, rank). `rank` orders a single event's values the way the
# streaming matcher finds them (IPv4 values, then names, then the rest), so that when two values
# of one event hit the same indicator both paths keep the same one.
OBSERVABLES = r"""
select src, line, eid, ts, client, server, o.field, o.value, o.key, o.kind, o.rank from (
  select src, line, eid, ts, client, server, unnest(list_filter([
      {'field': 'bad', 'value': bad, 'key': bad, 'kind': 'bad', 'rank': 0},
      {'field': 'server', 'value': server, 'key': server, 'kind': {ipkind(server)},
       'rank': {iprank(server, 0)}},
      {'field': 'client', 'value': client, 'key': client, 'kind': {ipkind(client)},
       'rank': {iprank(client, 1)}},
      {'field': 'query', 'value': query, 'key': query, 'kind': 'dom', 'rank': 3000},
      {'field': 'host', 'value': host, 'key': host,
       'kind': case when {isip(host)} then {ipkind(host)} else 'dom' end,
       'rank': case when {isip(host)} then 7002 else 3001 end}
    ] || list_transform(answers, lambda a, i: {'field': 'answer', 'value': a, 'key': a,
       'kind': case when {isip(a)} then {ipkind(a)} else 'dom' end,
       'rank': case when not {isip(a)} then 4000 + i
                    when contains(a, ':') then 7100 + i else 2000 + i end})
      || [{'field': 'url', 'value': url, 'key': url_norm, 'kind': 'url', 'rank': 8000},
          {'field': 'md5', 'value': md5, 'key': md5, 'kind': 'md5', 'rank': 8001},
          {'field': 'sha1', 'value': sha1, 'key': sha1, 'kind': 'sha1', 'rank': 8002},
          {'field': 'sha256', 'value': sha256, 'key': sha256, 'kind': 'sha256', 'rank': 8003}],
    lambda x: x.key <> '' and x.key is not null and (bad = '' or x.kind = 'bad'))) o
  from ({events})
)
"""

# IPv4 dotted quads end in a digit (a name's top label never does); IPv6 has colons.
_ISIP = "(regexp_full_match({v}, '[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+') or contains({v}, ':'))"
_IPKIND = "case when contains({v}, ':') then 'v6' else 'v4' end"
_IPRANK = "case when contains({v}, ':') then 7000 + {r} else {r} end"


def observables(events: str) -> str:
    """The observable rows of an event relation (a table name or a subquery)."""
    sql = OBSERVABLES.replace("{events}", events)
    for name, template in (("isip", _ISIP), ("ipkind", _IPKIND), ("iprank", _IPRANK)):
        while "{" + name + "(" in sql:
            start = sql.index("{" + name + "(")
            end = sql.index(")}", start)
            args = [a.strip() for a in sql[start + len(name) + 2 : end].split(",")]
            text = template.replace("{v}", args[0])
            if len(args) > 1:
                text = text.replace("{r}", args[1])
            sql = sql[:start] + text + sql[end + 2 :]
    return sql


# The prefilter: a row of a large log is a candidate when one of its values has a listed key —
# a name's last two labels (pk2) or three (pk3: so that listing `x.com.vn` does not make every
# `.com.vn` name a candidate), an IPv4 address's /24 network (pk4; listed networks shorter than
# /24 are expanded into their /24s, or every address is a candidate when they are too many).
# A row with several answers is always a candidate. The keys are computed per distinct value
# (`candidate_values`), or per row for logs too large to keep (`probe_keys`); the full expansion
# into observables and the joins then run on the few candidate rows only.
LAST2 = r"regexp_extract({v}, '[^.]*\.[^.]*$')"
LAST3 = r"regexp_extract({v}, '[^.]*\.[^.]*\.[^.]*$')"
SLASH24 = "left({v}, length({v}) - strpos(reverse({v}), '.'))"


def name_listed(v: str) -> str:
    return (
        f"({LAST2.format(v=v)} in (select k from pk2) "
        f"or {LAST3.format(v=v)} in (select k from pk3))"
    )


def ip_listed(v: str, v4_all: bool) -> str:
    return "true" if v4_all else f"{SLASH24.format(v=v)} in (select k from pk4)"


def internal_test(v: str, nets: Sequence[str]) -> str:
    """A cheap SQL test that an IPv4 text is inside one of `nets` — only for the networks whose
    length is a whole number of octets (the others simply never pass it)."""
    tests = []
    for text in nets:
        net = ipaddress.ip_network(text, strict=False)
        if net.version == 4 and net.prefixlen % 8 == 0 and 8 <= net.prefixlen <= 24:
            octets = str(net.network_address).split(".")[: net.prefixlen // 8]
            tests.append(f"starts_with({v}, {_sql_str('.'.join(octets) + '.')})")
    return "(" + " or ".join(tests) + ")" if tests else "false"


def candidate_values(v4_all: bool, internal: Sequence[str]) -> str:
    """CTEs over the rows `ev` (client, server, query, a1 = the first answer): the distinct
    values whose keys are listed. Logs repeat their names and addresses, so the label and /24
    keys are computed once per distinct value, not per row. A client value only counts when the
    client is outside, so internal clients are never probed."""
    is_ip = "(right(a1, 1) between '0' and '9')"
    return f"""
    cand_q as (select query from (select distinct query from ev where query <> '')
               where {name_listed("query")}),
    cand_a as (select a1 from (select distinct a1 from ev where a1 <> '')
               where case when {is_ip} then {ip_listed("a1", v4_all)}
                          else {name_listed("a1")} end),
    cand_s as (select server from (select distinct server from ev where server <> '')
               where {ip_listed("server", v4_all)}),
    cand_c as (select client from (select distinct client from ev
                                   where client <> '' and not {internal_test("client", internal)})
               where {ip_listed("client", v4_all)})"""


def row_filter(set_sep: str, v6: bool) -> str:
    """The candidate test of a row of `ev`, on the CTEs of `candidate_values`."""
    v6_test = (
        "or contains(server, ':') or contains(client, ':') or contains(answers_raw, ':')"
        if v6
        else ""
    )
    return f"""(bad <> '' or contains(answers_raw, {set_sep})
      or query in (select query from cand_q) or a1 in (select a1 from cand_a)
      or server in (select server from cand_s) or client in (select client from cand_c)
      {v6_test})"""


def probe_keys(internal: Sequence[str]) -> str:
    """The per-row road (logs too large to keep their rows in memory): the listed-key probes
    of each row as a select list over `ev`'s columns. DuckDB evaluates every `in (select ...)`
    as a join over all rows, so a key that cannot matter is NULL, which the join skips."""
    is_ip = "(right(a1, 1) between '0' and '9')"
    name_first = f"(case when a1 = '' or {is_ip} then NULL else a1 end)"
    ip_first = f"(case when a1 <> '' and {is_ip} then a1 else NULL end)"
    name_query = "(case when query = '' then NULL else query end)"
    ext_client = f"(case when {internal_test('client', internal)} then NULL else client end)"
    return f"""{LAST2.format(v=name_query)} as k_q2, {LAST3.format(v=name_query)} as k_q3,
      {SLASH24.format(v="server")} as k_s, {SLASH24.format(v=ext_client)} as k_c,
      {SLASH24.format(v=ip_first)} as k_a4, {LAST2.format(v=name_first)} as k_a2,
      {LAST3.format(v=name_first)} as k_a3"""


def row_filter_per_row(set_sep: str, v4_all: bool, v6: bool) -> str:
    """The candidate test of a row on the keys of `probe_keys`."""
    v6_test = (
        "or contains(server, ':') or contains(client, ':') or contains(answers_raw, ':')"
        if v6
        else ""
    )
    if v4_all:
        ips = "server <> '' or client <> '' or k_a4 is not null"
    else:
        ips = (
            "k_s in (select k from pk4) or k_c in (select k from pk4) "
            "or k_a4 in (select k from pk4)"
        )
    return f"""(bad <> '' or contains(answers_raw, {set_sep})
      or k_q2 in (select k from pk2) or k_q3 in (select k from pk3) or {ips}
      or k_a2 in (select k from pk2) or k_a3 in (select k from pk3)
      {v6_test})"""


# Candidates: every observable of the candidate rows.
CANDIDATES = """
insert into cand select * from ({obs})
"""

# Every (candidate, indicator) pair: names by label suffixes, IPv4 exact and by the longest
# listed prefix, URLs and hashes exact. IPv6 values are looked up in Python (see batch.py).
HITS = r"""
create or replace temp table raw_hits as
with dom_suffix as (
  select c.*, unnest(list_transform(range(len(p) - 1),
         lambda j: array_to_string(p[j + 1:], '.'))) as suffix
  from (select *, string_split(key, '.') p from cand
        where kind = 'dom' and not regexp_matches(key, '[/:\[\]\s@]')) c
),
v4 as (
  select *, (p[1]::UBIGINT << 24) + (p[2]::UBIGINT << 16) + (p[3]::UBIGINT << 8) + p[4]::UBIGINT
         as ip
  from (select *, string_split(key, '.') p from cand where kind = 'v4') c
  where len(p) = 4 and list_bool_and(list_transform(p, lambda x: regexp_full_match(x, '[0-9]{1,3}')
        and x::INT <= 255))
),
cidr as (
  select v4.*, c4.iid, c4.plen,
         max(c4.plen) over (partition by v4.src, v4.eid, v4.rank) as best
  from v4 cross join (select distinct plen from c4) p
  join c4 on c4.plen = p.plen and c4.net = v4.ip >> (32 - p.plen)
)
select d.src, d.line, d.eid, d.ts, d.client, d.server, d.field, d.value, d.rank, dom.iid
  from dom_suffix d join dom on dom.key = d.suffix
union all
select v4.src, v4.line, v4.eid, v4.ts, v4.client, v4.server, v4.field, v4.value, v4.rank, v4x.iid
  from v4 join v4x on v4x.key = v4.key
union all
select src, line, eid, ts, client, server, field, value, rank, iid from cidr where plen = best
union all
select c.src, c.line, c.eid, c.ts, c.client, c.server, c.field, c.value, c.rank, x.iid
  from cand c join ind x on x.kind = c.kind and x.key = c.key
  where c.kind in ('url', 'md5', 'sha1', 'sha256')
"""

# IPv4-mapped IPv6 values (v6map: key, v4 text, ip): their IPv4 address's exact entries and
# longest listed prefix.
MAPPED_V4 = """
select m.key, x.iid from v6map m join v4x x on x.key = m.v4
union all
select key, iid from (
  select m.key, c4.iid, c4.plen, max(c4.plen) over (partition by m.key) as best
  from v6map m cross join (select distinct plen from c4) p
  join c4 on c4.plen = p.plen and c4.net = m.ip >> (32 - p.plen)
) where plen = best
"""

# The hits that stay (not suppressed, one per event and indicator: the first found), rolled up
# per internal host and indicator.
ALERTS = """
with kept as (
  select h.*, ind.type, ind.value as ivalue, ind.mid,
         case when h.field = 'client' then h.server else h.client end as host,
         fi.ord as fo
  from raw_hits h
  join ind on ind.iid = h.iid
  join files fi on fi.src = h.src
  where not exists (select 1 from dropped d where d.field = h.field and d.value = h.value
                    and d.client is not distinct from h.client and d.iid = h.iid)
  qualify row_number() over (partition by h.src, h.eid, h.iid order by h.rank) = 1
)
select k.host, k.type, k.ivalue, any_value(k.mid), min(k.ts), max(k.ts), count(*),
       any_value(f.fields), arg_min([k.src, k.line::VARCHAR, k.value], [k.fo, k.eid, k.rank], 5)
from kept k join (
  select host, type, ivalue, list(field order by first) as fields from (
    select host, type, ivalue, field, min([fo, eid, rank]) as first from kept
    group by host, type, ivalue, field
  ) group by host, type, ivalue
) f using (host, type, ivalue)
group by k.host, k.type, k.ivalue
"""


# -- Zeek TSV read by DuckDB ---------------------------------------------------------------------


@dataclass
class ZeekHeader:
    path: str
    sep: str
    set_sep: str
    empty: str
    unset: str
    fields: list[str]
    skip: int  # header lines before the first record
    gzip: bool


def _unescape(text: str) -> str:
    return text.encode().decode("unicode_escape") if "\\x" in text else text


def zeek_header(path: Path) -> ZeekHeader | None:
    """The header of a Zeek TSV log whose type DuckDB reads itself (dns, conn); None otherwise."""
    try:
        lines = head(path, 40)
        with open(path, "rb") as fh:
            gz = fh.read(2) == GZIP_MAGIC
    except (InputError, OSError):
        return None
    if not lines or not lines[0].startswith("#separator "):
        return None
    sep = _unescape(lines[0][len("#separator ") :]) or "\t"
    info: dict[str, str] = {}
    skip = len(lines)
    for i, line in enumerate(lines):
        if not line.startswith("#"):
            skip = i
            break
        key, _, value = line.partition(sep)
        info[key] = value
    else:
        return None
    fields = info.get("#fields", "").split(sep)
    log = info.get("#path", "") or path.name.split(".", 1)[0]
    if log not in FAST_LOGS or len(sep) != 1 or "ts" not in fields or "id.orig_h" not in fields:
        return None
    return ZeekHeader(
        path=log,
        sep=sep,
        set_sep=_unescape(info.get("#set_separator", ",")) or ",",
        empty=info.get("#empty_field", "(empty)"),
        unset=info.get("#unset_field", "-"),
        fields=fields,
        skip=skip,
        gzip=gz,
    )


def zeek_events_sql(
    path: Path,
    h: ZeekHeader,
    v4_all: bool = False,
    v6: bool = True,
    internal: Sequence[str] = (),
    materialize: bool = True,
) -> str:
    """The candidate rows of a Zeek dns/conn TSV log as the event relation: one pass of DuckDB's
    CSV reader, every column text, the few columns matching needs kept (`ev`) and filtered by
    the distinct values with listed keys; a line's number is its row number (null_padding keeps
    short lines as rows, a spare last column catches long ones), `bad` says what the Python
    reader would refuse. Without `materialize` (huge logs) nothing is kept: each row is probed
    by its own keys, slower but in constant memory."""
    cols = [*h.fields, "__extra"]
    spec = "{" + ", ".join(f"{_sql_str(c)}: 'VARCHAR'" for c in cols) + "}"
    empty_values = {h.empty, h.unset, "-", "(empty)", ""}
    empties = ", ".join(_sql_str(v) for v in sorted(empty_values))

    def col(name: str) -> str:
        return _ident(name) if name in h.fields else "NULL"

    def text(name: str) -> str:
        return text_of(col(name))

    def text_of(c: str) -> str:
        # trim() copies every string; only the rare padded value needs it.
        out = f"(case when {c} like ' %' or {c} like '% ' then trim({c}) else {c} end)"
        for empty in sorted(empty_values - {""}):
            out = f"nullif({out}, {_sql_str(empty)})"
        return f"coalesce({out}, '')"

    # Cheap checks only (a regular expression or a cast per column costs as much as parsing
    # the row): the field count, the time, the originator. Values that pass are matched
    # exactly later, so a malformed address or port only fails to match.
    ts = col("ts")
    bad = f"""case
      when last_raw is null then 'fewer fields than the #fields header names'
      when __extra is not null then 'more fields than the #fields header names'
      when try_cast(ts_raw as DOUBLE) is null and not starts_with(ts_raw, 'X')
           and ts_raw not in ({empties}) then 'not a time'
      when client = '' then 'no id.orig_h (originator address)'
      else '' end"""
    set_sep = _sql_str(h.set_sep)
    if "answers" in h.fields and "query" in h.fields:
        query = f"lower(rtrim({text('query')}, '.'))"
        answers_raw = text("answers")
    else:
        query, answers_raw = "''", "''"
    answers = f"""list_filter(list_transform(
            case when answers_raw = '' then [] else string_split(answers_raw, {set_sep}) end,
            lambda a: case when contains(trim(a), ':')
                                or regexp_full_match(trim(a), '[0-9.]+') then trim(a)
                           else lower(rtrim(trim(a), '.')) end),
            lambda a: a not in ({empties}) and (contains(a, ':') or contains(a, '.'))
                      and not regexp_matches(a, '\\s'))"""
    options = (
        f"delim={_sql_str(h.sep)}, header=false, skip={h.skip}, columns={spec}, quote='', "
        "escape='', auto_detect=false, null_padding=true, strict_mode=false"
        + (", compression='gzip'" if h.gzip else ", compression='none'")
    )
    if materialize:
        keep = row_filter(set_sep, v6)
        cands = "," + candidate_values(v4_all, internal)
        rows = "ev"
    else:
        keep = row_filter_per_row(set_sep, v4_all, v6)
        cands = ""
        rows = f"(select *, {probe_keys(internal)} from ev)"
    return f"""
      with ev as {"materialized" if materialize else "not materialized"} (
        select rn, ts_raw, client, server, query, answers_raw,
               split_part(answers_raw, {set_sep}, 1) as a1, {bad} as bad from (
          select rn, {ts} as ts_raw, {_ident(h.fields[-1])} as last_raw, __extra,
                 {text("id.orig_h")} as client, {text("id.resp_h")} as server,
                 {query} as query, {answers_raw} as answers_raw
          from (select row_number() over () as rn, *
                from read_csv({_sql_str(str(path))}, {options}))
          where {ts} is null or not starts_with({ts}, '#')))
      {cands}
      select {_sql_str(str(path))} as src, rn + {h.skip} as line, rn as eid,
             to_timestamp(try_cast({text_of("ts_raw")} as DOUBLE)) as ts,
             client, server, query, {answers} as answers, '' as host,
             '' as url, '' as url_norm, '' as md5, '' as sha1, '' as sha256, bad
      from {rows} where {keep}"""
