"""MISP warninglists (known-benign values: private ranges, empty-file hashes, public resolvers),
compiled once so that every imported indicator can be checked against them cheaply."""

from __future__ import annotations

import bisect
import ipaddress
import json
import re
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
    """A list ready for matching: a predicate over (value, type)."""

    wl: Warninglist
    types: frozenset[IndicatorType]
    match: Matcher
    by_host: bool = field(default=False)  # hostname/cidr lists see a URL's host


def _compile_string(entries: list[str]) -> Matcher:
    values = {e.strip().lower() for e in entries}
    values |= {ip for e in entries if (ip := _canonical_ip(e)) is not None}
    return lambda value, _kind: value.strip().lower() in values


def _compile_substring(entries: list[str]) -> Matcher:
    parts = sorted({e.lower() for e in entries if e}, key=len, reverse=True)
    if len(parts) <= 16:
        return lambda value, _kind: any(p in value.lower() for p in parts)
    combined = re.compile("|".join(re.escape(p) for p in parts))
    return lambda value, _kind: combined.search(value.lower()) is not None


def _compile_hostname(entries: list[str]) -> Matcher:
    names = {h for e in entries if (h := _host(e))}

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


def _compile_cidr(nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> Matcher:
    ranges = _Ranges(nets)

    def match(value: str, kind: IndicatorType) -> bool:
        if kind not in _IP:
            return False
        span = _ip_span(value)
        return span is not None and ranges.covers(*span)

    return match


def _compile_regex(patterns: list[re.Pattern[str]]) -> Matcher:
    return lambda value, _kind: any(p.search(value) for p in patterns)


class WarninglistSet:
    """Compiled warninglists; `match` names the first list that suppresses an indicator."""

    def __init__(self, lists: Iterable[Warninglist], issues: IssueLog | None = None) -> None:
        issues = issues if issues is not None else IssueLog()
        self.lists: list[Warninglist] = []
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
            for kind in compiled.types:
                self._by_type[kind].append(compiled)
            if compiled.by_host:
                # A URL is checked by its host against lists that fit the host or URLs.
                for kind in compiled.types & {T.DOMAIN, T.IPV4, T.IPV6}:
                    self._host_lists[kind].append(compiled)

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
        return _Compiled(wl, types, _compile_string(wl.entries))
    if wl.type == "substring":
        return _Compiled(wl, types, _compile_substring(wl.entries))
    if wl.type == "hostname":
        return _Compiled(wl, types, _compile_hostname(wl.entries), by_host=True)
    if wl.type == "cidr":
        nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in wl.entries:
            try:
                nets.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                issues.add(wl.path, lines.find(entry), f"not an IP network: {entry[:80]!r}")
        return _Compiled(wl, types, _compile_cidr(nets), by_host=True)
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
