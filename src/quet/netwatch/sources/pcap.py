"""Packet captures (pcap, pcapng; gzip too) read with dpkt: one flow per TCP/UDP 5-tuple, DNS
queries with their answers, HTTP request hosts and TLS ClientHello SNI. Truncated or corrupt
packets are counted as issues (line = packet number); no stream reassembly beyond one TLS hello."""

from __future__ import annotations

import gzip
import io
import ipaddress
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import dpkt

from quet.errors import InputError
from quet.indicators.model import IssueLog
from quet.netwatch.records import NetEvent
from quet.netwatch.sources import Source, make_url, norm_host, register
from quet.netwatch.sources.bind import dns_name

PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
DNS_PORTS = frozenset({53})
DNS_WINDOW = 5000  # packets a DNS query waits for its answer before it is written out alone
TLS_MAX = 16 * 1024 + 5  # one TLS record, the most a ClientHello buffer may hold
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
HTTP_METHODS = (b"GET", b"POST", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"CONNECT", b"PATCH",
                b"TRACE", b"PROPFIND")  # fmt: skip
_VLAN_TYPES = (0x8100, 0x88A8, 0x9100)
_ETH_IP = (0x0800, 0x86DD)
_RAW = (101, 12, 14, 228, 229)  # DLT_RAW and its per-OS aliases, IPv4 / IPv6 only


class _Corrupt(Exception):
    """A packet too short or malformed to read."""


@dataclass
class _Packet:
    no: int
    ts: datetime | None
    src: str
    dst: str
    proto: str
    sport: int
    dport: int
    flags: int
    payload: bytes
    truncated: bool = False
    vlan: tuple[int, ...] = ()


@dataclass
class _State:
    path: str
    issues: IssueLog
    flows: set[tuple[tuple[int, ...], str, str, int, str, int]] = field(default_factory=set)
    dns: dict[tuple[str, int, str, int, int], NetEvent] = field(default_factory=dict)
    hello: dict[tuple[str, int, str, int], bytearray] = field(default_factory=dict)


def _ip_bytes(linktype: int, buf: bytes) -> tuple[tuple[int, ...], bytes] | None:
    """(VLAN ids, the IP packet) inside a frame; None when it carries something else (ARP…)."""
    if linktype == 1:  # Ethernet, with any number of 802.1Q / QinQ tags
        if len(buf) < 14:
            raise _Corrupt("short Ethernet frame")
        etype, off = struct.unpack_from("!H", buf, 12)[0], 14
        vlans: list[int] = []
        for _ in range(4):
            if etype not in _VLAN_TYPES:
                break
            if len(buf) < off + 4:
                raise _Corrupt("short VLAN tag")
            tci, etype = struct.unpack_from("!HH", buf, off)
            vlans.append(tci & 0x0FFF)
            off += 4
        return (tuple(vlans), buf[off:]) if etype in _ETH_IP else None
    if linktype == 113:  # Linux cooked capture v1
        if len(buf) < 16:
            raise _Corrupt("short Linux cooked header")
        return ((), buf[16:]) if struct.unpack_from("!H", buf, 14)[0] in _ETH_IP else None
    if linktype == 276:  # Linux cooked capture v2
        if len(buf) < 20:
            raise _Corrupt("short Linux cooked v2 header")
        return ((), buf[20:]) if struct.unpack_from("!H", buf, 0)[0] in _ETH_IP else None
    if linktype in (0, 108):  # BSD loopback: a 4-byte address family
        return ((), buf[4:]) if len(buf) > 4 and buf[4] >> 4 in (4, 6) else None
    if linktype in _RAW:
        return (), buf
    return None


def _packet(no: int, ts: float, linktype: int, buf: bytes) -> _Packet | None:
    framed = _ip_bytes(linktype, buf)
    if framed is None or not framed[1]:
        return None
    vlan, raw = framed
    version = raw[0] >> 4
    try:
        ip: dpkt.ip.IP | dpkt.ip6.IP6
        if version == 4:
            ip = dpkt.ip.IP(raw)
            truncated = len(raw) < ip.len
            if ip.offset:
                return None  # a later fragment: its ports are in the first one
            src, dst, proto_no = ip.src, ip.dst, ip.p
        elif version == 6:
            ip = dpkt.ip6.IP6(raw)
            truncated = len(raw) < 40 + ip.plen
            src, dst, proto_no = ip.src, ip.dst, ip.p
        else:
            raise _Corrupt(f"IP version {version}")
    except (dpkt.UnpackError, struct.error, IndexError, ValueError) as exc:
        raise _Corrupt(f"bad IP header ({exc.__class__.__name__})") from exc
    when = datetime.fromtimestamp(ts, UTC) if 0 <= ts < 2**33 else None
    a, b = ipaddress.ip_address(src).compressed, ipaddress.ip_address(dst).compressed
    l4 = ip.data
    if proto_no in (1, 58):  # ICMP: a flow without ports
        name = "icmp" if proto_no == 1 else "ipv6-icmp"
        return _Packet(no, when, a, b, name, 0, 0, 0, b"", truncated, vlan)
    if proto_no == 6 and isinstance(l4, dpkt.tcp.TCP):
        return _Packet(
            no, when, a, b, "tcp", l4.sport, l4.dport, l4.flags, bytes(l4.data), truncated, vlan
        )
    if proto_no == 17 and isinstance(l4, dpkt.udp.UDP):
        return _Packet(
            no, when, a, b, "udp", l4.sport, l4.dport, 0, bytes(l4.data), truncated, vlan
        )
    if proto_no in (6, 17):
        raise _Corrupt("truncated TCP/UDP header")
    return None  # ESP, GRE…: no flow kept for these


def _event(kind: str, p: _Packet, state: _State, *, reverse: bool = False) -> NetEvent:
    """An event of packet `p`; `reverse` when its receiver is the client (a response)."""
    if reverse:
        return NetEvent(kind, p.ts, p.dst, p.dport, p.src, p.sport, p.proto, source=state.path,
                        line=p.no)  # fmt: skip
    return NetEvent(
        kind=kind,
        ts=p.ts,
        client=p.src,
        client_port=p.sport,
        server=p.dst,
        server_port=p.dport,
        proto=p.proto,
        source=state.path,
        line=p.no,
    )


def _flow(p: _Packet, state: _State) -> NetEvent | None:
    """The flow record at the first packet of a 5-tuple; a lone SYN-ACK points the other way."""
    a, b = (p.src, p.sport), (p.dst, p.dport)
    lo, hi = (a, b) if a <= b else (b, a)
    key = (p.vlan, p.proto, lo[0], lo[1], hi[0], hi[1])  # VLANs are separate networks
    if key in state.flows:
        return None
    state.flows.add(key)
    syn_ack = p.proto == "tcp" and p.flags & dpkt.tcp.TH_SYN and p.flags & dpkt.tcp.TH_ACK
    return _event("pcap:flow", p, state, reverse=bool(syn_ack))


def _answers(msg: dpkt.dns.DNS) -> list[str]:
    out: list[str] = []
    for rr in msg.an:
        value = ""
        if rr.type == dpkt.dns.DNS_A and len(rr.rdata) == 4:
            value = ipaddress.IPv4Address(rr.rdata).compressed
        elif rr.type == dpkt.dns.DNS_AAAA and len(rr.rdata) == 16:
            value = ipaddress.IPv6Address(rr.rdata).compressed
        elif rr.type == dpkt.dns.DNS_CNAME:
            value = dns_name(getattr(rr, "cname", ""))
        elif rr.type == dpkt.dns.DNS_PTR:
            value = dns_name(getattr(rr, "ptrname", ""))
        if value and value not in out:
            out.append(value)
    return out


def _dns_messages(p: _Packet) -> list[bytes]:
    if p.proto == "udp":
        return [p.payload]
    out: list[bytes] = []  # DNS over TCP: messages behind a 2-byte length, when whole
    data = p.payload
    while len(data) >= 2:
        n = struct.unpack_from("!H", data)[0]
        if n == 0 or len(data) < 2 + n:
            break
        out.append(data[2 : 2 + n])
        data = data[2 + n :]
    return out


def _dns(p: _Packet, state: _State) -> Iterator[NetEvent]:
    for raw in _dns_messages(p):
        try:
            msg = dpkt.dns.DNS(raw)
            question = dns_name(msg.qd[0].name) if msg.qd else ""
            answers = _answers(msg) if msg.qr == dpkt.dns.DNS_R else []
        except (dpkt.UnpackError, struct.error, IndexError, ValueError, UnicodeError) as exc:
            state.issues.add(state.path, p.no, f"unreadable DNS message ({exc.__class__.__name__})")
            continue
        if msg.qr == dpkt.dns.DNS_Q:
            key = (p.src, p.sport, p.dst, p.dport, msg.id)
            if key not in state.dns:  # a retransmission keeps the first
                event = _event("pcap:dns", p, state)
                event.query = question
                state.dns[key] = event
            continue
        pending = state.dns.pop((p.dst, p.dport, p.src, p.sport, msg.id), None)
        if pending is None:  # the answer to a query sent before the capture began
            if not question and not answers:
                continue  # e.g. a FORMERR to junk: nothing to match on
            pending = _event("pcap:dns", p, state, reverse=True)
            pending.query = question
        pending.answers = answers
        pending.action = RCODES.get(msg.rcode, str(msg.rcode))
        yield pending


def _http(p: _Packet, state: _State) -> NetEvent | None:
    data = p.payload
    method = data.partition(b" ")[0]
    if method not in HTTP_METHODS:
        return None
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    lines = head.split("\r\n")
    target = lines[0].split(" ")[1] if len(lines[0].split(" ")) > 1 else ""
    host = ""
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep and name.strip().lower() == "host":
            host = value.strip()
            break
    if not host and "://" not in target:
        return None
    event = _event("pcap:http", p, state)
    if "://" in target and not host:  # a request to a proxy names the whole URL
        host = target.split("://", 1)[1].split("/", 1)[0]
    event.host = norm_host(host)
    event.url = make_url(host, target, p.dport)
    return event


def client_hello_sni(record: bytes) -> str | None:
    """The server_name of a TLS ClientHello record, "" when it has none, None when `record`
    is not a whole ClientHello."""
    if len(record) < 9 or record[0] != 0x16 or record[1] != 3 or record[5] != 1:
        return None
    end = 5 + struct.unpack_from("!H", record, 3)[0]
    if len(record) < end:
        return None
    body = record[9:end]
    pos = 2 + 32  # client_version, random
    try:
        pos += 1 + body[pos]  # session id
        pos += 2 + struct.unpack_from("!H", body, pos)[0]  # cipher suites
        pos += 1 + body[pos]  # compression methods
        ext_end = pos + 2 + struct.unpack_from("!H", body, pos)[0]
        pos += 2
        while pos + 4 <= min(ext_end, len(body)):
            etype, elen = struct.unpack_from("!HH", body, pos)
            pos += 4
            if etype == 0:  # server_name: list length, then (type 0, length, name)
                if body[pos + 2] == 0:
                    n = struct.unpack_from("!H", body, pos + 3)[0]
                    name = body[pos + 5 : pos + 5 + n]
                    if len(name) == n:
                        return name.decode("ascii", "replace")
                return None
            pos += elen
    except (IndexError, struct.error):
        return None
    return ""


def _tls(p: _Packet, state: _State) -> NetEvent | None:
    key = (p.src, p.sport, p.dst, p.dport)
    buf = state.hello.get(key)
    if buf is None:
        if len(p.payload) < 6 or p.payload[0] != 0x16 or p.payload[1] != 3 or p.payload[5] != 1:
            return None
        buf = bytearray()
    buf += p.payload
    sni = client_hello_sni(bytes(buf))
    need = 5 + struct.unpack_from("!H", buf, 3)[0]
    if sni is None and len(buf) < need <= TLS_MAX:
        state.hello[key] = buf  # the hello goes on in the next segment
        return None
    state.hello.pop(key, None)
    if not sni:
        return None
    event = _event("pcap:tls", p, state)
    event.host = dns_name(sni)
    return event


def _open(path: Path) -> BinaryIO:
    try:
        fh: BinaryIO = path.open("rb")
    except FileNotFoundError as exc:
        raise InputError("no such file", path=str(path)) from exc
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=str(path)) from exc
    if fh.read(2) == b"\x1f\x8b":
        fh.close()
        with gzip.open(path, "rb") as gz:
            try:
                return io.BytesIO(gz.read())
            except (OSError, EOFError):
                return io.BytesIO(b"")
    fh.seek(0)
    return fh


def read_pcap(path: Path, issues: IssueLog) -> Iterator[NetEvent]:
    """Flow, DNS, HTTP and TLS events in packet order (a DNS query when its answer arrives)."""
    state = _State(str(path), issues)
    with _open(path) as fh:
        magic = fh.read(4)
        fh.seek(0)
        try:
            reader: dpkt.pcap.Reader | dpkt.pcapng.Reader
            if magic == PCAPNG_MAGIC:
                reader = dpkt.pcapng.Reader(fh)
            elif magic in PCAP_MAGICS:
                reader = dpkt.pcap.Reader(fh)
            else:
                issues.add(str(path), 0, "not a pcap or pcapng file")
                return
            linktype = reader.datalink()
        except (dpkt.UnpackError, ValueError, struct.error) as exc:
            issues.add(str(path), 0, f"unreadable capture header ({exc})")
            return
        no = 0
        packets = iter(reader)
        while True:
            try:
                ts, buf = next(packets)
            except StopIteration:
                break
            except (dpkt.UnpackError, ValueError, struct.error) as exc:
                issues.add(str(path), no + 1, f"capture ends in a broken record ({exc})")
                break
            no += 1
            yield from _one(no, float(ts), linktype, bytes(buf), state)
            for key in [k for k, e in state.dns.items() if e.line < no - DNS_WINDOW]:
                yield state.dns.pop(key)
    yield from state.dns.values()


def _one(no: int, ts: float, linktype: int, buf: bytes, state: _State) -> Iterator[NetEvent]:
    try:
        p = _packet(no, ts, linktype, buf)
    except _Corrupt as exc:
        state.issues.add(state.path, no, f"corrupt packet: {exc}")
        return
    if p is None:
        return
    if p.truncated:
        state.issues.add(state.path, no, "truncated packet (shorter than its IP length)")
    flow = _flow(p, state)
    if flow is not None:
        yield flow
    if not p.payload:
        return
    if p.sport in DNS_PORTS or p.dport in DNS_PORTS:
        if not p.truncated:
            yield from _dns(p, state)
        return
    if p.proto == "tcp":
        got = _http(p, state) or _tls(p, state)
        if got is not None:
            yield got


# The magic numbers as the text head() decodes them (UTF-8 with replacement): little- and
# big-endian pcap, µs and ns.
_TEXT_MAGICS = ("\ufffd\u00f2\ufffd", "M<\ufffd\ufffd", "\ufffd\ufffd\ufffd\ufffd\x00\x02",
                "\ufffd\ufffd<M\x00\x02")  # fmt: skip


def _sniff(head: list[str], filename: str) -> bool:
    if filename.lower().endswith((".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcapng.gz")):
        return True
    if head and head[0].startswith(_TEXT_MAGICS):
        return True
    # pcapng: 0a 0d 0d 0a splits into two empty lines, then the byte-order magic 1a2b3c4d
    return (
        len(head) >= 3
        and head[0] == head[1] == ""
        and any(m in head[2][:12] for m in ("M<+\x1a", "\x1a+<M"))
    )


register(Source("pcap", "packet capture (pcap / pcapng): flows, DNS, HTTP Host, TLS SNI", _sniff,
                read_pcap))  # fmt: skip
