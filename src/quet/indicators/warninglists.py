"""MISP warninglists (known-benign values: private ranges, empty-file hashes, public resolvers),
compiled once so that every imported indicator can be checked against them cheaply."""

from __future__ import annotations

import bisect
import heapq
import ipaddress
import json
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from quet.errors import InputError
from quet.indicators.model import Indicator, IndicatorType, IssueLog

T = IndicatorType
_IP = (T.IPV4, T.IPV6, T.CIDR)
_ALL = frozenset(IndicatorType)
LIST_TYPES = ("string", "substring", "hostname", "cidr", "regex")
DEFAULT_DIR = Path(__file__).with_name("warninglists")

# MISP attribute types -> our indicator types. Composite types (domain|ip, filename|md5) fit
# every part we hold as an indicator of its own; types we never hold (email, ssdeep) map to none.
MISP_ATTRIBUTES: dict[str, tuple[IndicatorType, ...]] = {
    "ip-src": _IP,
    "ip-dst": _IP,
    "ip-src|port": _IP,
    "ip-dst|port": _IP,
    "ip": _IP,
    "domain|ip": (T.DOMAIN, *_IP),
    "domain": (T.DOMAIN,),
    "hostname": (T.DOMAIN,),
    "hostname|port": (T.DOMAIN,),
    "url": (T.URL,),
    "uri": (T.URL,),
    "link": (T.URL,),
    "md5": (T.MD5,),
    "filename|md5": (T.MD5, T.FILENAME),
    "sha1": (T.SHA1,),
    "filename|sha1": (T.SHA1, T.FILENAME),
    "sha256": (T.SHA256,),
    "filename|sha256": (T.SHA256, T.FILENAME),
    "filename": (T.FILENAME,),
    "yara": (T.YARA,),
}


@dataclass
class Warninglist:
    """One MISP warninglist as read from its list.json."""

    name: str
    description: str
    type: str  # string|substring|hostname|cidr|regex
    matching_attributes: tuple[str, ...]
    entries: list[str]
    version: int = 0
    slug: str = ""  # the folder name in MISP/misp-warninglists, e.g. "rfc1918"
    path: str = ""

    def applies_to(self) -> frozenset[IndicatorType]:
        """The indicator types this list is checked against; no attributes means all of them."""
        if not self.matching_attributes:
            return _ALL
        return frozenset(t for a in self.matching_attributes for t in MISP_ATTRIBUTES.get(a, ()))


class _Ranges:
    """A union of IP networks as merged, sorted [start, end] integer intervals per version."""

    def __init__(self, nets: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> None:
        spans: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
        for net in nets:
            spans[net.version].append((int(net.network_address), int(net.broadcast_address)))
        self._starts: dict[int, list[int]] = {}
        self._ends: dict[int, list[int]] = {}
        for version, items in spans.items():
            merged: list[list[int]] = []
            for start, end in sorted(items):
                if merged and start <= merged[-1][1] + 1:
                    merged[-1][1] = max(merged[-1][1], end)
                else:
                    merged.append([start, end])
            self._starts[version] = [s for s, _ in merged]
            self._ends[version] = [e for _, e in merged]

    def spans(self, version: int) -> Iterable[tuple[int, int]]:
        return zip(self._starts[version], self._ends[version], strict=True)

    def covers(self, version: int, first: int, last: int) -> bool:
        i = bisect.bisect_right(self._starts[version], first) - 1
        return i >= 0 and last <= self._ends[version][i]


def _ip_span(value: str) -> tuple[int, int, int] | None:
    """(version, first, last) of an address or network; IPv4-mapped IPv6 counts as IPv4."""
    try:
        net = ipaddress.ip_network(value.strip().strip("[]"), strict=False)
    except ValueError:
        return None
    if isinstance(net, ipaddress.IPv6Network):
        mapped = net.network_address.ipv4_mapped
        if mapped is not None and net.prefixlen >= 96:
            first = int(mapped)
            return 4, first, first + net.num_addresses - 1
    return net.version, int(net.network_address), int(net.broadcast_address)


def _canonical_ip(value: str) -> str | None:
    try:
        return ipaddress.ip_address(value.strip().strip("[]")).compressed
    except ValueError:
        return None


def _host(value: str) -> str:
    return value.strip().rstrip(".").lower().removeprefix("*.").lstrip(".")


def _pcre(entry: str) -> re.Pattern[str]:
    """Compile a MISP regex entry, written either bare or PCRE-style as /pattern/flags."""
    flags = 0
    pattern = entry
    last = entry.rfind("/")
    if entry.startswith("/") and last > 0 and set(entry[last + 1 :]) <= set("imsxu"):
        pattern = entry[1:last]
        for ch in entry[last + 1 :]:
            flags |= {"i": re.I, "m": re.M, "s": re.S, "x": re.X, "u": 0}[ch]
    return re.compile(pattern, flags)


Matcher = Callable[[str, IndicatorType], bool]


@dataclass
class _Compiled:
    """A list ready for matching: a predicate over (value, type), and the set or ranges behind
    it, which `_Plan` merges across lists."""

    wl: Warninglist
    types: frozenset[IndicatorType]
    match: Matcher
    by_host: bool = field(default=False)  # hostname/cidr lists see a URL's host
    values: set[str] | None = None  # string lists
    names: set[str] | None = None  # hostname lists
    ranges: _Ranges | None = None  # cidr lists


def _string_values(entries: list[str]) -> set[str]:
    values = {e.strip().lower() for e in entries}
    return values | {ip for e in entries if (ip := _canonical_ip(e)) is not None}


def _compile_string(values: set[str]) -> Matcher:
    return lambda value, _kind: value.strip().lower() in values


def _compile_substring(entries: list[str]) -> Matcher:
    parts = sorted({e.lower() for e in entries if e}, key=len, reverse=True)
    if len(parts) <= 16:
        return lambda value, _kind: any(p in value.lower() for p in parts)
    combined = re.compile("|".join(re.escape(p) for p in parts))
    return lambda value, _kind: combined.search(value.lower()) is not None


def _compile_hostname(names: set[str]) -> Matcher:
    def match(value: str, kind: IndicatorType) -> bool:
        name = _host(value)
        if name in names:
            return True
        if kind is not T.DOMAIN:
            return False  # an IP address has no parent labels
        dot = name.find(".")
        while dot != -1:
            name = name[dot + 1 :]
            if name in names:
                return True
            dot = name.find(".")
        return False

    return match


def _compile_cidr(ranges: _Ranges) -> Matcher:
    def match(value: str, kind: IndicatorType) -> bool:
        if kind not in _IP:
            return False
        span = _ip_span(value)
        return span is not None and ranges.covers(*span)

    return match


def _compile_regex(patterns: list[re.Pattern[str]]) -> Matcher:
    return lambda value, _kind: any(p.search(value) for p in patterns)


NO_MATCH = 1 << 62  # the rank of "no list matched"; real ranks are list positions


def _first_cover(lists: list[tuple[int, _Ranges]], version: int) -> tuple[list[int], list[int]]:
    """Disjoint intervals (as sorted starts) each with the lowest rank of a list covering it,
    so one bisect answers "the first CIDR list holding this address" for all lists at once."""
    events: dict[int, list[tuple[int, int]]] = {}
    for rank, ranges in lists:
        for start, end in ranges.spans(version):
            events.setdefault(start, []).append((1, rank))
            events.setdefault(end + 1, []).append((-1, rank))
    starts, ranks = [0], [NO_MATCH]
    heap: list[int] = []
    dead: dict[int, int] = {}
    for pos in sorted(events):
        for step, rank in events[pos]:
            if step > 0:
                heapq.heappush(heap, rank)
            else:
                dead[rank] = dead.get(rank, 0) + 1
        while heap and dead.get(heap[0], 0):
            dead[heap[0]] -= 1
            heapq.heappop(heap)
        best = heap[0] if heap else NO_MATCH
        if best == ranks[-1]:
            continue
        if starts[-1] == pos:
            ranks[-1] = best
        else:
            starts.append(pos)
            ranks.append(best)
    return starts, ranks


class _Plan:
    """Every list that one kind of value is checked against, merged by list type: the string
    lists into one dict, the hostname lists into one dict walked by labels, the CIDR lists
    into one interval table. `rank` gives the lowest rank (list position) that matches."""

    def __init__(self, kind: IndicatorType, items: list[tuple[int, _Compiled]]) -> None:
        self.kind = kind
        strings: dict[str, int] = {}
        hosts: dict[str, int] = {}
        self.cidrs: list[tuple[int, _Ranges]] = []
        self.others: list[tuple[int, Matcher]] = []  # substring and regex lists, in rank order
        for rank, c in sorted(items, key=lambda item: item[0]):
            if c.values is not None:
                for v in c.values:
                    strings.setdefault(v, rank)
            elif c.names is not None:
                for v in c.names:
                    hosts.setdefault(v, rank)
            elif c.ranges is not None:
                if kind in _IP:  # a CIDR list never matches any other kind of value
                    self.cidrs.append((rank, c.ranges))
            else:
                self.others.append((rank, c.match))
        self.strings = strings or None
        self.hosts = hosts or None
        self.walk = kind is T.DOMAIN
        self.v4 = _first_cover(self.cidrs, 4) if self.cidrs else None
        self.v6 = _first_cover(self.cidrs, 6) if self.cidrs else None
        self.empty = not (strings or hosts or self.cidrs or self.others)

    def rank(self, value: str) -> int:
        best = NO_MATCH
        if self.strings is not None:
            best = self.strings.get(value.strip().lower(), NO_MATCH)
        if self.hosts is not None:
            best = min(best, self._host_rank(value))
        if self.v4 is not None:
            best = min(best, self._ip_rank(value))
        for rank, match in self.others:
            if rank >= best:
                break
            if match(value, self.kind):
                return rank
        return best

    def _host_rank(self, value: str) -> int:
        hosts = self.hosts
        assert hosts is not None
        name = _host(value)
        best = hosts.get(name, NO_MATCH)
        if self.walk:
            dot = name.find(".")
            while dot != -1:
                name = name[dot + 1 :]
                best = min(best, hosts.get(name, NO_MATCH))
                dot = name.find(".")
        return best

    def _ip_rank(self, value: str) -> int:
        assert self.v4 is not None and self.v6 is not None
        try:  # the common case, a plain dotted quad, without ipaddress
            ip = _from_bytes(_pton(_AF_INET, value), "big")
        except OSError:
            span = _ip_span(value)
            if span is None:
                return NO_MATCH
            version, ip, last = span
            if ip != last:  # a network: it must lie whole inside one list's range
                for rank, ranges in self.cidrs:
                    if ranges.covers(version, ip, last):
                        return rank
                return NO_MATCH
            starts, ranks = self.v4 if version == 4 else self.v6
            return ranks[bisect.bisect_right(starts, ip) - 1]
        starts, ranks = self.v4
        return ranks[bisect.bisect_right(starts, ip) - 1]


_pton, _AF_INET, _from_bytes = socket.inet_pton, socket.AF_INET, int.from_bytes
# A URL whose host urlsplit would give as is: ASCII, no user info, no brackets.
_PLAIN_URL = re.compile(
    r"[A-Za-z][A-Za-z0-9+.-]*://([^\x00-\x20\x7f-\U0010ffff/?#@\[\]:%]+)"
    r"(?::[^\x00-\x20\x7f-\U0010ffff/?#@\[\]]*)?(?=[/?#]|\Z)"
)


class WarninglistSet:
    """Compiled warninglists; `match` names the first list that suppresses an indicator."""

    def __init__(self, lists: Iterable[Warninglist], issues: IssueLog | None = None) -> None:
        issues = issues if issues is not None else IssueLog()
        self.lists: list[Warninglist] = []
        self._compiled: list[_Compiled] = []  # parallel to `lists`: a list's rank is its index
        self._by_type: dict[IndicatorType, list[_Compiled]] = {t: [] for t in IndicatorType}
        self._host_lists: dict[IndicatorType, list[_Compiled]] = {t: [] for t in IndicatorType}
        seen: set[str] = set()
        for wl in lists:
            if wl.name in seen:
                issues.add(wl.path, 1, f"duplicate warninglist name {wl.name!r}; the first is kept")
                continue
            compiled = _compile(wl, issues)
            if compiled is None:
                continue
            seen.add(wl.name)
            self.lists.append(wl)
            self._compiled.append(compiled)
            for kind in compiled.types:
                self._by_type[kind].append(compiled)
            if compiled.by_host:
                # A URL is checked by its host against lists that fit the host or URLs.
                for kind in compiled.types & {T.DOMAIN, T.IPV4, T.IPV6}:
                    self._host_lists[kind].append(compiled)
        self._build_plans()

    def _build_plans(self) -> None:
        """One merged plan per indicator type, so that `match` does one dispatch and a few
        lookups instead of a walk over every list. A URL has two: its own value against the
        URL-fitting string/substring/regex lists, and its host (by the host's kind) against the
        hostname and CIDR lists — those that fit URLs keep their rank, those that fit only the
        host's kind rank after every list (MISP's order: a URL's lists first)."""
        ranked = {id(c): i for i, c in enumerate(self._compiled)}
        n = len(ranked)
        self._names = tuple(wl.name for wl in self.lists) * 2
        self._plans: dict[IndicatorType, _Plan | None] = {}
        for kind in IndicatorType:
            if kind is T.URL:
                items = [(ranked[id(c)], c) for c in self._by_type[kind] if not c.by_host]
            else:
                items = [(ranked[id(c)], c) for c in self._by_type[kind]]
            plan = _Plan(kind, items)
            self._plans[kind] = None if plan.empty else plan
        self._url_hosts: dict[IndicatorType, _Plan | None] = {}
        for kind in (T.DOMAIN, T.IPV4, T.IPV6):
            items = [(ranked[id(c)], c) for c in self._by_type[T.URL] if c.by_host]
            items += [
                (n + ranked[id(c)], c) for c in self._host_lists[kind] if T.URL not in c.types
            ]
            plan = _Plan(kind, items)
            self._url_hosts[kind] = None if plan.empty else plan
        self._url_any_host = any(p is not None for p in self._url_hosts.values())

    @classmethod
    def load(cls, paths: Iterable[Path], issues: IssueLog) -> WarninglistSet:
        """Read MISP list.json files, or folders holding them (searched recursively)."""
        lists: list[Warninglist] = []
        for path in paths:
            path = Path(path)
            if path.is_dir():
                files = sorted(path.rglob("list.json"))
            elif path.is_file():
                files = [path]
            else:
                raise InputError(f"{path}: no such warninglist file or folder")
            for file in files:
                wl = read_list(file, issues)
                if wl is not None:
                    lists.append(wl)
        return cls(lists, issues)

    @classmethod
    def default(cls) -> WarninglistSet:
        """The lists shipped with Quét (see warninglists/README.md for the choice)."""
        return cls.load([DEFAULT_DIR], IssueLog())

    def match(self, ind: Indicator) -> str | None:
        kind = ind.type
        if kind is T.URL:
            return self._match_url(ind.value)
        plan = self._plans[kind]
        if plan is None:
            return None
        rank = plan.rank(ind.value)
        return None if rank == NO_MATCH else self._names[rank]

    def _match_url(self, url: str) -> str | None:
        plan = self._plans[T.URL]
        best = NO_MATCH if plan is None else plan.rank(url)
        if self._url_any_host:
            host = _fast_url_host(url)
            if host is not None:
                host_plan = self._url_hosts[host[0]]
                if host_plan is not None:
                    best = min(best, host_plan.rank(host[1]))
        return None if best == NO_MATCH else self._names[best]

    def _match_each(self, ind: Indicator) -> str | None:
        """The plain walk over every list in order: what `match` answers, slowly (kept as the
        reference the merged plans are tested against)."""
        host = _url_host(ind.value) if ind.type is T.URL else None
        for compiled in self._by_type[ind.type]:
            if compiled.by_host and ind.type is T.URL:
                # MISP matches a URL against hostname and CIDR lists by its host.
                if host is not None and compiled.match(host[1], host[0]):
                    return compiled.wl.name
            elif compiled.match(ind.value, ind.type):
                return compiled.wl.name
        if host is not None:
            for compiled in self._host_lists[host[0]]:
                if T.URL not in compiled.types and compiled.match(host[1], host[0]):
                    return compiled.wl.name
        return None

    def names(self) -> list[str]:
        return [wl.name for wl in self.lists]

    def __len__(self) -> int:
        return len(self.lists)


def _fast_url_host(url: str) -> tuple[IndicatorType, str] | None:
    """`_url_host` without urlsplit and ipaddress for plain URLs (most of them)."""
    plain = _PLAIN_URL.match(url)
    if plain is None:
        return _url_host(url)
    host = plain.group(1).lower()
    try:
        _pton(_AF_INET, host)
    except OSError:
        return T.DOMAIN, host  # no colon, so no IPv6 either: ipaddress would refuse it
    return T.IPV4, host


def _url_host(url: str) -> tuple[IndicatorType, str] | None:
    try:
        host = urlsplit(url if "://" in url else "http://" + url).hostname
    except ValueError:
        return None
    if not host:
        return None
    ip = _canonical_ip(host)
    if ip is not None:
        return (T.IPV6 if ":" in ip else T.IPV4), ip
    return T.DOMAIN, host


def _compile(wl: Warninglist, issues: IssueLog) -> _Compiled | None:
    types = wl.applies_to()
    lines = _EntryLines(wl.path)
    if wl.type == "string":
        values = _string_values(wl.entries)
        return _Compiled(wl, types, _compile_string(values), values=values)
    if wl.type == "substring":
        return _Compiled(wl, types, _compile_substring(wl.entries))
    if wl.type == "hostname":
        names = {h for e in wl.entries if (h := _host(e))}
        return _Compiled(wl, types, _compile_hostname(names), by_host=True, names=names)
    if wl.type == "cidr":
        nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in wl.entries:
            try:
                nets.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                issues.add(wl.path, lines.find(entry), f"not an IP network: {entry[:80]!r}")
        ranges = _Ranges(nets)
        return _Compiled(wl, types, _compile_cidr(ranges), by_host=True, ranges=ranges)
    if wl.type == "regex":
        patterns: list[re.Pattern[str]] = []
        for entry in wl.entries:
            try:
                patterns.append(_pcre(entry))
            except re.error as exc:
                issues.add(wl.path, lines.find(entry), f"bad regex {entry[:80]!r}: {exc}")
        return _Compiled(wl, types, _compile_regex(patterns))
    issues.add(wl.path, 1, f"unknown warninglist type {wl.type!r}")
    return None


class _EntryLines:
    """Line numbers of list entries, found in the file's text only when an entry is bad."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._text: str | None = None

    def find(self, entry: object) -> int:
        if self._text is None:
            try:
                self._text = Path(self.path).read_text(encoding="utf-8", errors="replace")
            except OSError:
                self._text = ""
        pos = self._text.find(json.dumps(entry), max(self._text.find('"list"'), 0))
        return self._text.count("\n", 0, pos) + 1 if pos >= 0 else 1


def read_list(path: Path, issues: IssueLog) -> Warninglist | None:
    """One list.json; problems go to `issues` with the file and line, and the list is skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        issues.add(str(path), 1, f"not UTF-8 text: {exc.reason}")
        return None
    except OSError as exc:
        raise InputError(f"{path}: cannot read warninglist: {exc.strerror}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        issues.add(str(path), exc.lineno, f"not JSON: {exc.msg}")
        return None
    if not isinstance(data, dict):
        issues.add(str(path), 1, "not a MISP warninglist: the top level is not an object")
        return None
    name, kind, entries = data.get("name"), data.get("type"), data.get("list")
    attrs = data.get("matching_attributes", [])
    problem = ""
    if not isinstance(name, str) or not name:
        problem = "no 'name'"
    elif kind not in LIST_TYPES:
        problem = f"'type' must be one of {', '.join(LIST_TYPES)}, not {kind!r}"
    elif not isinstance(entries, list):
        problem = "no 'list' of entries"
    elif not isinstance(attrs, list) or not all(isinstance(a, str) for a in attrs):
        problem = "'matching_attributes' is not a list of strings"
    if problem:
        issues.add(str(path), 1, f"not a MISP warninglist: {problem}")
        return None
    assert isinstance(name, str) and isinstance(kind, str) and isinstance(entries, list)
    good: list[str] = []
    lines = _EntryLines(str(path))
    lines._text = text
    for entry in entries:
        if isinstance(entry, str) and entry.strip():
            good.append(entry)
        else:
            issues.add(str(path), lines.find(entry), f"empty or non-text entry: {entry!r:.80}")
    version = data.get("version", 0)
    return Warninglist(
        name=name,
        description=str(data.get("description", "")),
        type=kind,
        matching_attributes=tuple(attrs),
        entries=good,
        version=version if isinstance(version, int) else 0,
        slug=path.parent.name if path.name == "list.json" else path.stem,
        path=str(path),
    )
