"""Blocklist writers: Suricata datasets and iprep, DNS RPZ and hosts files. Each output is
compared with a reviewed copy in tests/data/, parsed back independently, and must not depend
on the order of its input."""

from __future__ import annotations

import base64
import ipaddress
import random
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import require
from quet.errors import InputError
from quet.indicators.formats import FORMATS, detect, read_path, write_path, writers
from quet.indicators.formats.hostsfile import read_hosts, write_hosts
from quet.indicators.formats.rpz import rpz_ip_name, write_rpz
from quet.indicators.formats.suricata import (
    dataset_paths,
    iprep_categories_path,
    write_datasets,
    write_iprep,
)
from quet.indicators.model import Indicator, IndicatorType, IssueLog, make

DATA = Path(__file__).parent / "data"
SERIAL = 2026112001


def sample() -> list[Indicator]:
    return [
        make("domain", "evil.example.com", family="Emotet", confidence=90),
        make("domain", "bücher.example", name="phish"),
        make("ipv4", "192.0.2.10", family="QakBot", confidence=100),
        make("ipv6", "2001:db8::1", family="QakBot"),
        make("cidr", "10.0.2.0/24", family="Dridex", confidence=60),
        make("cidr", "2001:db8:ff00::/40"),
        make("url", "http://evil.example.com/gate.php"),
        make("sha256", "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"),
        Indicator(
            IndicatorType.DOMAIN, "Ünïcode.example"
        ),  # built without make(): not punycode yet
        make("domain", "evil.example.com", family="Emotet", confidence=40),  # a duplicate
    ]


DOMAINS = {"evil.example.com", "xn--bcher-kva.example", "xn--ncode-cta3g.example"}
NETWORKS = {"192.0.2.10/32", "2001:db8::1/128", "10.0.2.0/24", "2001:db8:ff00::/40"}


def shuffled() -> list[Indicator]:
    inds = sample()
    random.Random(7).shuffle(inds)
    return inds


# --- RPZ ---------------------------------------------------------------------------------------


def parse_zone(text: str) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """A small master-file reader for what write_rpz emits: ($directives, [(owner, type, rdata)])."""
    directives: dict[str, str] = {}
    records: list[tuple[str, str, str]] = []
    for line in text.splitlines():
        line = line.split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("$"):
            key, value = line.split(None, 1)
            directives[key] = value
            continue
        owner, *rest = line.split()
        if rest and rest[0] == "IN":
            rest = rest[1:]
        records.append((owner, rest[0], " ".join(rest[1:])))
    return directives, records


def decode_rpz_ip(owner: str) -> str:
    """The network of an rpz-ip owner name, decoded independently of the writer."""
    labels = owner.removesuffix(".rpz-ip").split(".")
    prefix, parts = labels[0], labels[1:][::-1]
    if "zz" in parts:
        i = parts.index("zz")
        fill = ["0"] * (8 - (len(parts) - 1))
        parts = parts[:i] + fill + parts[i + 1 :]
        return str(ipaddress.ip_network(":".join(parts) + "/" + prefix))
    if len(parts) == 4:
        return str(ipaddress.ip_network(".".join(parts) + "/" + prefix))
    return str(ipaddress.ip_network(":".join(parts) + "/" + prefix))


@pytest.mark.parametrize(
    ("network", "name"),
    [
        ("1.2.3.4", "32.4.3.2.1.rpz-ip"),
        ("10.0.2.0/24", "24.0.2.0.10.rpz-ip"),
        ("10.0.2.9/24", "24.0.2.0.10.rpz-ip"),
        ("2001:db8::1", "128.1.zz.db8.2001.rpz-ip"),
        ("2001:db8::/32", "32.zz.db8.2001.rpz-ip"),
        ("::/0", "0.zz.rpz-ip"),
        ("1:2:3:4:5:6:7:8", "128.8.7.6.5.4.3.2.1.rpz-ip"),
    ],
)
def test_rpz_ip_names(network: str, name: str) -> None:
    assert rpz_ip_name(network) == name
    assert decode_rpz_ip(name) == str(ipaddress.ip_network(network, strict=False))


def test_rpz_golden_and_parse_back(tmp_path: Path) -> None:
    out = tmp_path / "quet.rpz"
    assert write_rpz(shuffled(), out, serial=SERIAL) == 7
    assert out.read_text() == (DATA / "rpz" / "quet.rpz").read_text()
    directives, records = parse_zone(out.read_text())
    assert directives == {"$TTL": "300"}
    assert records[0][:2] == ("@", "SOA") and str(SERIAL) in records[0][2]
    assert records[1] == ("@", "NS", "localhost.")
    policy = records[2:]
    assert {rdata for _, kind, rdata in policy} == {"."}
    assert {kind for _, kind, _ in policy} == {"CNAME"}
    owners = [owner for owner, _, _ in policy]
    names = {o for o in owners if not o.endswith(".rpz-ip") and not o.startswith("*.")}
    assert names == DOMAINS
    assert {o[2:] for o in owners if o.startswith("*.")} == DOMAINS  # subdomains too
    assert {decode_rpz_ip(o) for o in owners if o.endswith(".rpz-ip")} == NETWORKS
    assert len(owners) == len(set(owners))


def test_rpz_named_checkzone(tmp_path: Path) -> None:
    checker = shutil.which("named-checkzone")
    require("named-checkzone (bind9-utils)", checker is not None)
    assert checker is not None
    out = tmp_path / "quet.rpz"
    write_rpz(sample(), out, serial=SERIAL)
    run = subprocess.run(
        [checker, "rpz.quet", str(out)], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"loaded serial {SERIAL}" in run.stdout


def test_rpz_default_serial_is_now(tmp_path: Path) -> None:
    before = int(time.time())
    write_path(sample(), tmp_path / "a.rpz", "rpz")
    after = int(time.time())
    _, records = parse_zone((tmp_path / "a.rpz").read_text())
    serial = int(records[0][2].split("(")[1].split()[0])
    assert before <= serial <= after


# --- Suricata ----------------------------------------------------------------------------------


def test_datasets_golden_and_parse_back(tmp_path: Path) -> None:
    out = tmp_path / "quet.lst"
    assert write_datasets(shuffled(), out) == 5
    files = dataset_paths(out)
    golden = dataset_paths(DATA / "suricata" / "quet.lst")
    for key, path in files.items():
        assert path.read_text() == golden[key].read_text(), key
    domains = {
        base64.b64decode(x, validate=True).decode() for x in files["domains"].read_text().split()
    }
    assert domains == DOMAINS
    assert files["ipv4"].read_text() == "192.0.2.10\n"
    assert files["ip"].read_text() == "2001:db8::1\n"
    rules = [x for x in files["rules"].read_text().splitlines() if x and not x.startswith("#")]
    sids = [m.group(1) for r in rules if (m := re.search(r"sid:(\d+);", r))]
    assert len(rules) == 7 and len(set(sids)) == 7
    declared: dict[str, str] = {}
    for rule in rules:
        assert re.fullmatch(r'alert \w+ \S+ any -> \S+ any \(msg:"[^"]+"; .*rev:1;\)', rule)
        m = re.search(r"dataset:isset,([\w-]+),type (\w+),load ([\w.-]+);", rule)
        assert m is not None
        name, kind, load = m.groups()
        assert declared.setdefault(name, f"{kind} {load}") == f"{kind} {load}"  # one definition
        assert (tmp_path / load).is_file()
    assert declared == {
        "quet-domains": "string quet.lst",
        "quet-ipv4": "ipv4 quet-ipv4.lst",
        "quet-ip": "ip quet-ip.lst",
    }


def test_datasets_without_addresses_drop_stale_lists(tmp_path: Path) -> None:
    out = tmp_path / "feed.lst"
    write_datasets(sample(), out)
    assert dataset_paths(out)["ipv4"].exists()
    assert write_datasets([make("domain", "only.example")], out) == 1
    files = dataset_paths(out)
    assert not files["ipv4"].exists() and not files["ip"].exists()
    assert "ip.dst" not in files["rules"].read_text()


def test_iprep_golden_and_parse_back(tmp_path: Path) -> None:
    out = tmp_path / "quet.list"
    assert write_iprep(shuffled(), out) == 7
    assert out.read_text() == (DATA / "suricata" / "quet.list").read_text()
    cats_path = iprep_categories_path(out)
    assert cats_path.name == "quet.categories.txt"
    assert cats_path.read_text() == (DATA / "suricata" / "quet.categories.txt").read_text()
    cats = {
        int(i): name for i, name, _ in (x.split(",", 2) for x in cats_path.read_text().splitlines())
    }
    assert cats == {1: "Quet", 2: "Dridex", 3: "QakBot"}
    rows = [x.split(",") for x in out.read_text().splitlines()]
    for net, cat, score in rows:
        ipaddress.ip_network(net)
        assert int(cat) in cats and 1 <= int(score) <= 127
    by_cat: dict[str, set[str]] = {}
    for net, cat, _ in rows:
        by_cat.setdefault(cats[int(cat)], set()).add(str(ipaddress.ip_network(net)))
    assert by_cat == {
        "Quet": NETWORKS,
        "QakBot": {"192.0.2.10/32", "2001:db8::1/128"},
        "Dridex": {"10.0.2.0/24"},
    }
    assert ["192.0.2.10", "1", "127"] in rows  # confidence 100 -> the top score


def test_iprep_category_limit(tmp_path: Path) -> None:
    inds = [make("ipv4", f"10.0.{i // 250}.{i % 250 + 1}", family=f"fam{i:03d}") for i in range(80)]
    out = tmp_path / "many.list"
    write_iprep(inds, out)
    cats = iprep_categories_path(out).read_text().splitlines()
    assert len(cats) == 60 and cats[-1].startswith("60,fam058,")
    rows = [x.split(",") for x in out.read_text().splitlines()]
    assert len(rows) == 80 + 59  # every address in category 1, 59 also in their family's


# --- hosts -------------------------------------------------------------------------------------


def test_hosts_sample() -> None:
    path = DATA / "hosts" / "blocklist.hosts"
    fmt = detect(path)
    assert fmt is not None and fmt.name == "hosts"
    issues = IssueLog()
    inds = list(read_hosts(path, issues))
    assert len(issues) == 0
    assert [i.value for i in inds] == [
        "malware-cdn.example.com",
        "c2.badactor.example.net",
        "xn--bcher-kva.example",
        "tracker.example.org",
        "ads.tracker.example.org",
        "tab-separated.example.com",
    ]
    assert inds[1] == Indicator(
        IndicatorType.DOMAIN, "c2.badactor.example.net", source=str(path), confidence=50, line=22
    )


def test_hosts_write_and_read_back(tmp_path: Path) -> None:
    out = tmp_path / "quet.hosts"
    assert write_hosts(shuffled(), out) == 3
    assert out.read_text() == (DATA / "hosts" / "quet.hosts").read_text()
    assert {i.value for i in read_path(out, IssueLog())} == DOMAINS
    assert all(x.startswith("# ") or x.startswith("0.0.0.0 ") for x in out.read_text().splitlines())


def test_hosts_bad_lines(tmp_path: Path) -> None:
    p = tmp_path / "x.hosts"
    p.write_text(
        "0.0.0.0 ok.example\njunk\n0.0.0.0\n999.1.1.1 a.example\n0.0.0.0 bad_label-.example\n"
    )
    issues = IssueLog()
    assert [i.value for i in read_hosts(p, issues)] == ["ok.example"]
    assert [i.line for i in issues.issues] == [2, 3, 4, 5]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=50),
            st.from_regex(
                re.compile(r"(0\.0\.0\.0|::1|[0-9.]{1,15})[ \t]+[a-z0-9._ -]{0,30}(#.*)?"),
                fullmatch=True,
            ),
        ),
        max_size=12,
    )
)
def test_hosts_fuzz_never_raises(tmp_path: Path, lines: list[str]) -> None:
    p = tmp_path / "fuzz.hosts"
    p.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
    for ind in read_hosts(p, IssueLog()):
        assert ind.type is IndicatorType.DOMAIN and ind.value == ind.value.lower()


# --- all writers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "name"),
    [
        ("suricata-dataset", "out.lst"),
        ("suricata-iprep", "out.list"),
        ("hosts", "out.hosts"),
        ("zeek-intel", "out.intel"),
    ],
)
def test_deterministic_and_order_independent(tmp_path: Path, fmt: str, name: str) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    assert write_path(sample(), a / name, fmt) == write_path(shuffled(), b / name, fmt)
    files = sorted(p.name for p in a.iterdir())
    assert files == sorted(p.name for p in b.iterdir())
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    one = tmp_path / "rpz-a.rpz"
    two = tmp_path / "rpz-b.rpz"
    write_rpz(sample(), one, serial=SERIAL)
    write_rpz(shuffled(), two, serial=SERIAL)
    assert one.read_bytes() == two.read_bytes()


def test_write_only_formats(tmp_path: Path) -> None:
    names = set(writers())
    assert {"suricata-dataset", "suricata-iprep", "rpz", "hosts", "zeek-intel"} <= names
    for fmt in ("suricata-dataset", "suricata-iprep", "rpz"):
        assert FORMATS[fmt].read is None
    zone = tmp_path / "policy.rpz"
    write_rpz(sample(), zone, serial=SERIAL)
    with pytest.raises(InputError, match="output format only"):
        list(read_path(zone, IssueLog()))
    assert write_path([make("sha1", "3395856ce81f2b7382dee72602f798b642f14140")], zone, "rpz") == 0


def test_every_feed_format_is_documented() -> None:
    doc = (Path(__file__).parents[1] / "docs" / "formats-feeds.md").read_text(encoding="utf-8")
    mine = {
        "zeek-intel",
        "urlhaus",
        "threatfox-csv",
        "threatfox-json",
        "feodo",
        "malwarebazaar",
        "maltrail",
        "hosts",
        "suricata-dataset",
        "suricata-iprep",
        "rpz",
    }
    assert mine <= set(FORMATS)
    assert [name for name in sorted(mine) if f"`{name}`" not in doc] == []
