"""Suricata EVE JSON as network events: dns (v1/v2 and v3 formats), flow, netflow, http, tls,
alert and fileinfo records, each turned so that `client` is the host that initiated."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

from quet.indicators.model import IssueLog
from quet.netwatch.records import NetEvent
from quet.netwatch.sources import (
    Source,
    answer_values,
    load_json_object,
    make_url,
    norm_host,
    norm_ip,
    norm_name,
    norm_port,
    norm_proto,
    open_text,
    parse_ts,
    register,
)

Record = dict[str, object]

# Ports a DNS server answers on: the side holding one of them is the server whatever the format.
DNS_PORTS = frozenset({53, 853, 5353, 5355})
_HEX = re.compile(r"^[0-9a-f]+$")


def _sub(rec: Record, key: str) -> Record:
    value = rec.get(key)
    return value if isinstance(value, dict) else {}


def _str(obj: Record, key: str) -> str:
    value = obj.get(key)
    return value if isinstance(value, str) else ""


def _base(rec: Record, kind: str) -> NetEvent:
    return NetEvent(
        kind=kind,
        ts=parse_ts(rec.get("timestamp")),
        client=norm_ip(rec.get("src_ip")),
        client_port=norm_port(rec.get("src_port")),
        server=norm_ip(rec.get("dest_ip")),
        server_port=norm_port(rec.get("dest_port")),
        proto=norm_proto(rec.get("proto")),
    )


def _swap(event: NetEvent) -> None:
    event.client, event.server = event.server, event.client
    event.client_port, event.server_port = event.server_port, event.client_port


def _from_flow(event: NetEvent, rec: Record) -> bool:
    """Suricata 8 adds the flow's own direction in `flow.src_ip`...; use it when there."""
    flow = _sub(rec, "flow")
    if not flow.get("src_ip"):
        return False
    event.client = norm_ip(flow.get("src_ip"))
    event.server = norm_ip(flow.get("dest_ip"))
    event.client_port = norm_port(flow.get("src_port"))
    event.server_port = norm_port(flow.get("dest_port"))
    return True


def _hash(obj: Record, key: str, length: int) -> str:
    value = _str(obj, key).strip().lower()
    return value if len(value) == length and _HEX.match(value) else ""


def _web(event: NetEvent, rec: Record) -> None:
    """Host and URL from the `http` or `tls` part that alerts and fileinfo records carry too."""
    http = _sub(rec, "http")
    if http:
        hostname = _str(http, "hostname")
        event.host = norm_host(hostname)
        port = norm_port(http.get("http_port"))
        if hostname:
            event.url = make_url(hostname, _str(http, "url"), port)
        else:
            server_port = event.server_port if event.server_port not in (0, 80) else 0
            event.url = make_url(event.server, _str(http, "url"), server_port)
    sni = _str(_sub(rec, "tls"), "sni")
    if sni and not event.host:
        event.host = norm_host(sni)


def _query_names(dns: Record) -> list[str]:
    names: list[str] = []
    for key in ("queries", "query"):  # v3 events; alerts of v2 carry `query`
        items = dns.get(key)
        if isinstance(items, list):
            names += [_str(q, "rrname") for q in items if isinstance(q, dict)]
    if isinstance(dns.get("rrname"), str):  # v1/v2 events
        names.append(_str(dns, "rrname"))
    out: list[str] = []
    for name in map(norm_name, names):
        if name not in out:
            out.append(name)
    return out


def _answer_data(dns: Record) -> list[str]:
    values: list[object] = []
    answers = dns.get("answers")
    if isinstance(answers, list):
        values += [a.get("rdata") for a in answers if isinstance(a, dict)]
    grouped = dns.get("grouped")
    if isinstance(grouped, dict):
        for group in grouped.values():
            if isinstance(group, list):
                values += group
    values.append(dns.get("rdata"))  # v1: one record per answer
    return answer_values(values)


def _dns(rec: Record) -> list[NetEvent]:
    """One event per query name (there is one in practice). The server is the side on a DNS
    port; failing that, a v3 response was logged in its packet's direction (src = resolver)."""
    dns = _sub(rec, "dns")
    event = _base(rec, "suricata:dns")
    version = dns.get("version")
    response = _str(dns, "type").lower() in ("answer", "response")
    server_side_first = event.client_port in DNS_PORTS and event.server_port not in DNS_PORTS
    v3_response = response and isinstance(version, int) and version >= 3
    if server_side_first or (v3_response and event.server_port not in DNS_PORTS):
        _swap(event)
    event.answers = _answer_data(dns)
    if response:
        event.action = _str(dns, "rcode")
    names = _query_names(dns) or [""]
    return [replace(event, query=name, answers=list(event.answers)) for name in names]


def _flow(rec: Record) -> list[NetEvent]:
    event = _base(rec, "suricata:flow")
    _from_flow(event, rec)
    return [event]


def _netflow(rec: Record) -> list[NetEvent]:
    """A netflow record covers one direction: the reply's (from a well-known port to a higher
    one) is turned around so that `client` is the host that initiated."""
    event = _base(rec, "suricata:netflow")
    if 0 < event.client_port < 1024 <= event.server_port:
        _swap(event)
    return [event]


def _http(rec: Record) -> list[NetEvent]:
    event = _base(rec, "suricata:http")
    _web(event, rec)
    return [event]


def _tls(rec: Record) -> list[NetEvent]:
    event = _base(rec, "suricata:tls")
    event.host = norm_host(_str(_sub(rec, "tls"), "sni"))
    return [event]


def _alert(rec: Record) -> list[NetEvent]:
    """`client` from the flow's direction when logged, else from `direction` (to_client: the
    packet came from the server); `action` is the signature."""
    event = _base(rec, "suricata:alert")
    if not _from_flow(event, rec) and rec.get("direction") == "to_client":
        _swap(event)
    event.action = _str(_sub(rec, "alert"), "signature")
    _web(event, rec)
    names = _query_names(_sub(rec, "dns"))
    if names:
        event.query = names[0]
    return [event]


def _fileinfo(rec: Record) -> list[NetEvent]:
    """The record runs the way the file travelled: `client` is dest_ip, the host that received
    it (the downloader, for an HTTP download)."""
    event = _base(rec, "suricata:fileinfo")
    _swap(event)
    info = _sub(rec, "fileinfo")
    event.md5 = _hash(info, "md5", 32)
    event.sha1 = _hash(info, "sha1", 40)
    event.sha256 = _hash(info, "sha256", 64)
    _web(event, rec)
    return [event]


HANDLERS: dict[str, Callable[[Record], list[NetEvent]]] = {
    "dns": _dns,
    "flow": _flow,
    "netflow": _netflow,
    "http": _http,
    "tls": _tls,
    "alert": _alert,
    "fileinfo": _fileinfo,
}


def read(path: Path, issues: IssueLog) -> Iterator[NetEvent]:
    """Events of an EVE JSON file; event types not in HANDLERS (stats, anomaly, ssh, smb, ...)
    are skipped without an issue; a line that is not an EVE record is one issue."""
    where = str(path)
    for lineno, line in open_text(Path(path), issues):
        if not line.strip():
            continue
        try:
            rec = load_json_object(line)
            event_type = rec.get("event_type")
            if not isinstance(event_type, str):
                raise ValueError("no event_type: not an EVE record")
            handler = HANDLERS.get(event_type)
            events = handler(rec) if handler else []
        except (ValueError, TypeError) as exc:
            issues.add(where, lineno, str(exc))
            continue
        for event in events:
            event.source = where
            event.line = lineno
            yield event


def sniff(head: list[str], filename: str) -> bool:
    for line in head[:10]:
        if not line.strip():
            continue
        if not line.lstrip().startswith("{"):
            return False
        try:
            rec = load_json_object(line)
        except ValueError:
            continue
        return "event_type" in rec and ("src_ip" in rec or "timestamp" in rec)
    return False


register(
    Source(
        name="suricata-eve",
        description="Suricata EVE JSON (eve.json): dns, flow, netflow, http, tls, alert and "
        "fileinfo records; gzip too",
        sniff=sniff,
        read=read,
    )
)
