"""DNS Response Policy Zone output (write-only): listed domains and their subdomains answer
NXDOMAIN (`CNAME .`), listed addresses and networks through rpz-ip triggers."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterable
from pathlib import Path

from quet.errors import InputError
from quet.indicators.formats import Format, register
from quet.indicators.model import Indicator, IndicatorType, normalise_cidr, normalise_domain

TTL = 300
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def rpz_ip_name(network: str) -> str:
    """The rpz-ip owner name of an address or CIDR: 10.0.2.0/24 -> 24.0.2.0.10.rpz-ip,
    1.2.3.4 -> 32.4.3.2.1.rpz-ip, 2001:db8::1 -> 128.1.zz.db8.2001.rpz-ip ('zz' is '::')."""
    net = ipaddress.ip_network(network, strict=False)
    if net.version == 4:
        labels = str(net.network_address).split(".")[::-1]
    else:
        text = net.network_address.compressed
        if "::" in text:
            left, right = text.split("::")
            lgroups = left.split(":") if left else []
            rgroups = right.split(":") if right else []
            labels = [*rgroups[::-1], "zz", *lgroups[::-1]]
        else:
            labels = text.split(":")[::-1]
    return ".".join([str(net.prefixlen), *labels, "rpz-ip"])


def _records(indicators: Iterable[Indicator]) -> tuple[list[str], list[Network]]:
    domains: set[str] = set()
    nets: set[Network] = set()
    for ind in indicators:
        try:
            if ind.type is IndicatorType.DOMAIN:
                domains.add(normalise_domain(ind.value))
            elif ind.type in (IndicatorType.IPV4, IndicatorType.IPV6, IndicatorType.CIDR):
                nets.add(ipaddress.ip_network(normalise_cidr(ind.value), strict=False))
        except (InputError, ValueError):
            continue
    ordered = sorted(nets, key=lambda n: (n.version, int(n.network_address), n.prefixlen))
    return sorted(domains, key=lambda d: d.split(".")[::-1]), ordered


def write_rpz(
    indicators: Iterable[Indicator], path: Path, *, serial: int | None = None, ttl: int = TTL
) -> int:
    """Write an RPZ zone file (names relative to the zone's origin, so it serves under any
    zone name in named.conf / unbound). `serial` defaults to the current Unix time, so each
    export is newer for secondaries; pass it for reproducible output. URLs and hashes are
    skipped. Returns the number of policy triggers written (a domain and its `*.` count one)."""
    domains, nets = _records(indicators)
    if serial is None:
        serial = int(time.time()) & 0xFFFFFFFF
    with Path(path).open("w", encoding="ascii", newline="\n") as fh:
        fh.write(
            f"; Quet intel response policy zone: {len(domains)} domains, {len(nets)} networks\n"
        )
        fh.write(f"$TTL {ttl}\n")
        fh.write(f"@ IN SOA localhost. hostmaster.localhost. ({serial} 3600 600 604800 {ttl})\n")
        fh.write("@ IN NS localhost.\n")
        for domain in domains:
            fh.write(f"{domain} CNAME .\n*.{domain} CNAME .\n")
        for net in nets:
            fh.write(f"{rpz_ip_name(str(net))} CNAME .\n")
    return len(domains) + len(nets)


def _never(head: bytes, name: str) -> bool:
    return False  # output formats are chosen by name, never detected


RPZ = register(
    Format(
        "rpz",
        "DNS response policy zone (output): domain and *.domain CNAME . (NXDOMAIN), "
        "rpz-ip triggers for addresses and networks",
        (".rpz",),
        _never,
        None,
        write_rpz,
    )
)
