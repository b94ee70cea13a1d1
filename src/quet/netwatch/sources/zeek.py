"""Zeek logs as network events: conn, dns, http, ssl, files, notice and intel, written by Zeek's
TSV writer (the `#separator`/`#fields`/`#types` headers) or its JSON writers, gzipped or not."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import partial
from itertools import repeat
from pathlib import Path
from typing import Any

from quet.indicators.model import IssueLog
from quet.netwatch.records import NetEvent
from quet.netwatch.sources import (
    EMPTY_VALUES,
    Source,
    answer_values,
    gc_paused,
    load_json_object,
    make_url,
    norm_host,
    norm_ip,
    norm_name,
    norm_port,
    norm_proto,
    open_blocks,
    parse_ts,
    register,
)
from quet.netwatch.sources._zeek_tsv import Header, Row, Spec, unescape

SUPPORTED = ("conn", "dns", "http", "ssl", "files", "notice", "intel")
# Zeek's standard log names: a JSON log without `_path` is still known by its file name.
KNOWN_LOGS = frozenset(
    (
        *SUPPORTED,
        "ssh",
        "software",
        "known_services",
        "known_hosts",
        "known_certs",
        "x509",
        "weird",
        "dhcp",
        "smtp",
        "ftp",
        "rdp",
        "sip",
        "snmp",
        "smb_files",
        "smb_mapping",
        "dce_rpc",
        "kerberos",
        "ntlm",
        "radius",
        "tunnel",
        "pe",
        "ocsp",
        "dpd",
        "quic",
        "ntp",
        "mysql",
        "irc",
        "socks",
        "syslog",
        "modbus",
        "dnp3",
        "traceroute",
        "signatures",
        "analyzer",
        "conn_long",
        "http2",
        "capture_loss",
        "stats",
        "reporter",
        "loaded_scripts",
        "packet_filter",
        "notice_alarm",
    )
)

# btest canonifies times to X's; unquoted in JSON they make the line invalid JSON.
_CANON_JSON_TS = re.compile(r'(":\s*)X{6,}\.X{6,}(?=\s*[,}])')
_HEX = re.compile(r"^[0-9a-f]+$")
BATCH = 4096  # lines parsed together by the columnar TSV path


def _json_row(line: str) -> Row:
    return load_json_object(_CANON_JSON_TS.sub(r"\1null", line))


# --- field access: the same for TSV rows (str, list, None) and JSON rows (any JSON value) -------


def _get(row: Row, key: str) -> object:
    if key in row:
        return row[key]
    # Some shippers nest the dotted names: {"id": {"orig_h": ...}}.
    node: object = row
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _text(row: Row, key: str) -> str:
    return _as_text(_get(row, key))


def _as_text(value: object) -> str:
    if value is None or isinstance(value, dict | list):
        return ""
    text = str(value)
    return "" if text in EMPTY_VALUES else text


def _items(row: Row, key: str) -> list[str]:
    return _as_items(_get(row, key))


def _as_items(value: object) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value if v is not None and not isinstance(v, dict | list)]
    text = _as_text(value)
    return text.split(",") if text else []  # a TSV log without #types


def _flag(row: Row, key: str) -> bool | None:
    value = _get(row, key)
    if isinstance(value, bool):
        return value
    text = _text(row, key).lower()
    if text in ("t", "true", "1"):
        return True
    if text in ("f", "false", "0"):
        return False
    return None


def _hash(row: Row, key: str, length: int) -> str:
    value = _text(row, key).strip().lower()
    return value if len(value) == length and _HEX.match(value) else ""


def _base(row: Row, kind: str, *, need_ids: bool = True) -> NetEvent:
    client = norm_ip(_get(row, "id.orig_h"))
    if need_ids and not client:
        raise ValueError("no id.orig_h (originator address)")
    return NetEvent(
        kind=kind,
        ts=parse_ts(_get(row, "ts")),
        client=client,
        client_port=norm_port(_get(row, "id.orig_p")),
        server=norm_ip(_get(row, "id.resp_h")),
        server_port=norm_port(_get(row, "id.resp_p")),
        proto=norm_proto(_get(row, "proto")),
    )


# --- one function per log type ------------------------------------------------------------------


def _conn(row: Row) -> NetEvent:
    return _base(row, "zeek:conn")


def _dns(row: Row) -> NetEvent:
    event = _base(row, "zeek:dns")
    event.query = norm_name(_text(row, "query"))
    event.answers = answer_values(_items(row, "answers"))
    event.action = _text(row, "rcode_name")
    return event


def _http(row: Row) -> NetEvent:
    event = _base(row, "zeek:http")
    event.proto = event.proto or "tcp"  # http.log has no proto column; Zeek parses HTTP on TCP
    raw_host = _text(row, "host")
    event.host = norm_host(raw_host)
    if raw_host:
        event.url = make_url(raw_host, _text(row, "uri"))
    else:  # HTTP/1.0 without Host: the request went to the server's address
        event.url = make_url(event.server, _text(row, "uri"), event.server_port)
    return event


def _ssl(row: Row) -> NetEvent:
    event = _base(row, "zeek:ssl")
    event.host = norm_host(_text(row, "server_name"))
    return event


def _files(row: Row) -> NetEvent:
    """`client` is the host that received the file (the downloader for HTTP). Zeek before 5.0
    lists tx_hosts/rx_hosts; later versions give the connection and `is_orig` (T: the
    originator sent the file)."""
    event = _base(row, "zeek:files", need_ids=False)
    rx, tx = _items(row, "rx_hosts"), _items(row, "tx_hosts")
    if rx or tx:
        event.client = norm_ip(rx[0]) if rx else ""
        event.server = norm_ip(tx[0]) if tx else ""
        event.client_port = event.server_port = 0
    elif _flag(row, "is_orig"):
        event.client, event.server = event.server, event.client
        event.client_port, event.server_port = event.server_port, event.client_port
    event.md5 = _hash(row, "md5", 32)
    event.sha1 = _hash(row, "sha1", 40)
    event.sha256 = _hash(row, "sha256", 64)
    return event


def _notice(row: Row) -> NetEvent:
    event = _base(row, "zeek:notice", need_ids=False)
    src, dst = norm_ip(_get(row, "src")), norm_ip(_get(row, "dst"))
    if src and src != event.client:
        event.client, event.client_port = src, 0
    if dst and dst != event.server:
        event.server, event.server_port = dst, 0
    if not event.server_port:
        event.server_port = norm_port(_get(row, "p"))
    event.action = _text(row, "note")
    return event


def _intel(row: Row) -> NetEvent:
    """The seen indicator goes where the matcher looks for its type; `action` keeps it whole."""
    event = _base(row, "zeek:intel", need_ids=False)
    value = _text(row, "seen.indicator")
    kind = _text(row, "seen.indicator_type")
    where = _text(row, "seen.where")
    if kind == "Intel::DOMAIN":
        event.host = norm_host(value)
        if where.startswith("DNS::"):
            event.query = event.host
    elif kind == "Intel::URL" and value:
        event.url = value if "://" in value else f"http://{value}"
    elif kind == "Intel::ADDR" and value:
        ip = norm_ip(value)
        if ip not in (event.client, event.server):
            event.answers = [ip]
    elif kind == "Intel::FILE_HASH":
        digest = value.strip().lower()
        if _HEX.match(digest):
            slot = {32: "md5", 40: "sha1", 64: "sha256"}.get(len(digest))
            if slot:
                setattr(event, slot, digest)
    event.action = f"{kind} {value}".strip()
    return event


_HANDLERS: dict[str, Callable[[Row], NetEvent]] = {
    "conn": _conn,
    "dns": _dns,
    "http": _http,
    "ssl": _ssl,
    "files": _files,
    "notice": _notice,
    "intel": _intel,
}


# The log types whose event is one function of one column per attribute, for the columnar TSV
# path; each must give what its handler above gives (tests compare the two on every sample).
def _query(value: Any) -> str:
    return norm_name(_as_text(value))


def _answers(value: Any) -> list[str]:
    return answer_values(_as_items(value))


def _sni(value: Any) -> str:
    return norm_host(_as_text(value))


_BASE_SPEC: Spec = {
    "client": ("id.orig_h", norm_ip),
    "client_port": ("id.orig_p", norm_port),
    "server": ("id.resp_h", norm_ip),
    "server_port": ("id.resp_p", norm_port),
    "proto": ("proto", norm_proto),
}
FAST_SPECS: dict[str, tuple[str, Spec]] = {
    "conn": ("zeek:conn", _BASE_SPEC),
    "dns": (
        "zeek:dns",
        {
            **_BASE_SPEC,
            "query": ("query", _query),
            "answers": ("answers", _answers),
            "action": ("rcode_name", _as_text),
        },
    ),
    "ssl": ("zeek:ssl", {**_BASE_SPEC, "host": ("server_name", _sni)}),
}


def _event(log: str, row: Row) -> NetEvent | None:
    """The event of one row; None for an unsupported log type without both connection ends."""
    handler = _HANDLERS.get(log)
    if handler is not None:
        return handler(row)
    if _get(row, "id.orig_h") is None or _get(row, "id.resp_h") is None:
        return None
    return _base(row, f"zeek:{log or 'unknown'}")


def _stem(filename: str) -> str:
    # conn.log, conn.00:00:00-01:00:00.log.gz, dns.2018-03-24.json -> conn, dns
    return filename.lower().split(".", 1)[0]


class _Reader:
    """Lines of one Zeek log to events: runs of data rows through the columnar path when the
    log type has one, every other line (and every row it refuses) one by one."""

    def __init__(self, where: str, log: str, issues: IssueLog) -> None:
        self.where = where
        self.header = Header(path=log)
        self.issues = issues
        self.reported: set[str] = set()

    def lines(self, lines: list[str], first: int) -> list[NetEvent]:
        """The events of `lines`, numbered from `first`."""
        out: list[NetEvent] = []
        marks = list(map(str.startswith, lines, repeat("#")))
        start = 0
        while start < len(lines):
            try:
                end = marks.index(True, start)
            except ValueError:
                end = len(lines)
            if end > start:
                self._rows(lines[start:end], first + start, out)
            if end < len(lines):
                self.header.directive(lines[end])
            start = end + 1
        return out

    def _rows(self, lines: list[str], first: int, out: list[NetEvent]) -> None:
        plan = self.header.plan(FAST_SPECS)
        if plan is None:
            for k, line in enumerate(lines):
                event = self.line(line, first + k)
                if event is not None:
                    out.append(event)
            return
        events, slow = plan.events(lines, first, self.where)
        if not slow:
            out += events
            return
        others = [self.line(lines[k], first + k) for k in slow]
        out += sorted(events + [e for e in others if e is not None], key=_line_of)

    def line(self, line: str, lineno: int) -> NetEvent | None:
        """One line the slow way: blank, a header directive, a TSV row or a JSON object."""
        if not line.strip():
            return None
        header = self.header
        if line.startswith("#"):
            header.directive(line)
            return None
        row_log = header.path
        try:
            if line.lstrip().startswith("{"):
                row = _json_row(line)
                row_log = str(row.get("_path") or header.path)
            else:
                row = header.row(line)
            event = _event(row_log, row)
        except (ValueError, TypeError) as exc:
            self.issues.add(self.where, lineno, str(exc))
            return None
        if event is None:
            if row_log not in self.reported:
                self.reported.add(row_log)
                self.issues.add(
                    self.where,
                    0,
                    f"not a supported zeek log ({row_log or 'unnamed'}): its rows have no "
                    "id.orig_h/id.resp_h; skipped",
                )
            return None
        event.source = self.where
        event.line = lineno
        return event


def _line_of(event: NetEvent) -> int:
    return event.line


def read(path: Path, issues: IssueLog, log: str = "") -> Iterator[NetEvent]:
    """Events of a Zeek log. The log type of each row is its `_path` (JSON), the `#path` header
    (TSV), else `log`, else the file name. Rows of logs we do not support that lack
    id.orig_h/id.resp_h are reported once per log type at line 0 and skipped."""
    reader = _Reader(str(path), log or _stem(Path(path).name), issues)
    for first, lines in open_blocks(Path(path), issues, lines=BATCH):
        with gc_paused():  # never across a yield: only while one block is parsed
            events = reader.lines(lines, first)
        yield from events


def parse_lines(
    header: list[str], lines: list[str], issues: IssueLog, name: str, first: int, log: str = ""
) -> list[NetEvent]:
    """The events of `lines` (numbered from `first`) of the Zeek log `name`, whose leading
    header lines are `header` (empty when `lines` start the file): follow mode's entry point,
    the same events and issues as `read` gives for those lines."""
    reader = _Reader(name, log or _stem(Path(name).name), issues)
    for line in header:
        if line.startswith("#"):
            reader.header.directive(line)
    return reader.lines(lines, first)


# --- sniffing ------------------------------------------------------------------------------------

_ZEEK_KEYS = ("_path", "id.orig_h", "uid", "fuid", "_write_ts")


def _guess_by_keys(obj: Row) -> str:
    keys = obj.keys()
    if "seen.indicator" in keys:
        return "intel"
    if "note" in keys:
        return "notice"
    if "fuid" in keys and keys & {"tx_hosts", "rx_hosts", "seen_bytes", "mime_type", "is_orig"}:
        return "files"
    if "query" in keys and keys & {"qtype_name", "rcode_name", "trans_id", "answers"}:
        return "dns"
    if keys & {"method", "uri", "user_agent", "status_code"}:
        return "http"
    if keys & {"server_name", "cipher", "ssl_history"}:
        return "ssl"
    if keys & {"conn_state", "history", "orig_bytes", "duration"}:
        return "conn"
    return ""


def log_type(head: list[str], filename: str) -> str | None:
    """The Zeek log type of a file from its first lines and name; None if it is not Zeek's."""
    stem = _stem(filename)
    sep = "\t"
    tsv = False
    for line in head:
        if line.startswith("#separator "):
            tsv = True
            sep = unescape(line[len("#separator ") :]) or "\t"
        elif tsv and line.startswith("#path" + sep):
            return line[len("#path") + len(sep) :] or stem
        elif tsv and not line.startswith("#"):
            break
    if tsv:
        return stem
    for line in head:
        if not line.lstrip().startswith("{"):
            continue
        try:
            obj = _json_row(line)
        except ValueError:
            continue
        if "event_type" in obj:  # Suricata EVE
            return None
        if "_path" in obj:
            return str(obj["_path"])
        if any(k in obj for k in _ZEEK_KEYS) or ("ts" in obj and stem in KNOWN_LOGS):
            return stem if stem in KNOWN_LOGS else (_guess_by_keys(obj) or stem)
        return None
    return None


def _sniff(wanted: str | None, head: list[str], filename: str) -> bool:
    found = log_type(head, filename)
    if found is None:
        return False
    if wanted is None:
        return found not in SUPPORTED
    return found == wanted


_DESCRIPTIONS = {
    "conn": "Zeek conn.log: every connection (originator, responder, ports, protocol)",
    "dns": "Zeek dns.log: DNS queries and their answers",
    "http": "Zeek http.log: HTTP requests (Host, URL)",
    "ssl": "Zeek ssl.log: TLS handshakes (SNI server_name)",
    "files": "Zeek files.log: files seen on the wire with MD5/SHA1/SHA256",
    "notice": "Zeek notice.log: notices (src, dst, note)",
    "intel": "Zeek intel.log: Intel framework hits (seen.indicator)",
}

for _log, _about in _DESCRIPTIONS.items():
    register(
        Source(
            name=f"zeek-{_log}",
            description=_about + "; TSV or JSON, gzip too",
            sniff=partial(_sniff, _log),
            read=partial(read, log=_log),
            parse_lines=partial(parse_lines, log=_log),
        )
    )

register(
    Source(
        name="zeek-other",
        description="Other Zeek logs (ssh, x509, ...): a connection event per row when rows carry "
        "id.orig_h/id.resp_h; logs without them (software, known_services) are skipped",
        sniff=partial(_sniff, None),
        read=read,
        parse_lines=parse_lines,
    )
)
