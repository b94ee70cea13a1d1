"""Hosts-file blocklists: `0.0.0.0 domain` lines, written for DNS-less blocking and read back
(any `address name [name …]` line; names become domain indicators)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from quet.errors import InputError
from quet.indicators.formats import Format, open_text, register
from quet.indicators.model import Indicator, IndicatorType, IssueLog, normalise_domain

SINK = "0.0.0.0"
CONFIDENCE = 50  # a blocklist of unknown provenance
# Names every hosts file maps to itself; never indicators.
LOCAL_NAMES = frozenset(
    {
        "localhost",
        "localhost.localdomain",
        "local",
        "broadcasthost",
        "ip6-localhost",
        "ip6-loopback",
        "ip6-localnet",
        "ip6-mcastprefix",
        "ip6-allnodes",
        "ip6-allrouters",
        "ip6-allhosts",
        "0.0.0.0",
    }
)
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    return True


def read_hosts(path: Path, issues: IssueLog) -> Iterator[Indicator]:
    source = str(path)
    for lineno, line in open_text(path):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        fields = text.split()
        if len(fields) < 2 or not _is_ip(fields[0]):
            issues.add(source, lineno, "expected 'address name [name ...]'")
            continue
        for name in fields[1:]:
            if name.lower() in LOCAL_NAMES:
                continue
            try:
                value = normalise_domain(name)
            except InputError as exc:
                issues.add(source, lineno, str(exc))
                continue
            yield Indicator(
                IndicatorType.DOMAIN, value, source=source, confidence=CONFIDENCE, line=lineno
            )


def write_hosts(indicators: Iterable[Indicator], path: Path) -> int:
    """Write `0.0.0.0 domain` lines for the domain indicators (sorted, de-duplicated,
    punycode). A hosts file has no wildcards: subdomains are not blocked. Returns the count."""
    domains: set[str] = set()
    for ind in indicators:
        if ind.type is not IndicatorType.DOMAIN:
            continue
        try:
            domains.add(normalise_domain(ind.value))
        except InputError:
            continue
    ordered = sorted(domains, key=lambda d: d.split(".")[::-1])
    with Path(path).open("w", encoding="ascii", newline="\n") as fh:
        fh.write(f"# Quet intel blocklist: {len(ordered)} domains\n")
        fh.writelines(f"{SINK} {d}\n" for d in ordered)
    return len(ordered)


def _sniff(head: bytes, name: str) -> bool:
    lines = head.decode("utf-8", "replace").splitlines()
    if len(head) >= 4096 and lines:
        lines.pop()  # the last line may be cut by the head limit
    data = 0
    for raw in lines:
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        fields = text.split()
        if len(fields) < 2 or not _is_ip(fields[0]) or not all(_NAME.match(f) for f in fields[1:]):
            return False
        data += 1
    return data > 0


HOSTS = register(
    Format(
        "hosts",
        "hosts-file blocklist: 0.0.0.0 domain (read: any 'address name ...' line)",
        (".hosts",),
        _sniff,
        read_hosts,
        write_hosts,
    )
)
