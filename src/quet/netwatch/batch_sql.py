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


def _gid(names: Sequence[str], name: str) -> int:
    """grouping_id() of the grouping set that holds only `name`: a bit set for every other."""
    return sum(1 << (len(names) - 1 - i) for i, n in enumerate(names) if n != name)


def candidate_values(
    sql: ZeekSql,
    dns: bool,
    v4_all: bool,
    v6: bool,
    internal: Sequence[str],
    digit_names: bool = True,
) -> tuple[str, str]:
    """CTEs over the raw rows `ev` (client, server, query, answers as the log wrote them) that
    list the distinct raw values whose cleaned keys are listed, and the candidate test of a row
    on them. Logs repeat their names and addresses, so cleaning and the label and /24 keys cost
    once per distinct value, not per row. A client value only counts when the client is
    outside (internal clients are never probed) — or when it is empty (a bad line). Every
    answer of a raw answers value is tested, so a row with several answers is a candidate only
    when one of them has a listed key."""
    v6_test = "or contains(c, ':')" if v6 else ""
    names = ("server", "client", "query", "answers") if dns else ("server", "client")
    # One pass for every column's distinct values (grouping sets), materialized: else the
    # optimizer pushes the filters on them below the grouping, back to every row.
    sets = ", ".join(f"({n})" for n in names)
    ctes = [
        f"""dv as materialized (select {", ".join(names)}, grouping_id({", ".join(names)}) as g
                           from ev group by grouping sets ({sets})),
    cand_s as (select v from (select server as v, {sql.text_of("server")} as c from dv
                              where g = {_gid(names, "server")})
               where c <> '' and ({ip_listed("c", v4_all)} {v6_test})),
    cand_c as (select v from (select client as v, {sql.text_of("client")} as c from dv
                              where g = {_gid(names, "client")})
               where c = '' or (not {internal_test("c", internal)} and {ip_listed("c", v4_all)})
                     {v6_test})"""
    ]
    test = ["server in (select v from cand_s)", "client in (select v from cand_c)"]
    if dns:
        # Each answer of a raw answers text, roughly cleaned (lower case, trimmed, no final
        # dot): a superset of the answers the matcher reads, which is all a prefilter needs.
        # Only an answer ending in a digit can be an IPv4 address, and only one ending in
        # something else can have a listed name's key — unless a listed key ends in a digit.
        answers = f"(select answers as v from dv where g = {_gid(names, 'answers')})"
        one = "rtrim(trim(lower(v)), '.')"
        each = f"rtrim(trim(unnest(string_split(lower(v), {sql.set_sep}))), '.')"
        digit = "(right(c, 1) between '0' and '9')"
        name_too = f"or {name_listed('c')}" if digit_names else ""
        ctes.append(
            f"""cand_q as (select v from (select query as v, {sql.query("query")} as c from dv
                              where g = {_gid(names, "query")})
               where c <> '' and {name_listed("c")}),
    ans as materialized (
      select v, {one} as c from {answers} where not contains(v, {sql.set_sep})
      union all
      select v, {each} as c from {answers} where contains(v, {sql.set_sep})),
    cand_a as (
      select v from ans where {digit} and ({ip_listed("c", v4_all)} {name_too})
      union
      select v from ans where not {digit} and {name_listed("c")}
      {"union select v from ans where contains(c, ':')" if v6 else ""})"""
        )
        test += ["query in (select v from cand_q)", "answers in (select v from cand_a)"]
    return ",\n    ".join(ctes), "(bad <> 0 or " + " or ".join(test) + ")"


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
# listed prefix, URLs and hashes exact. Names and addresses are looked up once per distinct
# value, then joined back to their candidates. IPv6 values are looked up in Python (batch.py).
HITS = r"""
create or replace temp table raw_hits as
with dom_suffix as (
  select key, unnest(list_transform(range(len(p) - 1),
         lambda j: array_to_string(p[j + 1:], '.'))) as suffix
  from (select key, string_split(key, '.') p from (
          select distinct key from cand where kind = 'dom')
        where not regexp_matches(key, '[/:\[\]\s@]'))
),
v4 as (
  select key, (p[1]::UBIGINT << 24) + (p[2]::UBIGINT << 16) + (p[3]::UBIGINT << 8)
              + p[4]::UBIGINT as ip
  from (select key, string_split(key, '.') p from (
          select distinct key from cand where kind = 'v4'))
  where len(p) = 4 and list_bool_and(list_transform(p, lambda x: regexp_full_match(x, '[0-9]{1,3}')
        and x::INT <= 255))
),
cidr as (
  select v4.key, c4.iid, c4.plen, max(c4.plen) over (partition by v4.key) as best
  from v4 cross join (select distinct plen from c4) p
  join c4 on c4.plen = p.plen and c4.net = v4.ip >> (32 - p.plen)
),
key_hits as (
  select 'dom' as kind, d.key, dom.iid from dom_suffix d join dom on dom.key = d.suffix
  union all
  select 'v4', v4.key, v4x.iid from v4 join v4x on v4x.key = v4.key
  union all
  select 'v4', key, iid from cidr where plen = best
)
select c.src, c.line, c.eid, c.ts, c.client, c.server, c.field, c.value, c.rank, h.iid
  from cand c join key_hits h on h.kind = c.kind and h.key = c.key
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


BAD_REASONS = {
    1: "fewer fields than the #fields header names",
    2: "more fields than the #fields header names",
    3: "not a time",
}
COMMENT = 255  # a `#` line inside the log (`#close`, the headers of a concatenated log)


class ZeekSql:
    """The SQL pieces for one Zeek dns/conn TSV header: the CSV reader's options, the
    clean-up of a column's text, the answers list."""

    def __init__(self, h: ZeekHeader) -> None:
        self.h = h
        self.empty_values = {h.empty, h.unset, "-", "(empty)", ""}
        self.empties = ", ".join(_sql_str(v) for v in sorted(self.empty_values))
        self.set_sep = _sql_str(h.set_sep)
        self.dns = "answers" in h.fields and "query" in h.fields

    def col(self, name: str) -> str:
        return _ident(name) if name in self.h.fields else "NULL"

    def text_of(self, c: str) -> str:
        """A column's text: '' for the unset and empty markers, trimmed only when padded
        (trim() copies every string)."""
        out = f"(case when {c} like ' %' or {c} like '% ' then trim({c}) else {c} end)"
        for empty in sorted(self.empty_values - {""}):
            out = f"nullif({out}, {_sql_str(empty)})"
        return f"coalesce({out}, '')"

    def query(self, c: str) -> str:
        return f"lower(rtrim({self.text_of(c)}, '.'))"

    def answers(self, text: str) -> str:
        """The list of answers of an answers text (already through `text_of`)."""
        return f"""list_filter(list_transform(
            case when {text} = '' then [] else string_split({text}, {self.set_sep}) end,
            lambda a: case when contains(trim(a), ':')
                                or regexp_full_match(trim(a), '[0-9.]+') then trim(a)
                           else lower(rtrim(trim(a), '.')) end),
            lambda a: a not in ({self.empties}) and (contains(a, ':') or contains(a, '.'))
                      and not regexp_matches(a, '\\s'))"""

    def read(self, source: str, skip: int, gzip: bool) -> str:
        """read_csv of a log (or of a part of one, from a pipe): every column text, one spare
        column catching a long line, null_padding keeping a short one as a row."""
        cols = [*self.h.fields, "__extra"]
        spec = "{" + ", ".join(f"{_sql_str(c)}: 'VARCHAR'" for c in cols) + "}"
        options = (
            f"delim={_sql_str(self.h.sep)}, header=false, skip={skip}, columns={spec}, "
            "quote='', escape='', auto_detect=false, null_padding=true, strict_mode=false"
            + (", compression='gzip'" if gzip else ", compression='none'")
        )
        return f"read_csv({_sql_str(source)}, {options})"

    def bad_code(self) -> str:
        """Why the reader refuses a row, as a code (0: a good row so far; the originator is
        checked later, on its distinct values): cheap checks only — a regular expression or a
        cast per column costs as much as parsing the row. Values that pass are matched
        exactly later, so a malformed address or port only fails to match."""
        ts = self.col("ts")
        return f"""(case
          when {ts} is not null and starts_with({ts}, '#') then {COMMENT}
          when {_ident(self.h.fields[-1])} is null then 1
          when __extra is not null then 2
          when try_cast({ts} as DOUBLE) is null and not starts_with({ts}, 'X')
               and {ts} not in ({self.empties}) then 3
          else 0 end)::UTINYINT"""


def zeek_rows_sql(source: str, h: ZeekHeader, skip: int, gzip: bool) -> str:
    """A Zeek dns/conn TSV log (or a part of one) as raw rows: its row number, the time as a
    number, the client, server, query and answers as written, the bad-line code. One serial
    pass of DuckDB's CSV reader (the row number keeps it serial: parts read side by side give
    the parallelism)."""
    sql = ZeekSql(h)
    names = "query, answers" if sql.dns else ""
    extra = f", {sql.col('query')} as query, {sql.col('answers')} as answers" if names else ""
    return f"""
      select row_number() over () as rn, try_cast({sql.col("ts")} as DOUBLE) as ts,
             {sql.col("id.orig_h")} as client, {sql.col("id.resp_h")} as server {extra},
             {sql.bad_code()} as bad
      from {sql.read(source, skip, gzip)}"""


def zeek_candidates_sql(
    path: Path,
    h: ZeekHeader,
    parts: Sequence[tuple[str, int]],
    v4_all: bool = False,
    v6: bool = True,
    internal: Sequence[str] = (),
    digit_names: bool = True,
) -> str:
    """The candidate rows of a log read into `parts` (tables of `zeek_rows_sql`, each with the
    number of rows before it) as the event relation, filtered by the distinct values with
    listed keys; a line's number is its row number plus the header length (null_padding keeps
    short lines as rows), `bad` says what the Python reader would refuse."""
    sql = ZeekSql(h)
    cols = "ts, client, server" + (", query, answers" if sql.dns else "")
    ev = "\n      union all ".join(
        f"select rn + {before} as eid, {cols}, bad from {table} where bad <> {COMMENT}"
        for table, before in parts
    )
    ctes, keep = candidate_values(sql, sql.dns, v4_all, v6, internal, digit_names)
    if sql.dns:
        query, answers = sql.query("query"), sql.answers(sql.text_of("answers"))
    else:
        query, answers = "''", "[]::VARCHAR[]"
    reasons = " ".join(f"when {code} then {_sql_str(why)}" for code, why in BAD_REASONS.items())
    return f"""
      with ev as not materialized ({ev}),
      {ctes}
      select {_sql_str(str(path))} as src, eid + {h.skip} as line, eid, to_timestamp(ts) as ts,
             client, server, query, answers, '' as host, '' as url, '' as url_norm,
             '' as md5, '' as sha1, '' as sha256,
             case when bad <> 0 then (case bad {reasons} end)
                  when client = '' then 'no id.orig_h (originator address)' else '' end as bad
      from (select eid, ts, bad, {sql.text_of("client")} as client,
                   {sql.text_of("server")} as server, {query} as query, {answers} as answers
            from ev where {keep})"""


def zeek_events_sql(
    path: Path,
    h: ZeekHeader,
    v4_all: bool = False,
    v6: bool = True,
    internal: Sequence[str] = (),
) -> str:
    """The candidate rows of a log too large to keep its rows in memory, in one serial pass:
    each row is probed by its own keys, slower but in constant memory."""
    sql = ZeekSql(h)
    set_sep = sql.set_sep
    ts = sql.col("ts")
    if sql.dns:
        query = sql.query(sql.col("query"))
        answers_raw = sql.text_of(sql.col("answers"))
    else:
        query, answers_raw = "''", "''"
    bad = f"""case
      when last_raw is null then 'fewer fields than the #fields header names'
      when __extra is not null then 'more fields than the #fields header names'
      when try_cast(ts_raw as DOUBLE) is null and not starts_with(ts_raw, 'X')
           and ts_raw not in ({sql.empties}) then 'not a time'
      when client = '' then 'no id.orig_h (originator address)'
      else '' end"""
    keep = row_filter_per_row(set_sep, v4_all, v6)
    return f"""
      with ev as not materialized (
        select rn, ts_raw, client, server, query, answers_raw,
               split_part(answers_raw, {set_sep}, 1) as a1, {bad} as bad from (
          select rn, {ts} as ts_raw, {_ident(h.fields[-1])} as last_raw, __extra,
                 {sql.text_of(sql.col("id.orig_h"))} as client,
                 {sql.text_of(sql.col("id.resp_h"))} as server,
                 {query} as query, {answers_raw} as answers_raw
          from (select row_number() over () as rn, * from {sql.read(str(path), h.skip, h.gzip)})
          where {ts} is null or not starts_with({ts}, '#')))
      select {_sql_str(str(path))} as src, rn + {h.skip} as line, rn as eid,
             to_timestamp(try_cast({sql.text_of("ts_raw")} as DOUBLE)) as ts,
             client, server, query, {sql.answers("answers_raw")} as answers, '' as host,
             '' as url, '' as url_norm, '' as md5, '' as sha1, '' as sha256, bad
      from (select *, {probe_keys(internal)} from ev) where {keep}"""
