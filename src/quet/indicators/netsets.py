"""C2 address and domain sets: IPs and CIDRs held as integers (longest prefix wins), domains
matched by whole labels so that a.b.evil.com matches evil.com and michigan.org never higan.org."""

from __future__ import annotations

import ipaddress

from quet.indicators.model import Indicator, IndicatorType

_IP_TYPES = (IndicatorType.IPV4, IndicatorType.IPV6, IndicatorType.CIDR)


def _better(new: Indicator, old: Indicator | None) -> bool:
    """Which of two indicators for the same key to keep: the more confident, else the first."""
    return old is None or new.confidence > old.confidence


class IPSet:
    """Exact IPv4/IPv6 addresses and networks; lookup tries exact, then longest prefix."""

    def __init__(self) -> None:
        # Keyed by (version, integer): no string forms kept, one dict probe per exact lookup.
        self._exact: dict[tuple[int, int], Indicator] = {}
        # version -> prefix length -> network integer -> indicator
        self._nets: dict[int, dict[int, dict[int, Indicator]]] = {4: {}, 6: {}}
        self._prefixes: dict[int, list[int]] = {4: [], 6: []}
        self._dirty = False

    def add(self, ind: Indicator) -> None:
        if ind.type not in _IP_TYPES:
            raise ValueError(f"not an IP or CIDR indicator: {ind.type.value} {ind.value[:80]!r}")
        if ind.type is IndicatorType.CIDR:
            net = ipaddress.ip_network(ind.value.strip(), strict=False)
            if net.prefixlen == net.max_prefixlen:
                key = (net.version, int(net.network_address))
                if _better(ind, self._exact.get(key)):
                    self._exact[key] = ind
                return
            table = self._nets[net.version].setdefault(net.prefixlen, {})
            netint = int(net.network_address)
            if _better(ind, table.get(netint)):
                table[netint] = ind
            self._dirty = True
            return
        ip = _parse(ind.value)
        if ip is None:
            raise ValueError(f"not an IP address: {ind.value[:80]!r}")
        if _better(ind, self._exact.get(ip)):
            self._exact[ip] = ind

    def freeze(self) -> None:
        for version, by_len in self._nets.items():
            self._prefixes[version] = sorted(by_len, reverse=True)
        self._dirty = False

    def lookup(self, ip: str) -> Indicator | None:
        """The indicator for `ip`: the exact address, else the most specific network; or None."""
        parsed = _parse(ip)
        if parsed is None:
            return None
        hit = self._exact.get(parsed)
        if hit is not None:
            return hit
        if self._dirty:
            self.freeze()
        version, value = parsed
        bits = 32 if version == 4 else 128
        by_len = self._nets[version]
        for plen in self._prefixes[version]:
            mask = ((1 << plen) - 1) << (bits - plen)
            hit = by_len[plen].get(value & mask)
            if hit is not None:
                return hit
        return None

    def __len__(self) -> int:
        return len(self._exact) + sum(
            len(t) for by_len in self._nets.values() for t in by_len.values()
        )


def _parse(text: str) -> tuple[int, int] | None:
    """(version, integer) of an address; IPv4-mapped IPv6 counts as the IPv4 address."""
    try:
        ip = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return 4, int(ip.ipv4_mapped)
    return ip.version, int(ip)


def _norm(name: str) -> str:
    return name.strip().rstrip(".").lower()


class DomainSet:
    """Domains matched on label boundaries; the most specific listed suffix wins."""

    def __init__(self) -> None:
        self._domains: dict[str, Indicator] = {}

    def add(self, ind: Indicator) -> None:
        if ind.type is not IndicatorType.DOMAIN:
            raise ValueError(f"not a domain indicator: {ind.type.value} {ind.value[:80]!r}")
        key = _norm(ind.value)
        if key.startswith("*."):
            key = key[2:]
        if not key:
            raise ValueError("empty domain")
        if _better(ind, self._domains.get(key)):
            self._domains[key] = ind

    def freeze(self) -> None:
        """Nothing to build; here so every set has the same life cycle."""

    def lookup(self, name: str) -> Indicator | None:
        key = _norm(name)
        if not key:
            return None
        if not key.isascii():
            try:
                key = key.encode("idna").decode("ascii")
            except UnicodeError:
                return None
        domains = self._domains
        hit = domains.get(key)
        if hit is not None:
            return hit
        dot = key.find(".")
        while dot != -1:
            key = key[dot + 1 :]
            hit = domains.get(key)
            if hit is not None:
                return hit
            dot = key.find(".")
        return None

    def __len__(self) -> int:
        return len(self._domains)
