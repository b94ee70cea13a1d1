"""Squid access.log in the native format (`logformat squid`): one event per request, the target
host taken from the URL (or from `host:port` for CONNECT tunnels)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from quet.indicators.model import IssueLog
from quet.netwatch.records import NetEvent
from quet.netwatch.sources import Source, open_text, register
from quet.netwatch.sources.bind import dns_name, ip_text

# %ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un %Sh/%<a %mt
_LINE = re.compile(
    r"^(?P<ts>\d{9,11}\.\d{1,6}) +(?P<elapsed>-?\d+) (?P<client>\S+) (?P<code>[A-Z_]+/\d{3})"
    r" (?P<bytes>\d+) (?P<method>\S+) (?P<url>\S+) (?P<user>\S+) (?P<hier>[A-Z_]+/\S+)"
    r"(?: (?P<type>\S+))?(?: .*)?$"
)
_DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21, "ws": 80, "wss": 443}
_KIND = "squid:access"


def _host_port(target: str) -> tuple[str, int]:
    """`host:port` (CONNECT) -> (host, port); IPv6 literals come bracketed."""
    if target.startswith("["):
        host, _, rest = target[1:].partition("]")
        port = rest.lstrip(":")
    else:
        host, _, port = target.rpartition(":")
        if not host:
            host, port = port, ""
    return host, int(port) if port.isdigit() and len(port) <= 5 else 0


def _host(name: str) -> str:
    ip = ip_text(name)
    return ip if ip is not None else dns_name(name)


def parse_squid(line: str) -> NetEvent | str:
    """One access.log line: a NetEvent, or the reason it could not be read."""
    m = _LINE.match(line)
    if m is None:
        return "not a Squid native access.log line"
    ts = datetime.fromtimestamp(float(m["ts"]), UTC)
    client = ip_text(m["client"]) or m["client"].lower()  # log_fqdn writes names
    peer = m["hier"].partition("/")[2]
    url = m["url"]
    host, port = "", 0
    if m["method"] == "CONNECT":
        name, port = _host_port(url)
        host, url = _host(name), ""
    elif "://" in url:
        try:
            parts = urlsplit(url)
            host = _host(parts.hostname or "")
            port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower(), 0)
        except ValueError:
            return f"bad URL {url[:80]!r}"
    elif url.startswith("error:") or url == "-":
        url = ""  # a request squid could not parse: there is no target to keep
    return NetEvent(
        kind=_KIND,
        ts=ts,
        client=client,
        server=ip_text(peer) or "",
        server_port=port,
        proto="tcp",
        host=host,
        url=url,
        action=m["code"],
    )


def read_squid(path: Path, issues: IssueLog) -> Iterator[NetEvent]:
    for lineno, line in open_text(path):
        if not line.strip() or line.startswith("#"):
            continue
        got = parse_squid(line)
        if isinstance(got, str):
            issues.add(str(path), lineno, got)
            continue
        got.source, got.line = str(path), lineno
        yield got


def _sniff(head: list[str], filename: str) -> bool:
    return any(_LINE.match(line) for line in head)


register(Source("squid", "Squid access.log (native format)", _sniff, read_squid))
