"""The network matcher: events in, hits out. Pure (no I/O): IPs exact and by longest listed prefix,
domains by labels, URLs normalised, file hashes, the IPs and names in DNS answers."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice

from quet.errors import InputError
from quet.indicators.model import Indicator, IndicatorType, normalise_url
from quet.indicators.sets import IndicatorSet
from quet.indicators.warninglists import WarninglistSet
from quet.netwatch.records import NetEvent
from quet.netwatch.sources import gc_paused

T = IndicatorType
CHUNK = 8192  # events looked up together: numpy's per-call cost is paid once per chunk
# RFC 1918, CGNAT (RFC 6598), loopback, link-local, ULA (RFC 4193) and IPv6 link-local.
DEFAULT_INTERNAL = (
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "fc00::/7",
    "fe80::/10",
    "::1/128",
)
_CACHE_MAX = 1 << 16


@dataclass(slots=True)
class Hit:
    """One event value that an indicator lists."""

    event: NetEvent
    field: str  # server | client | answer | query | host | url | md5 | sha1 | sha256
    value: str  # the event's value that matched
    indicator: Indicator  # value = the listed value (the CIDR, the domain suffix, ...)

    @property
    def internal_host(self) -> str:
        """The internal side: the client, except when the remote side was the client."""
        return self.event.server if self.field == "client" else self.event.client


class InternalNets:
    """Which addresses are ours: decides the remote side when a log does not say it."""

    def __init__(self, cidrs: Iterable[str] = DEFAULT_INTERNAL) -> None:
        nets = []
        for text in cidrs:
            try:
                nets.append(ipaddress.ip_network(text.strip(), strict=False))
            except ValueError as exc:
                raise InputError(f"not a CIDR network: {text!r}") from exc
        self.nets = tuple(nets)
        self._seen: dict[str, bool] = {}

    def __contains__(self, ip: str) -> bool:
        known = self._seen.get(ip)
        if known is None:
            try:
                addr = ipaddress.ip_address(ip)
            except ValueError:
                known = False
            else:
                if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
                    addr = addr.ipv4_mapped
                known = any(addr in net for net in self.nets)
            if len(self._seen) >= _CACHE_MAX:
                self._seen.clear()
            self._seen[ip] = known
        return known


def _looks_v4(text: str) -> bool:
    return bool(text) and text[-1].isdigit() and text[0].isdigit() and text.count(".") == 3


def _is_ip(text: str) -> bool:
    if ":" in text:
        try:
            ipaddress.IPv6Address(text.strip("[]"))
        except ValueError:
            return False
        return True
    if not _looks_v4(text):
        return False
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def _host_of(host: str) -> str:
    """An HTTP Host / SNI value without its port, lower case."""
    h = host.strip().lower().rstrip(".")
    if h.startswith("["):
        return h[1 : h.find("]")] if "]" in h else h
    if h.count(":") == 1:
        h = h.split(":", 1)[0]
    return h


def _full_url(ev: NetEvent) -> str:
    """The event's URL made absolute (Zeek and EVE http logs give the URI and Host apart)."""
    url = ev.url.strip()
    if "://" in url:
        return url
    if ev.host and url.startswith("/"):
        return f"http://{_host_of(ev.host)}{url}"
    return ""


def _both(ev: NetEvent, server_ours: bool) -> tuple[tuple[str, str], ...]:
    if server_ours:
        return (("client", ev.client),)
    return (("server", ev.server), ("client", ev.client))


class Matcher:
    """Matching with the caches that a stream of events needs (values repeat a lot in logs)."""

    def __init__(
        self,
        iset: IndicatorSet,
        warninglists: WarninglistSet | None = None,
        internal: InternalNets | None = None,
    ) -> None:
        self.iset = iset
        self.wl = warninglists
        self.internal = internal if internal is not None else InternalNets()
        counts = iset.counts()
        self._has_ip = any(counts[t] for t in ("v4", "v6", "c4", "c6"))
        self._has_v6 = bool(counts["v6"] or counts["c6"])
        self._has_dom = bool(counts["dom"])
        self._has_url = bool(counts["url"])
        self._has_hash = any(counts[t] for t in ("md5", "sha1", "sha256"))
        self._found: dict[str, list[Indicator]] = {}
        self._best: dict[int, list[Indicator]] = {}
        self._benign: dict[tuple[str, str], bool] = {}

    # -- the pieces -----------------------------------------------------------------------

    def _lookup(self, value: str) -> list[Indicator]:
        hits = self._found.get(value)
        if hits is None:
            hits = self.iset.lookup(value)
            if len(self._found) >= _CACHE_MAX:
                self._found.clear()
            self._found[value] = hits
        return hits

    def _suppressed(self, kind: IndicatorType, value: str) -> bool:
        if self.wl is None:
            return False
        key = (kind.value, value)
        known = self._benign.get(key)
        if known is None:
            known = self.wl.match(Indicator(kind, value)) is not None
            if len(self._benign) >= _CACHE_MAX:
                self._benign.clear()
            self._benign[key] = known
        return known

    def _value_kind(self, value: str, ind: Indicator) -> IndicatorType:
        if ind.type in (T.IPV4, T.IPV6, T.CIDR):
            return T.IPV6 if ":" in value else T.IPV4
        return ind.type

    def _keep(self, value: str, ind: Indicator) -> bool:
        """A value on a warninglist never hits, nor does a listed value that is one."""
        if self._suppressed(self._value_kind(value, ind), value):
            return False
        return not self._suppressed(ind.type, ind.value)

    # -- a chunk --------------------------------------------------------------------------

    def match_chunk(self, events: Sequence[NetEvent]) -> list[Hit]:
        """Hits of a chunk of events, in event order; one hit per event and indicator."""
        # Candidates: (event index, field, value, kind) with kind "v4" | "ip" | "dom" | "other".
        v4_vals: list[str] = []
        v4_at: list[tuple[int, str]] = []
        dom_vals: list[str] = []
        dom_at: list[tuple[int, str]] = []
        slow: list[tuple[int, str, str]] = []  # looked up one by one (IPv6, URLs, hashes)
        internal = self.internal
        is_internal = internal._seen.get  # the cache in front of `in internal`, inlined: hot
        has_ip, has_v6, has_dom = self._has_ip, self._has_v6, self._has_dom
        has_url, has_hash = self._has_url, self._has_hash
        v4_add, v4_at_add, dom_add, dom_at_add = (
            v4_vals.append,
            v4_at.append,
            dom_vals.append,
            dom_at.append,
        )
        for i, ev in enumerate(events):
            if has_ip:
                # The remote side: the server, unless the client is outside and the server is
                # ours (inbound); both when neither side is ours (which one is remote is unknown).
                ours = is_internal(ev.client)
                if ours is None:
                    ours = ev.client in internal
                if ours:
                    sides: tuple[tuple[str, str], ...] = (("server", ev.server),)
                else:
                    server_ours = is_internal(ev.server)
                    if server_ours is None:
                        server_ours = ev.server in internal
                    sides = _both(ev, server_ours)
                for fld, ip in sides:
                    if not ip:
                        continue
                    if ":" in ip:
                        if has_v6:
                            slow.append((i, fld, ip))
                    else:
                        v4_add(ip)
                        v4_at_add((i, fld))
            if ev.query and has_dom:
                dom_add(ev.query)
                dom_at_add((i, "query"))
            if ev.host or ev.url:
                host = _host_of(ev.host) if ev.host else ""
                if not host and ev.url and "://" in ev.url:
                    host = _host_of(ev.url.split("://", 1)[1].split("/", 1)[0])
                if host:
                    if _is_ip(host):
                        if has_ip:
                            slow.append((i, "host", host))
                    elif has_dom:
                        dom_add(host)
                        dom_at_add((i, "host"))
            for ans in ev.answers:
                if ans and ans[-1].isdigit() and ans[0].isdigit() and ans.count(".") == 3:
                    if has_ip:
                        v4_add(ans)
                        v4_at_add((i, "answer"))
                elif ":" in ans:
                    if has_v6 and _is_ip(ans):
                        slow.append((i, "answer", ans))
                elif has_dom and "." in ans:
                    dom_add(ans.lower().rstrip("."))
                    dom_at_add((i, "answer"))
            if ev.url and has_url:
                slow.append((i, "url", ev.url))
            if has_hash:
                for fld, digest in (("md5", ev.md5), ("sha1", ev.sha1), ("sha256", ev.sha256)):
                    if digest:
                        slow.append((i, fld, digest.lower()))
        # (event index, field, value, the batch's best indicator index or -1)
        found: list[tuple[int, str, str, int]] = []
        if v4_vals:
            idx = self.iset.lookup_ipv4_batch(v4_vals)
            for j in (idx >= 0).nonzero()[0].tolist():
                found.append((*v4_at[j], v4_vals[j], int(idx[j])))
        if dom_vals:
            idx = self.iset.lookup_domain_batch(dom_vals)
            for j in (idx >= 0).nonzero()[0].tolist():
                found.append((*dom_at[j], dom_vals[j], int(idx[j])))
        found += [(i, fld, value, -1) for i, fld, value in slow]
        found.sort(key=lambda f: f[0])
        hits: list[Hit] = []
        seen: set[tuple[int, str, str]] = set()
        for i, fld, value, best in found:
            ev = events[i]
            inds = self._indicators(fld, value, ev) if best < 0 else self._by_best(best, value)
            for ind in inds:
                key = (i, ind.type.value, ind.value)
                if key in seen or not self._keep(value, ind):
                    continue
                seen.add(key)
                hits.append(Hit(ev, fld, value, ind))
        return hits

    def _by_best(self, best: int, value: str) -> list[Indicator]:
        """Every indicator a value hits, known from its best one: the values whose most specific
        listed suffix (or longest listed prefix) is the same indicator hit the same list —
        that of the suffix (prefix) itself. An exact IP entry is its value's own."""
        hits = self._best.get(best)
        if hits is None:
            hits = self._lookup(value)
            if len(self._best) >= _CACHE_MAX:
                self._best.clear()
            self._best[best] = hits
        return hits

    def _indicators(self, fld: str, value: str, ev: NetEvent) -> list[Indicator]:
        if fld == "url":
            url = _full_url(ev)
            if not url:
                return []
            try:
                norm = normalise_url(url)
            except InputError:
                return []
            # The URL's host is matched as the host field; here only the URL entries.
            return [ind for ind in self._lookup(norm) if ind.type is T.URL]
        return self._lookup(value)


def match_events(
    events: Iterable[NetEvent],
    iset: IndicatorSet,
    warninglists: WarninglistSet | None = None,
    *,
    internal: InternalNets | None = None,
    chunk: int = CHUNK,
) -> Iterator[Hit]:
    """Every hit of `events` on `iset`, streaming, in event order.

    Looked up: the remote side of a connection — the server; the client instead when only the
    server is internal (an inbound connection from a listed host); both when neither is; DNS query names and the
    names and IPs in their answers; HTTP hosts / TLS SNI; URLs; file hashes. A value or a listed
    indicator on a warninglist never hits."""
    m = Matcher(iset, warninglists, internal)
    it = iter(events)
    while batch := list(islice(it, chunk)):
        with gc_paused():  # never across a yield: only while one chunk is matched
            hits = m.match_chunk(batch)
        yield from hits
