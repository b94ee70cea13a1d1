"""Firewall logs: a CSV export with a header and a column map, syslog key=value lines (iptables
LOG, FortiGate traffic) and pfSense filterlog; `FirewallMap` says where each field is."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from quet.errors import InputError
from quet.indicators.model import IssueLog
from quet.netwatch.records import NetEvent
from quet.netwatch.sources import Source, head, open_text, register
from quet.netwatch.sources.bind import (
    dns_name,
    file_date,
    ip_text,
    iso_time,
    split_syslog,
    syslog_time,
)

LAYOUTS = ("csv", "kv", "pfsense")
MAP_KEYS = ("src", "dst", "sport", "dport", "proto", "action", "ts", "tz", "host")


@dataclass(frozen=True)
class FirewallMap:
    """Where each field of a firewall line is: a CSV column or a key=value key ("" = absent).

    `ts` may join several columns with "+" (FortiGate's "date+time"); `tz` names a column with a
    UTC offset such as "+0100". The pfsense layout is positional and ignores the names."""

    name: str = "csv"
    layout: str = "csv"
    src: str = "src"
    dst: str = "dst"
    sport: str = "sport"
    dport: str = "dport"
    proto: str = "proto"
    action: str = "action"
    ts: str = "ts"
    tz: str = ""
    host: str = ""

    @classmethod
    def from_spec(cls, spec: str, base: FirewallMap | None = None) -> FirewallMap:
        """`src=SrcIP,dst=DstIP,dport=DstPort,…` (as given to --columns) over `base`."""
        changes: dict[str, str] = {}
        for item in spec.split(","):
            if not item.strip():
                continue
            key, sep, column = item.partition("=")
            key = key.strip()
            if not sep or key not in MAP_KEYS:
                raise InputError(
                    f"bad column map item {item.strip()!r}: use key=Column with key one of "
                    + ", ".join(MAP_KEYS)
                )
            changes[key] = column.strip()
        return replace(base or PRESETS["csv"], **changes)


PRESETS: dict[str, FirewallMap] = {
    "csv": FirewallMap(),
    # kernel: [UFW BLOCK] IN=eth0 OUT= MAC=… SRC=… DST=… PROTO=TCP SPT=… DPT=…
    "iptables": FirewallMap(
        "iptables", "kv", "SRC", "DST", "SPT", "DPT", "PROTO", action="", ts=""
    ),
    # date=2026-11-25 time=08:01:02 … srcip=… srcport=… dstip=… dstport=… proto=6 action="deny"
    "fortigate": FirewallMap(
        "fortigate",
        "kv",
        "srcip",
        "dstip",
        "srcport",
        "dstport",
        "proto",
        "action",
        ts="date+time",
        tz="tz",
        host="hostname",
    ),
    "pfsense": FirewallMap("pfsense", "pfsense"),
}
# Column names seen in CSV exports, tried when the mapped name is not in the header.
ALIASES: dict[str, tuple[str, ...]] = {
    "src": ("src", "srcip", "src_ip", "source", "sourceip", "source_ip", "source address",
            "sourceaddress", "src_addr", "saddr", "client"),
    "dst": ("dst", "dstip", "dst_ip", "dest", "destip", "dest_ip", "destination",
            "destinationip", "destination_ip", "destination address", "dst_addr", "daddr"),
    "sport": ("sport", "srcport", "src_port", "sourceport", "source_port", "source port", "spt"),
    "dport": ("dport", "dstport", "dst_port", "destport", "dest_port", "destinationport",
              "destination_port", "destination port", "dpt", "port"),
    "proto": ("proto", "protocol", "ip_protocol", "transport"),
    "action": ("action", "act", "decision", "disposition", "result", "verdict"),
    "ts": ("ts", "time", "timestamp", "datetime", "date", "@timestamp", "event_time",
           "eventtime", "receive time", "generated time", "start"),
}  # fmt: skip
_PROTOS = {"1": "icmp", "6": "tcp", "17": "udp", "47": "gre", "50": "esp", "58": "ipv6-icmp"}
_ALLOW = ("accept", "allow", "pass", "permit", "close", "timeout", "server-rst", "client-rst")
_DENY = ("deny", "drop", "block", "reject", "denied", "dropped", "blocked", "rejected")
_KV = re.compile(r'([A-Za-z_][\w.-]*)=("(?:[^"\\]|\\.)*"|\S*)')
_IPTABLES_PREFIX = re.compile(r"^(?:\[\s*\d+\.\d+\]\s*)?(?P<prefix>.*?)\s*IN=")
_DMY = re.compile(
    r"^(\d{1,2})/(\d{1,2})/(\d{4})[ T](\d{1,2}):(\d\d):(\d\d)(?:\.\d+)?(?: ?([AaPp][Mm]))?$"
)
_SYSLOG_TS = re.compile(r"^([A-Za-z]{3}) +(\d{1,2}) (\d\d:\d\d:\d\d)$")


def normalise_action(text: str) -> str:
    """ "allow" or "deny" for the words firewalls use for them; anything else lower-cased."""
    v = text.strip().strip("[]").lower()
    if any(word in v for word in _DENY):
        return "deny"
    if any(word in v for word in _ALLOW):
        return "allow"
    return v


def _proto(text: str) -> str:
    v = text.strip().lower()
    return _PROTOS.get(v, v)


def _port(text: str) -> int | None:
    v = text.strip()
    if not v or v == "-":
        return 0
    if not v.isdigit() or int(v) > 65535:
        return None
    return int(v)


def parse_time(text: str, ref: date, tz: str = "") -> datetime | None:
    """A firewall time stamp in UTC: epoch (s, ms, µs or ns), ISO 8601, M/D/Y or syslog; times
    without a zone are taken as UTC unless `tz` (`+0100`) says otherwise."""
    v = text.strip().strip('"')
    if not v or v == "-":
        return None
    ts: datetime | None
    if re.fullmatch(r"\d{9,19}(?:\.\d+)?", v):
        value = float(v)
        while value > 1e11:  # ms, µs and ns epochs
            value /= 1000
        return datetime.fromtimestamp(value, UTC)
    ts = iso_time(v)
    if ts is None and (m := _DMY.match(v)):
        a, b, y, h, mi, s, ampm = m.groups()
        month, day = (int(a), int(b)) if int(a) <= 12 else (int(b), int(a))
        hour = int(h) % 12 + (12 if ampm and ampm.lower() == "pm" else 0) if ampm else int(h)
        try:
            ts = datetime(int(y), month, day, hour, int(mi), int(s), tzinfo=UTC)
        except ValueError:
            return None
    if ts is None and (m := _SYSLOG_TS.match(v)):
        ts = syslog_time(m[1], m[2], m[3], ref)
    if ts is not None and tz and (om := re.fullmatch(r"([+-])(\d\d):?(\d\d)", tz.strip('"'))):
        # the stamp was local time at that offset, and iso_time read it as UTC
        offset = timedelta(hours=int(om[2]), minutes=int(om[3]))
        ts = (ts.replace(tzinfo=None) - (offset if om[1] == "+" else -offset)).replace(tzinfo=UTC)
    return ts


def _event(
    mapping: FirewallMap, values: dict[str, str], ts: datetime | None, action: str | None = None
) -> NetEvent | str:
    """An event from the mapped values (keys of FirewallMap), or why it is unreadable."""
    src, dst = ip_text(values.get("src", "")), ip_text(values.get("dst", ""))
    if src is None:
        return f"bad source address {values.get('src', '')[:60]!r}"
    if dst is None:
        return f"bad destination address {values.get('dst', '')[:60]!r}"
    sport, dport = _port(values.get("sport", "")), _port(values.get("dport", ""))
    if sport is None or dport is None:
        return f"bad port {values.get('sport', '')[:20]!r} / {values.get('dport', '')[:20]!r}"
    host = values.get("host", "").strip('"')
    return NetEvent(
        kind=f"firewall:{mapping.name}",
        ts=ts,
        client=src,
        client_port=sport,
        server=dst,
        server_port=dport,
        proto=_proto(values.get("proto", "")),
        host=dns_name(host) if host else "",
        action=normalise_action(values.get("action", "") if action is None else action),
    )


def _kv_line(
    mapping: FirewallMap, msg: str, ts: datetime | None, ref: date
) -> NetEvent | str | None:
    pairs = {k: v[1:-1] if v.startswith('"') else v for k, v in _KV.findall(msg)}
    if mapping.src not in pairs:
        return None  # another kind of message from the same device
    values = {key: pairs.get(getattr(mapping, key), "") for key in MAP_KEYS if key != "ts"}
    if mapping.ts:
        stamp = " ".join(pairs.get(k, "") for k in mapping.ts.split("+")).strip()
        ts = parse_time(stamp, ref, values.get("tz", "")) or ts
        if "eventtime" in pairs and not stamp:
            ts = parse_time(pairs["eventtime"], ref) or ts
    action = None
    if not mapping.action:  # iptables: the action is the --log-prefix text
        pm = _IPTABLES_PREFIX.match(msg)
        action = pm["prefix"] if pm else ""
    return _event(mapping, values, ts, action)


def _pfsense_line(mapping: FirewallMap, msg: str, ts: datetime | None) -> NetEvent | str:
    cells = msg.split(",")
    if len(cells) < 9:
        return "short filterlog line"
    version = cells[8]
    if version == "4" and len(cells) >= 20:
        proto, src, dst, rest = cells[16], cells[18], cells[19], cells[20:]
    elif version == "6" and len(cells) >= 17:
        proto, src, dst, rest = cells[12], cells[15], cells[16], cells[17:]
    else:
        return f"unreadable filterlog line (IP version {version[:10]!r})"
    ports = rest[:2] if proto.lower() in ("tcp", "udp") and len(rest) >= 2 else ["", ""]
    values = {"src": src, "dst": dst, "sport": ports[0], "dport": ports[1], "proto": proto}
    return _event(mapping, values, ts, cells[6])


def _csv_columns(mapping: FirewallMap, header: list[str]) -> dict[str, int]:
    """Column index of each map key: the mapped name, else a known alias (case-insensitive)."""
    index = {name.strip().lower(): i for i, name in enumerate(header)}
    cols: dict[str, int] = {}
    for key in MAP_KEYS:
        if key == "ts" and "+" in mapping.ts:
            continue
        name = getattr(mapping, key)
        found = index.get(name.lower()) if name else None
        if found is None and name == getattr(PRESETS["csv"], key):
            found = next((index[a] for a in ALIASES.get(key, ()) if a in index), None)
        if found is not None:
            cols[key] = found
    return cols


def _read_csv(path: Path, issues: IssueLog, mapping: FirewallMap) -> Iterator[NetEvent]:
    ref = file_date(path)
    cols: dict[str, int] | None = None
    ts_parts: list[int] = []
    delimiter = ","
    for lineno, line in open_text(path):
        if not line.strip() or line.startswith("#"):
            continue
        if cols is None:
            delimiter = max((",", ";", "\t", "|"), key=line.count)
            header = next(csv.reader([line], delimiter=delimiter))
            cols = _csv_columns(mapping, header)
            lower = [h.strip().lower() for h in header]
            ts_parts = [lower.index(p.lower()) for p in mapping.ts.split("+") if p.lower() in lower]
            if "src" not in cols or "dst" not in cols:
                issues.add(str(path), lineno, "CSV header has no source/destination column")
                return
            continue
        cells = next(csv.reader([line], delimiter=delimiter), [])
        if len(cells) < len(header):
            issues.add(str(path), lineno, f"{len(cells)} cells, the header has {len(header)}")
            continue
        values = {key: cells[i] for key, i in cols.items()}
        stamp = values.get("ts", "") or " ".join(cells[i] for i in ts_parts)
        got = _event(mapping, values, parse_time(stamp, ref, values.get("tz", "")))
        if isinstance(got, str):
            issues.add(str(path), lineno, got)
            continue
        got.source, got.line = str(path), lineno
        yield got


def read_firewall(
    path: Path, issues: IssueLog, mapping: FirewallMap | None = None
) -> Iterator[NetEvent]:
    """Connection events of a firewall log; with no mapping the preset is guessed from the head."""
    if mapping is None:
        mapping = guess_map(head(path)) or PRESETS["csv"]
    if mapping.layout == "csv":
        yield from _read_csv(path, issues, mapping)
        return
    ref = file_date(path)
    for lineno, line in open_text(path):
        if not line.strip():
            continue
        parts = split_syslog(line, ref)
        ts, msg = (parts[0], parts[2]) if parts else (None, re.sub(r"^<\d+>", "", line))
        got: NetEvent | str | None
        if mapping.layout == "pfsense":
            if parts is None or parts[1] != "filterlog":
                continue
            got = _pfsense_line(mapping, msg, ts)
        else:
            got = _kv_line(mapping, msg, ts, ref)
        if isinstance(got, str):
            issues.add(str(path), lineno, got)
        elif got is not None:
            got.source, got.line = str(path), lineno
            yield got


def guess_map(lines: list[str]) -> FirewallMap | None:
    """The preset that fits the first lines of a file, or None."""
    for line in lines:
        if re.search(r"\bfilterlog(?:\[\d+\])?: \d*,", line):
            return PRESETS["pfsense"]
        if " SRC=" in line and " DST=" in line and "PROTO=" in line:
            return PRESETS["iptables"]
        if "srcip=" in line and "dstip=" in line:
            return PRESETS["fortigate"]
    first = next((line for line in lines if line.strip() and not line.startswith("#")), "")
    if first and "=" not in first:
        delimiter = max((",", ";", "\t", "|"), key=first.count)
        header = next(csv.reader([first], delimiter=delimiter), [])
        cols = _csv_columns(PRESETS["csv"], header)
        if "src" in cols and "dst" in cols and not any(ip_text(h) for h in header):
            return PRESETS["csv"]
    return None


def _sniff(head: list[str], filename: str) -> bool:
    return guess_map(head) is not None


def _read(path: Path, issues: IssueLog) -> Iterator[NetEvent]:
    return read_firewall(path, issues)


register(Source("firewall", "firewall log: iptables, FortiGate, pfSense, CSV", _sniff, _read))
