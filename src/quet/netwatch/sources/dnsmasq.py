"""dnsmasq `log-queries` logs (syslog or its own log-facility file, also Pi-hole's pihole.log):
one event per query, its answers filled from the reply/cached/config lines that follow."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

from quet.indicators.model import IssueLog
from quet.netwatch.records import NetEvent
from quet.netwatch.sources import Source, open_text, register
from quet.netwatch.sources.bind import dns_name, file_date, ip_text, split_syslog

PROGRAMS = frozenset({"dnsmasq", "pihole-FTL"})
# replies come within milliseconds of their query; a query unanswered after this many lines
# is written out as it is
WINDOW = 500
_EXTRA = re.compile(r"^(?P<serial>\d+) (?P<cip>[0-9A-Fa-f.:]+)/(?P<cport>\d+) (?P<rest>.*)$")
_QUERY = re.compile(r"^query\[(?P<type>[^\]]*)\] (?P<name>\S+) from (?P<ip>\S+)$")
_ANSWER = re.compile(r"^(?P<src>.+?) (?P<name>\S+) is (?P<val>.+)$")
_RCODES = {"NXDOMAIN", "SERVFAIL", "REFUSED", "NOTIMP"}
_BLOCKED = ("blocked", "blacklisted", "denied")
_KIND = "dnsmasq:query"


class _Pending:
    """Queries waiting for their replies, oldest first."""

    def __init__(self) -> None:
        self.events: dict[int, tuple[NetEvent, str, str]] = {}  # id -> (event, qtype, key)
        self.by_key: dict[str, list[int]] = {}
        self.next_id = 0

    def add(self, key: str, event: NetEvent, qtype: str) -> None:
        self.events[self.next_id] = (event, qtype, key)
        self.by_key.setdefault(key, []).append(self.next_id)
        self.next_id += 1

    def find(self, key: str, value: str) -> NetEvent | None:
        """The pending query an answer belongs to: by type for addresses, else the oldest."""
        ids = self.by_key.get(key)
        if not ids:
            return None
        ip = ip_text(value)
        want = ("AAAA" if ":" in ip else "A") if ip is not None else ""
        for i in ids:
            event, qtype, _ = self.events[i]
            if (want and qtype == want) or (not want and not event.action):
                return event
        return self.events[ids[0]][0]

    def pop_older(self, line: int) -> Iterator[NetEvent]:
        for i in list(self.events):
            event, _, key = self.events[i]
            if event.line >= line:
                break
            yield self._drop(i, key)

    def pop_all(self) -> Iterator[NetEvent]:
        for i in list(self.events):
            yield self._drop(i, self.events[i][2])

    def _drop(self, i: int, key: str) -> NetEvent:
        event = self.events.pop(i)[0]
        ids = self.by_key[key]
        ids.remove(i)
        if not ids:
            del self.by_key[key]
        return event


def _apply(event: NetEvent, src: str, value: str) -> bool:
    """Adds one answer line to `event`; True when it opens a CNAME chain."""
    value = value.strip()
    if any(word in src for word in _BLOCKED):
        event.action = "blocked"
    if value == "<CNAME>":
        return True
    if value in _RCODES or value.startswith("NODATA"):
        if not event.action:
            event.action = "NODATA" if value.startswith("NODATA") else value
        return False
    if value.startswith("<"):  # <HTTPS>, <SRV>…: a record type without data
        return False
    ip = ip_text(value)
    answer = ip if ip is not None else dns_name(value)
    if answer and answer not in event.answers:
        event.answers.append(answer)
    if not event.action:
        event.action = "NOERROR"
    return False


def read_dnsmasq(path: Path, issues: IssueLog) -> Iterator[NetEvent]:
    """Query events, each yielded once its replies are in (or WINDOW lines later, or at the end)."""
    ref = file_date(path)
    pending = _Pending()
    # The query the last answer line went to: a CNAME chain goes on under other names
    # (`X is <CNAME>`, then `Y is <CNAME>`, then `Z is 1.2.3.4`, `Z is 1.2.3.5`).
    chain: NetEvent | None = None
    chain_open = False  # the last line was `is <CNAME>`: the next name is its target
    chain_last = ""
    for lineno, line in open_text(path):
        yield from pending.pop_older(lineno - WINDOW)
        if not line.strip():
            continue
        parts = split_syslog(line, ref)
        if parts is None:
            issues.add(str(path), lineno, "not a syslog line")
            continue
        ts, prog, msg = parts
        if prog not in PROGRAMS:
            continue
        serial = ""
        port = 0
        em = _EXTRA.match(msg)
        if em is not None:  # log-queries=extra: every line carries the query's serial
            serial, msg = em["serial"], em["rest"]
            port = int(em["cport"]) if len(em["cport"]) <= 5 else 0
        qm = _QUERY.match(msg)
        if qm is not None:
            chain = None
            client = ip_text(qm["ip"])
            if client is None:
                issues.add(str(path), lineno, f"bad client address {qm['ip'][:60]!r}")
                continue
            name = dns_name(qm["name"])
            event = NetEvent(
                kind=_KIND,
                ts=ts,
                client=client,
                client_port=port,
                query=name,
                source=str(path),
                line=lineno,
            )
            pending.add(serial or name, event, qm["type"])
            continue
        am = _ANSWER.match(msg)
        if am is None or am["src"].startswith(("forwarded", "query", "dnssec", "validation")):
            chain = None
            continue
        name = dns_name(am["name"])
        target = pending.find(serial or name, am["val"])
        if target is None and chain is not None and (chain_open or name == chain_last):
            target = chain
            if chain_open and name and name not in target.answers:
                target.answers.append(name)
        if target is None:
            chain = None
            continue
        chain, chain_open, chain_last = target, _apply(target, am["src"], am["val"]), name
    yield from pending.pop_all()


def _sniff(head: list[str], filename: str) -> bool:
    today = date.today()
    for line in head:
        parts = split_syslog(line, today)
        if parts is not None and parts[1] in PROGRAMS and parts[2].startswith("query["):
            return True
        if parts is not None and parts[1] in PROGRAMS and _EXTRA.match(parts[2]):
            return True
    return False


register(Source("dnsmasq", "dnsmasq / Pi-hole query log (log-queries)", _sniff, read_dnsmasq))
