"""Unbound logs with `log-queries` (`info: <client> <name>. <type> <class>`), `log-replies`
(`reply: … <rcode> <time> <cached> <size>`) and `log-local-actions`; a reply or local action
is folded into the query line it answers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TypeAlias

from quet.indicators.model import IssueLog
from quet.netwatch.records import NetEvent
from quet.netwatch.sources import Source, open_text, register
from quet.netwatch.sources.bind import dns_name, file_date, ip_text, split_syslog

WINDOW = 500  # lines a query waits for its reply line before it is written out alone
_OWN = re.compile(r"^\[(?P<epoch>\d+)\] unbound\[[\d]+:\w+\] (?P<msg>.*)$")
_THREAD = re.compile(r"^\[\d+:\w+\] ")
_ADDR = r"(?P<ip>[0-9A-Fa-f.:]+)(?:[@#](?P<port>\d+))?"
_Q = r"(?P<name>\S+) (?P<type>[A-Z0-9]+) (?P<cls>[A-Z0-9]+)"
_QUERY = re.compile(r"^info: " + _ADDR + " " + _Q + r"(?: .*)?$")
_REPLY = re.compile(r"^reply: " + _ADDR + " " + _Q + r" (?P<rcode>[A-Z]+)\b")
_LOCAL = re.compile(r"^info: (?P<zone>\S+) (?P<ztype>[a-z_]+) " + _ADDR + " " + _Q + "$")
_KIND = "unbound:query"

_Key: TypeAlias = tuple[str, str, str]


def _message(line: str, ref: date) -> tuple[datetime | None, str] | str | None:
    """(time, message) of an Unbound line; None for another program; an error text when the
    line is no log line at all."""
    own = _OWN.match(line)
    if own is not None:
        epoch = int(own["epoch"])
        ts = datetime.fromtimestamp(epoch, UTC) if epoch < 2**33 else None
        return ts, own["msg"]
    parts = split_syslog(line, ref)
    if parts is None:
        return "not an Unbound log line"
    if parts[1] != "unbound":
        return None
    return parts[0], _THREAD.sub("", parts[2], count=1)


def _event(m: re.Match[str], ts: datetime | None, path: Path, lineno: int) -> NetEvent | None:
    client = ip_text(m["ip"])
    if client is None:
        return None
    port = m["port"]
    return NetEvent(
        kind=_KIND,
        ts=ts,
        client=client,
        client_port=int(port) if port and len(port) <= 5 else 0,
        query=dns_name(m["name"]),
        source=str(path),
        line=lineno,
    )


def read_unbound(path: Path, issues: IssueLog) -> Iterator[NetEvent]:
    """One event per query: from its `info:` line, with the rcode of its `reply:` line."""
    ref = file_date(path)
    pending: dict[int, tuple[_Key, NetEvent]] = {}
    by_key: dict[_Key, list[int]] = {}
    next_id = 0

    def take(key: _Key) -> NetEvent | None:
        ids = by_key.get(key)
        if not ids:
            return None
        i = ids.pop(0)
        if not ids:
            del by_key[key]
        return pending.pop(i)[1]

    for lineno, line in open_text(path):
        for i in list(pending):
            key, old = pending[i]
            if old.line >= lineno - WINDOW:
                break
            yield take(key) or old
        if not line.strip():
            continue
        got = _message(line, ref)
        if got is None:
            continue
        if isinstance(got, str):
            issues.add(str(path), lineno, got)
            continue
        ts, msg = got
        m = _LOCAL.match(msg) or _QUERY.match(msg) or _REPLY.match(msg)
        if m is None:
            continue  # start-up, statistics and other messages
        event = _event(m, ts, path, lineno)
        if event is None:
            issues.add(str(path), lineno, f"bad client address {m['ip'][:60]!r}")
            continue
        key = (event.client, event.query, m["type"])
        if m.re is _QUERY:
            pending[next_id] = (key, event)
            by_key.setdefault(key, []).append(next_id)
            next_id += 1
            continue
        action = m["ztype"] if m.re is _LOCAL else m["rcode"]
        known = take(key)
        if known is None:
            event.action = action
            yield event
            continue
        # a local action (always_nxdomain, refuse…) says more than the rcode that follows it
        known.action = known.action or action
        known.client_port = known.client_port or event.client_port
        if m.re is _REPLY:
            yield known
        else:  # a local action comes before the reply: keep waiting for it
            pending[next_id] = (key, known)
            by_key.setdefault(key, []).append(next_id)
            next_id += 1
    for key, event in list(pending.values()):
        yield take(key) or event


def _sniff(head: list[str], filename: str) -> bool:
    today = date.today()
    for line in head:
        got = _message(line, today)
        if isinstance(got, tuple) and (_QUERY.match(got[1]) or _REPLY.match(got[1])):
            return True
    return False


register(Source("unbound", "Unbound log-queries / log-replies", _sniff, read_unbound))
