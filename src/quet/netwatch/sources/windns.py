"""The Windows DNS Server debug log (dns.log, "Log packets for debugging"): one event per query a
client sent (`Rcv`, blank Q/R column), its rcode taken from the server's `Snd R` answer."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from quet.indicators.model import IssueLog
from quet.netwatch.records import NetEvent
from quet.netwatch.sources import Source, open_text, register
from quet.netwatch.sources.bind import ip_text

WINDOW = 500  # lines a query waits for the server's answer before it is written out alone
_START = re.compile(r"^(\d{1,2}/\d{1,2}/\d{4}|\d{8}|\d{4}-\d\d-\d\d) ")
_PACKET = re.compile(
    r"^(?P<date>\d{1,2}/\d{1,2}/\d{4}|\d{8}|\d{4}-\d\d-\d\d) (?P<time>\d{1,2}:\d\d:\d\d)"
    r"(?: (?P<ampm>[AaPp][Mm]))? +[0-9A-Fa-f]+ PACKET +(?:[0-9A-Fa-f]{8,16} +)?"
    r"(?P<proto>UDP|TCP) (?P<dir>Snd|Rcv) (?P<ip>[0-9A-Fa-f.:]+) +(?P<xid>[0-9A-Fa-f]{1,4})"
    r" +(?:(?P<r>R) +)?(?P<op>[QNU?]) +\[(?P<flags>[0-9A-Fa-f]{4}) +(?P<fc>[ATDR ]*?) *"
    r"(?P<rcode>[A-Z]+)\] +(?P<qtype>\S+) +(?P<qname>\S+)\s*$"
)
_LABEL_LEN = re.compile(r"\((\d+)\)")
_KIND = "windns:query"


def decode_name(text: str) -> str:
    """`(7)example(3)com(0)` -> `example.com`: the debug log writes each label after its length."""
    labels = [part for part in _LABEL_LEN.split(text)[2::2] if part]
    return ".".join(labels).lower()


def _time(m: re.Match[str]) -> datetime | None:
    """The local server time as UTC (the log has no zone). Dates follow the server's locale:
    M/D/Y, or D/M/Y when the first number cannot be a month."""
    d = m["date"]
    try:
        if "/" in d:
            a, b, y = (int(x) for x in d.split("/"))
            month, day = (a, b) if a <= 12 else (b, a)
            year = y
        else:
            digits = d.replace("-", "")
            year, month, day = int(digits[:4]), int(digits[4:6]), int(digits[6:8])
        h, mi, s = (int(x) for x in m["time"].split(":"))
        if m["ampm"]:
            if not 1 <= h <= 12:
                return None
            h = h % 12 + (12 if m["ampm"].upper() == "PM" else 0)
        return datetime(year, month, day, h, mi, s, tzinfo=UTC)
    except ValueError:
        return None


def read_windns(path: Path, issues: IssueLog) -> Iterator[NetEvent]:
    """Client queries, each with the rcode the server answered (when that answer is logged)."""
    pending: dict[tuple[str, str, str], NetEvent] = {}  # (client, xid, name) -> query
    for lineno, line in open_text(path):
        while pending:
            key, first = next(iter(pending.items()))
            if first.line >= lineno - WINDOW:
                break
            del pending[key]
            yield first
        if " PACKET " not in line or not _START.match(line):
            continue  # the header, the field key, EVENT lines, "details" sections
        m = _PACKET.match(line)
        if m is None:
            issues.add(str(path), lineno, "unreadable PACKET line")
            continue
        client = ip_text(m["ip"])
        if client is None:
            issues.add(str(path), lineno, f"bad remote address {m['ip'][:60]!r}")
            continue
        name = decode_name(m["qname"])
        key = (client, m["xid"].lower(), name)
        if m["dir"] == "Rcv" and not m["r"]:
            if key in pending:  # a retransmission: keep the first
                continue
            pending[key] = NetEvent(
                kind=_KIND,
                ts=_time(m),
                client=client,
                proto=m["proto"].lower(),
                query=name,
                source=str(path),
                line=lineno,
            )
        elif m["dir"] == "Snd" and m["r"]:
            event = pending.pop(key, None)
            if event is None:  # the answer to a query logged before this file began
                event = NetEvent(
                    kind=_KIND,
                    ts=_time(m),
                    client=client,
                    proto=m["proto"].lower(),
                    query=name,
                    source=str(path),
                    line=lineno,
                )
            event.action = m["rcode"]
            yield event
        # Snd Q / Rcv R: the server's own recursion to its forwarders, not a client's query
    yield from pending.values()


def _sniff(head: list[str], filename: str) -> bool:
    return any(
        _PACKET.match(line)
        or line.startswith("DNS Server log file creation at")
        or line.startswith("Message logging key (for packets")
        for line in head
    )


register(Source("windns", "Windows DNS Server debug log", _sniff, read_windns))
