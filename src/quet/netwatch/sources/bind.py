"""BIND (named) query logs, bare or through syslog; also the syslog framing, time and name helpers
that the other DNS-server sources (dnsmasq, Unbound) share."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

from quet.indicators.model import IssueLog
from quet.netwatch.records import NetEvent
from quet.netwatch.sources import Source, norm_ip, norm_name, open_text, register

_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
MONTHS = {m: i for i, m in enumerate(_MONTH_NAMES, 1)}

# RFC 3164 (`Nov 25 08:01:02`) or RFC 5424 / ISO (`2026-11-25T08:01:02.123+00:00`) stamp, an
# optional host (dnsmasq's own log file has none), then `program[pid]: message`.
_SYSLOG = re.compile(
    r"^(?:(?P<mon>[A-Za-z]{3}) +(?P<day>\d{1,2}) (?P<hms>\d\d:\d\d:\d\d)(?:\.\d+)?"
    r"|(?P<iso>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?))"
    r" +(?:(?P<host>[^\s\[\]:]+) +)?(?P<prog>[A-Za-z][\w./-]*)(?:\[(?P<pid>[\d:]+)\])?: ?"
    r"(?P<msg>.*)$"
)
_ISO = re.compile(
    r"^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,](\d+))?(Z|[+-]\d\d:?\d\d)?$"
)


def dns_name(text: str) -> str:
    """A DNS name as records carry it: lower case, no trailing dot ('.' itself -> '')."""
    return norm_name(text)


def ip_text(text: str) -> str | None:
    """An IP address in compressed form, or None when `text` is not one."""
    try:
        return norm_ip(text) or None
    except ValueError:
        return None


def iso_time(text: str) -> datetime | None:
    """An ISO 8601 stamp in UTC; a stamp with no offset is taken as UTC already."""
    m = _ISO.match(text.strip())
    if m is None:
        return None
    y, mo, d, hh, mi, ss, frac, off = m.groups()
    tz: timezone = UTC
    if off and off != "Z":
        sign = -1 if off[0] == "-" else 1
        digits = off[1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    try:
        stamp = datetime(int(y), int(mo), int(d), int(hh), int(mi), int(ss), tzinfo=tz)
    except ValueError:
        return None
    if frac:
        stamp += timedelta(microseconds=int((frac + "000000")[:6]))
    return stamp.astimezone(UTC)


def syslog_time(mon: str, day: str, hms: str, ref: date) -> datetime | None:
    """An RFC 3164 stamp (no year) in UTC: the year of `ref` (the file's last write), or the
    year before when the date would fall after it (a log spanning New Year)."""
    month = MONTHS.get(mon.lower())
    if month is None:
        return None
    year = ref.year - 1 if (month, int(day)) > (ref.month, ref.day + 1) else ref.year
    try:
        h, m, s = (int(x) for x in hms.split(":"))
        return datetime(year, month, int(day), h, m, s, tzinfo=UTC)
    except ValueError:
        return None


def file_date(path: Path) -> date:
    """The day a log file was last written, UTC: the reference for year-less syslog stamps."""
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC).date()
    except OSError:
        return datetime.now(UTC).date()


def split_syslog(line: str, ref: date) -> tuple[datetime | None, str, str] | None:
    """(time, program, message) of a syslog line, or None when the line is not one."""
    m = _SYSLOG.match(line)
    if m is None:
        return None
    ts = iso_time(m["iso"]) if m["iso"] else syslog_time(m["mon"], m["day"], m["hms"], ref)
    return ts, m["prog"], m["msg"]


# --- BIND ------------------------------------------------------------------------------------

# named's own file channel: `25-Nov-2026 08:01:02.123` (print-time yes) or ISO 8601.
_BIND_TIME = re.compile(
    r"^(?:(?P<d>\d\d)-(?P<mon>[A-Za-z]{3})-(?P<y>\d{4}) (?P<hms>\d\d:\d\d:\d\d)(?:\.(?P<ms>\d+))?"
    r"|(?P<iso>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)) +(?P<rest>.*)$"
)
# print-category / print-severity prefixes: `queries: info: `
_PREFIX = re.compile(r"^(?:[a-z][a-z0-9-]*: )?(?:(?:info|notice|debug \d+|warning|error): )?")
_CLIENT = (
    r"client (?:@0x[0-9a-fA-F]+ )?(?P<ip>[0-9A-Fa-f.:]+)#(?P<port>\d+)"
    r"(?: \((?P<sig>[^)]*)\))?: (?:view (?P<view>[^:]+): )?"
)
_QUERY = re.compile(
    _CLIENT + r"query: (?P<q>\S+) (?P<cls>\S+) (?P<type>\S+) (?P<flags>[-+]\S*)"
    r"(?: \((?P<srv>[0-9A-Fa-f.:]+)\))?$"
)
_DENIED = re.compile(_CLIENT + r"query \((?P<what>[^)]*)\) '(?P<q>[^/']*)/[^']*' denied")


def _bind_time(m: re.Match[str]) -> datetime | None:
    if m["iso"]:
        return iso_time(m["iso"])
    month = MONTHS.get(m["mon"].lower())
    if month is None:
        return None
    try:
        h, mi, s = (int(x) for x in m["hms"].split(":"))
        stamp = datetime(int(m["y"]), month, int(m["d"]), h, mi, s, tzinfo=UTC)
    except ValueError:
        return None
    if m["ms"]:
        stamp += timedelta(microseconds=int((m["ms"] + "000000")[:6]))
    return stamp


def parse_bind(body: str, ts: datetime | None) -> NetEvent | str | None:
    """One BIND message (after the time stamp): a NetEvent, None for a message that is not
    about a query, or an error text for a query line we could not read."""
    body = _PREFIX.sub("", body, count=1)
    if not body.startswith("client "):
        return None
    m = _QUERY.match(body)
    action = ""
    if m is None:
        m = _DENIED.match(body)
        if m is None:
            return "unreadable client query line" if " query" in body else None
        action = "denied"
    client = ip_text(m["ip"])
    if client is None:
        return f"bad client address {m['ip'][:60]!r}"
    server = ""
    flags = ""
    if action == "":
        flags = m["flags"]
        if m["srv"]:
            server = ip_text(m["srv"]) or ""
            if not server:
                return f"bad server address {m['srv'][:60]!r}"
    return NetEvent(
        kind="bind:query",
        ts=ts,
        client=client,
        client_port=int(m["port"]) if len(m["port"]) <= 5 else 0,
        server=server,
        server_port=53 if server else 0,
        # the T flag marks a query that came over TCP
        proto="tcp" if "T" in flags else "udp",
        query=dns_name(m["q"]),
        action=action,
    )


def read_bind(path: Path, issues: IssueLog) -> Iterator[NetEvent]:
    """Query events of a BIND log (file channel or syslog); other named messages are skipped."""
    ref = file_date(path)
    for lineno, line in open_text(path):
        if not line.strip():
            continue
        bm = _BIND_TIME.match(line)
        if bm is not None:
            ts, body = _bind_time(bm), bm["rest"]
        else:
            sl = split_syslog(line, ref)
            if sl is None:
                if line.startswith("client "):  # print-time no
                    ts, body = None, line
                else:
                    issues.add(str(path), lineno, "not a BIND log line")
                    continue
            elif sl[1] != "named":
                continue
            else:
                ts, body = sl[0], sl[2]
        got = parse_bind(body, ts)
        if isinstance(got, str):
            issues.add(str(path), lineno, got)
        elif got is not None:
            got.source, got.line = str(path), lineno
            yield got


def _sniff(head: list[str], filename: str) -> bool:
    return any(
        _QUERY.match("client " + line.split("client ", 1)[1]) for line in head if "client " in line
    )


register(Source("bind", "BIND (named) query log", _sniff, read_bind))
