"""The one record every log source yields: a network event, flat and typed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(slots=True)
class NetEvent:
    """One thing a log saw: a connection, a DNS query/answer, an HTTP request, a TLS hello, a file.

    `client` is always the internal host that initiated it (each source orients it correctly:
    e.g. in Suricata EVE dns v3 a response's src_ip is the resolver and the client is dest_ip).
    """

    kind: str  # "zeek:conn", "zeek:dns", "suricata:dns", "bind:query", "pcap:dns", ...
    ts: datetime | None = None
    client: str = ""  # IP of the internal host
    client_port: int = 0
    server: str = ""  # IP of the other side (for DNS: the resolver)
    server_port: int = 0
    proto: str = ""  # tcp | udp | icmp | ...
    query: str = ""  # DNS name queried (normalised: lower case, no trailing dot)
    answers: list[str] = field(default_factory=list)  # IPs (and names) in DNS answers
    host: str = ""  # HTTP Host / TLS SNI / proxy target host
    url: str = ""  # full URL when known (http log, proxy log)
    md5: str = ""
    sha1: str = ""
    sha256: str = ""
    action: str = ""  # firewall: allow/deny; proxy: TCP_MISS/...; DNS: rcode
    source: str = ""  # the log file
    line: int = 0  # line (or packet number) in it
