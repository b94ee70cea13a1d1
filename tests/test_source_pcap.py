"""Packet captures: the five Suricata-verify pcaps (cross-checked against their test.yaml EVE
expectations) and captures built here with dpkt (IPv6, VLAN, TLS SNI, Linux cooked, pcapng,
corrupt packets); random packets fuzzed."""

from __future__ import annotations

import io
import struct
from datetime import UTC, datetime
from pathlib import Path

import dpkt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quet.errors import InputError
from quet.indicators.model import IssueLog
from quet.netwatch.records import NetEvent
from quet.netwatch.sources import detect
from quet.netwatch.sources.pcap import client_hello_sni, read_pcap

DATA = Path(__file__).parent / "data" / "netwatch" / "pcap"
V4 = {"a": bytes([10, 0, 0, 5]), "b": bytes([198, 51, 100, 7])}
C6 = bytes.fromhex("20010db8000000000000000000000005")
S6 = bytes.fromhex("20010db8000000000000000000000443")
MAC = b"\x00\x11\x22\x33\x44\x55"
T0 = 1764057662.0


def read(path: Path) -> tuple[list[NetEvent], IssueLog]:
    issues = IssueLog()
    return list(read_pcap(path, issues)), issues


def brief(events: list[NetEvent]) -> list[tuple[object, ...]]:
    return [
        (e.kind, e.client, e.client_port, e.server, e.server_port, e.proto, e.query, e.answers,
         e.host, e.action, e.line)
        for e in events
    ]  # fmt: skip


# --- the Suricata-verify captures ---------------------------------------------------------------


def test_dns_nxdomain_soa() -> None:
    # test.yaml: one dns event, rcode NXDOMAIN (authority oisf.net SOA)
    events, issues = read(DATA / "dns-eve-v2-udp-nxdomain-soa.pcap")
    assert len(issues) == 0
    assert events[1] == NetEvent(
        kind="pcap:dns",
        ts=datetime(2017, 1, 27, 16, 3, 18, 623093, tzinfo=UTC),
        client="10.16.1.11",
        client_port=59465,
        server="8.8.4.4",
        server_port=53,
        proto="udp",
        query="dne.oisf.net",
        action="NXDOMAIN",
        source=str(DATA / "dns-eve-v2-udp-nxdomain-soa.pcap"),
        line=1,
    )
    assert brief(events[:1]) == [
        ("pcap:flow", "10.16.1.11", 59465, "8.8.4.4", 53, "udp", "", [], "", "", 1)
    ]


def test_dns_junk_request_first() -> None:
    # test.yaml: one dns request for catenacyber.Fr and one flow; the junk first request is a
    # corrupt DNS message (an issue), and the FORMERR answer to it names nothing
    events, issues = read(DATA / "dns-udp-junkrequest-first.pcap")
    assert [(i.line, i.message) for i in issues.issues] == [
        (1, "unreadable DNS message (UnpackError)")
    ]
    assert brief(events) == [
        ("pcap:flow", "192.168.1.10", 59075, "192.168.1.1", 53, "udp", "", [], "", "", 1),
        ("pcap:dns", "192.168.1.10", 59075, "192.168.1.1", 53, "udp", "catenacyber.fr",
         ["188.165.53.185"], "", "NOERROR", 3),
    ]  # fmt: skip


def test_flow_vlan() -> None:
    # test.yaml: a flow with vlan [6] and one with [1, 10]: the same ICMP 5-tuple, two VLANs
    events, issues = read(DATA / "eve-flow-vlan.pcap")
    assert len(issues) == 0
    assert brief(events) == [
        ("pcap:flow", "192.168.0.1", 0, "255.255.255.255", 0, "icmp", "", [], "", "", 1),
        ("pcap:flow", "192.168.0.1", 0, "255.255.255.255", 0, "icmp", "", [], "", "", 2),
    ]


def test_http_options() -> None:
    # test.yaml: flow src_port 54321 -> dest_port 80 TCP; http OPTIONS hostname example.com
    events, issues = read(DATA / "http-options-method.pcap")
    assert len(issues) == 0
    assert brief(events) == [
        ("pcap:flow", "192.168.1.10", 54321, "192.168.1.20", 80, "tcp", "", [], "", "", 1),
        ("pcap:http", "192.168.1.10", 54321, "192.168.1.20", 80, "tcp", "", [], "example.com",
         "", 4),
    ]  # fmt: skip
    assert events[1].url == ""  # `OPTIONS *` names no path


def test_tls_sni() -> None:
    events, issues = read(DATA / "tls-alpn-log-detect-02.pcap")
    assert len(issues) == 0
    assert brief(events) == [
        ("pcap:flow", "10.84.1.49", 55349, "17.248.236.64", 443, "tcp", "", [], "", "", 1),
        ("pcap:tls", "10.84.1.49", 55349, "17.248.236.64", 443, "tcp", "", [],
         "p130-contacts.icloud.com", "", 4),
    ]  # fmt: skip
    assert events[1].ts == datetime(2024, 6, 1, 5, 55, 5, 298706, tzinfo=UTC)


@pytest.mark.parametrize("path", sorted(DATA.glob("*.pcap")), ids=lambda p: p.name)
def test_detected(path: Path) -> None:
    src = detect(path)
    assert src is not None and src.name == "pcap"


# --- captures built here --------------------------------------------------------------------------


def client_hello(sni: str) -> bytes:
    name = sni.encode()
    ext = struct.pack("!HHHBH", 0, len(name) + 5, len(name) + 3, 0, len(name)) + name
    ext += struct.pack("!HH", 0x0010, 5) + b"\x00\x03\x02h2"  # ALPN, before nothing else
    body = b"\x03\x03" + b"\x11" * 32 + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00"
    body += struct.pack("!H", len(ext)) + ext
    hs = b"\x01" + struct.pack("!I", len(body))[1:] + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


def tcp6(sport: int, dport: int, flags: int, data: bytes = b"", src: bytes = C6) -> dpkt.ip6.IP6:
    dst = S6 if src == C6 else C6
    seg = dpkt.tcp.TCP(sport=sport, dport=dport, flags=flags, data=data)
    return dpkt.ip6.IP6(src=src, dst=dst, nxt=6, hlim=64, plen=len(bytes(seg)), data=seg)


def udp4(src: str, dst: str, sport: int, dport: int, data: bytes) -> dpkt.ip.IP:
    dg = dpkt.udp.UDP(sport=sport, dport=dport, data=data)
    dg.ulen = len(bytes(dg))
    ip = dpkt.ip.IP(src=V4[src], dst=V4[dst], p=17, ttl=64, data=dg)
    ip.len = len(bytes(ip))
    return ip


def vlan_frame(ip: dpkt.Packet, vlan: int = 42) -> bytes:
    etype = 0x86DD if isinstance(ip, dpkt.ip6.IP6) else 0x0800
    return MAC + MAC + struct.pack("!HHH", 0x8100, vlan, etype) + bytes(ip)


def dns_query(name: str, qid: int = 0x1234) -> bytes:
    msg = dpkt.dns.DNS(id=qid, qd=[dpkt.dns.DNS.Q(name=name, type=dpkt.dns.DNS_A)])
    return bytes(msg)


def dns_answer(name: str, ip: bytes, qid: int = 0x1234) -> bytes:
    msg = dpkt.dns.DNS(id=qid, op=dpkt.dns.DNS_RA, rcode=0, qd=[dpkt.dns.DNS.Q(name=name)])
    msg.qr = dpkt.dns.DNS_R
    rr = dpkt.dns.DNS.RR(name=name, type=dpkt.dns.DNS_A, ttl=60, rdata=ip)
    msg.an = [rr]
    return bytes(msg)


def write(path: Path, frames: list[bytes], linktype: int = dpkt.pcap.DLT_EN10MB) -> Path:
    with path.open("wb") as fh:
        w = dpkt.pcap.Writer(fh, linktype=linktype)
        for i, frame in enumerate(frames):
            w.writepkt(frame, ts=T0 + i)
    return path


def test_ipv6_vlan_sni_capture(tmp_path: Path) -> None:
    hello = client_hello("Secure.Example.ORG")
    frames = [
        vlan_frame(tcp6(50000, 443, dpkt.tcp.TH_SYN)),
        vlan_frame(tcp6(443, 50000, dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK, src=S6)),
        vlan_frame(tcp6(50000, 443, dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH, hello[:40])),
        vlan_frame(tcp6(50000, 443, dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH, hello[40:])),
        vlan_frame(udp4("a", "b", 40000, 53, dns_query("Www.Example.COM")), vlan=7),
        vlan_frame(udp4("b", "a", 53, 40000, dns_answer("www.example.com", V4["b"])), vlan=7),
    ]
    path = write(tmp_path / "v6.pcap", frames)
    events, issues = read(path)
    assert len(issues) == 0
    assert events[1] == NetEvent(
        kind="pcap:tls",
        ts=datetime.fromtimestamp(T0 + 3, UTC),
        client="2001:db8::5",
        client_port=50000,
        server="2001:db8::443",
        server_port=443,
        proto="tcp",
        host="secure.example.org",  # the hello spans two segments
        source=str(path),
        line=4,
    )
    assert brief(events) == [
        ("pcap:flow", "2001:db8::5", 50000, "2001:db8::443", 443, "tcp", "", [], "", "", 1),
        ("pcap:tls", "2001:db8::5", 50000, "2001:db8::443", 443, "tcp", "", [],
         "secure.example.org", "", 4),
        ("pcap:flow", "10.0.0.5", 40000, "198.51.100.7", 53, "udp", "", [], "", "", 5),
        ("pcap:dns", "10.0.0.5", 40000, "198.51.100.7", 53, "udp", "www.example.com",
         ["198.51.100.7"], "", "NOERROR", 5),
    ]  # fmt: skip


def test_synack_first_points_to_the_client(tmp_path: Path) -> None:
    frames = [vlan_frame(tcp6(443, 50000, dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK, src=S6))]
    events, _ = read(write(tmp_path / "sa.pcap", frames))
    assert [(e.client, e.client_port, e.server_port) for e in events] == [
        ("2001:db8::5", 50000, 443)
    ]


def test_linux_cooked_dns_over_tcp_and_http(tmp_path: Path) -> None:
    def sll(ip: dpkt.Packet) -> bytes:
        return struct.pack("!HHH8sH", 0, 1, 6, MAC + b"\x00\x00", 0x0800) + bytes(ip)

    q = dns_query("tcp.example.net", 7)
    seg = dpkt.tcp.TCP(sport=41000, dport=53, flags=dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK * 0)
    first = dpkt.ip.IP(src=V4["a"], dst=V4["b"], p=6, data=seg)
    first.len = len(bytes(first))
    data = dpkt.tcp.TCP(sport=41000, dport=53, flags=dpkt.tcp.TH_ACK,
                        data=struct.pack("!H", len(q)) + q)  # fmt: skip
    second = dpkt.ip.IP(src=V4["a"], dst=V4["b"], p=6, data=data)
    second.len = len(bytes(second))
    req = b"GET /x?y=1 HTTP/1.1\r\nHost: Web.Example.com:8080\r\nUser-Agent: t\r\n\r\n"
    http = dpkt.tcp.TCP(sport=41001, dport=8080, flags=dpkt.tcp.TH_ACK, data=req)
    third = dpkt.ip.IP(src=V4["a"], dst=V4["b"], p=6, data=http)
    third.len = len(bytes(third))
    path = write(tmp_path / "sll.pcap", [sll(first), sll(second), sll(third)],
                 linktype=dpkt.pcap.DLT_LINUX_SLL)  # fmt: skip
    events, issues = read(path)
    assert len(issues) == 0
    assert [(e.kind, e.query, e.host, e.url, e.line) for e in events] == [
        ("pcap:flow", "", "", "", 1),
        ("pcap:flow", "", "", "", 3),
        ("pcap:http", "", "web.example.com", "http://web.example.com:8080/x?y=1", 3),
        ("pcap:dns", "tcp.example.net", "", "", 2),  # never answered: written at the end
    ]


def test_pcapng(tmp_path: Path) -> None:
    buf = io.BytesIO()
    w = dpkt.pcapng.Writer(buf, linktype=dpkt.pcap.DLT_EN10MB)
    w.writepkt(vlan_frame(udp4("a", "b", 40000, 53, dns_query("ng.example"))), ts=T0)
    path = tmp_path / "x.pcapng"
    path.write_bytes(buf.getvalue())
    src = detect(path)
    assert src is not None and src.name == "pcap"
    events, issues = read(path)
    assert [(e.kind, e.query) for e in events] == [("pcap:flow", ""), ("pcap:dns", "ng.example")]
    assert events[0].ts == datetime.fromtimestamp(T0, UTC) and len(issues) == 0


def test_corrupt_and_truncated_packets_are_issues(tmp_path: Path) -> None:
    good = vlan_frame(udp4("a", "b", 40000, 53, dns_query("ok.example")))
    frames = [
        b"\x00\x01",  # shorter than an Ethernet header
        MAC + MAC + b"\x81\x00\x00",  # a VLAN tag cut off
        MAC + MAC + b"\x08\x00" + b"\x45\x00\x00",  # an IPv4 header cut off
        good[:-6],  # the DNS message cut: the IP length says more
        MAC + MAC + b"\x08\x06" + b"\x00" * 28,  # ARP: not IP, not an issue
        good,
    ]
    path = write(tmp_path / "bad.pcap", frames)
    events, issues = read(path)
    assert [i.line for i in issues.issues] == [1, 2, 3, 4]
    assert [(e.kind, e.query, e.line) for e in events] == [
        ("pcap:flow", "", 4),
        ("pcap:dns", "ok.example", 6),
    ]
    # a capture cut in the middle of a record
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(path.read_bytes()[:-10])
    events, issues = read(cut)
    assert len(issues) >= 4


def test_not_a_capture_and_missing(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    path.write_bytes(b"hello world, not a capture")
    events, issues = read(path)
    assert events == [] and [i.line for i in issues.issues] == [0]
    with pytest.raises(InputError):
        read(tmp_path / "absent.pcap")


def test_client_hello_sni() -> None:
    hello = client_hello("a.example")
    assert client_hello_sni(hello) == "a.example"
    assert client_hello_sni(hello[:30]) is None
    assert client_hello_sni(b"\x17\x03\x03\x00\x01\x00") is None


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    packets=st.lists(st.binary(max_size=200), max_size=10),
    linktype=st.sampled_from([1, 113, 276, 0, 101]),
    cut=st.integers(0, 400),
)
def test_fuzzed_packets_never_fatal(
    tmp_path: Path, packets: list[bytes], linktype: int, cut: int
) -> None:
    real = (DATA / "tls-alpn-log-detect-02.pcap").read_bytes()
    frames = [*packets, vlan_frame(udp4("a", "b", 1, 53, dns_query("f.example")))[:cut]]
    path = write(tmp_path / "fuzz.pcap", frames, linktype=linktype)
    events, issues = read(path)
    assert all(isinstance(e, NetEvent) for e in events)
    assert len(issues) <= 2 * len(frames)
    mangled = tmp_path / "mangled.pcap"
    mangled.write_bytes(real[:24] + bytes(b ^ 0x5A for b in real[24 : 24 + cut]) + real[24 + cut :])
    list(read_pcap(mangled, IssueLog()))


def test_detected_by_magic_without_extension(tmp_path: Path) -> None:
    for path in sorted(DATA.glob("*.pcap")):
        bare = tmp_path / path.stem
        bare.write_bytes(path.read_bytes())
        src = detect(bare)
        assert src is not None and src.name == "pcap", path.name
    text = tmp_path / "notes"
    text.write_text("just some notes\n")
    assert getattr(detect(text), "name", None) != "pcap"
