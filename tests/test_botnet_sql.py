"""The botnet SQL on DuckDB: longest-prefix attribution against a pytricia reference (nested
IPv4 and IPv6 ranges), statistics counted by hand, the event store's de-duplication and
staging, periods, inherited sector/province, and MaxMind databases written with mmdb-writer."""

from __future__ import annotations

import ipaddress
import random
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import pytricia
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from quet.botnet import duck, sql
from quet.botnet.attribute import org_table, periods_of
from quet.botnet.eventstore import EventStore, StoreBusy
from quet.botnet.feeds import ip_parts, read_feed
from quet.botnet.geo import lookup, mmdb_ranges, official_province, org_ranges, read_mmdb

DATA = Path(__file__).parent / "data" / "botnet"


def fresh_table(rows: list[tuple[str, str, str]], src: int = 0) -> pa.Table:
    out = []
    for ip, family, day in rows:
        parts = ip_parts(ip)
        assert parts is not None
        out.append(
            {
                "ip": parts[0],
                "family": family,
                "day": date.fromisoformat(day),
                "hi": parts[1],
                "lo": parts[2],
                "src": src,
            }
        )
    return pa.Table.from_pylist(out, schema=sql.FRESH_SCHEMA)


def orgs(*rows: tuple[int, str, str, str]) -> pa.Table:
    return pa.Table.from_pylist(
        [dict(zip(sql.ORG_SCHEMA.names, r, strict=True)) for r in rows], schema=sql.ORG_SCHEMA
    )


def run(
    fresh: pa.Table, ranges: pa.Table, org_rows: pa.Table, files: list[str] | None = None
) -> dict[str, pa.Table]:
    days = pc.unique(fresh.column("day")).to_pylist()
    periods, _, _ = periods_of(days)
    return duck.run(duck.Inputs(files or [], fresh, ranges, org_rows, periods), threads=2)


# -- attribution ---------------------------------------------------------------------------------


def random_ranges(rng: random.Random) -> list[tuple[int, str]]:
    nets: list[tuple[int, str]] = []
    for org in range(1, 300):
        if rng.random() < 0.8:
            base = (
                rng.choice(["203.0.", "198.51.", "192.0."])
                + f"{rng.randrange(256)}.{rng.randrange(256)}"
            )
            plen = rng.choice([8, 12, 16, 20, 22, 24, 24, 25, 27, 28, 30, 32])
            nets.append((org, str(ipaddress.ip_network(f"{base}/{plen}", strict=False))))
        else:
            base = f"2001:db8:{rng.randrange(4):x}:{rng.randrange(4):x}::{rng.randrange(65536):x}"
            plen = rng.choice([32, 40, 48, 56, 64, 80, 112, 128])
            nets.append((org, str(ipaddress.ip_network(f"{base}/{plen}", strict=False))))
    return nets


def reference(nets: list[tuple[int, str]], ip: str) -> int | None:
    """Longest prefix with pytricia (one trie per family); the lowest org id on a tie."""
    addr = ipaddress.ip_address(ip)
    best: tuple[int, int] | None = None
    for org, cidr in nets:
        net = ipaddress.ip_network(cidr)
        if net.version == addr.version and addr in net:
            key = (net.prefixlen, -org)
            best = key if best is None or key > best else best
    return None if best is None else -best[1]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_longest_prefix_matches_reference(seed: int) -> None:
    rng = random.Random(seed)
    nets = random_ranges(rng)
    trie4 = pytricia.PyTricia(32)
    trie6 = pytricia.PyTricia(128)
    for org, cidr in sorted(nets, key=lambda n: -n[0]):  # lowest id written last wins ties
        (trie6 if ":" in cidr else trie4)[cidr] = org
    ips = []
    for _org, cidr in nets:  # addresses inside each range and some near it
        net = ipaddress.ip_network(cidr)
        ips.append(str(net[rng.randrange(net.num_addresses)]))
        ips.append(str(net.network_address + max(0, net.num_addresses - 1)))
    ips += [
        f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}"
        for _ in range(200)
    ]
    ips += ["2001:db8::1", "2001:db9::1", "::1", "0.0.0.0", "255.255.255.255"]
    ranges, bad = org_ranges(nets)
    assert not bad
    fresh = fresh_table([(ip, "mirai", "2026-11-24") for ip in set(ips)])
    out = run(fresh, ranges, orgs(*[(o, f"org {o}", "", "") for o in range(1, 300)]))
    got = {r["ip"]: r["org_id"] for r in out["ip_rows"].to_pylist()}
    assert len(got) == len(set(ip_parts(i)[0] for i in ips))  # type: ignore[index]
    for ip, org in got.items():
        trie = trie6 if ":" in ip else trie4
        expected = trie.get(ip)
        assert org == expected == reference(nets, ip), ip


def test_attribution_and_stats_by_hand() -> None:
    nets = [
        (1, "203.0.113.0/24"),
        (2, "203.0.113.128/25"),
        (3, "2001:db8:1::/48"),
        (4, "192.0.2.0/25"),
    ]
    ranges, _ = org_ranges(nets)
    asn = pa.Table.from_pylist(
        [
            {
                "kind": "asn",
                "hi": 0,
                "lo": (0xFFFF << 32) | (203 << 24),
                "plen": 104,
                "org_id": None,
                "asn": 64500,
                "isp": "VNPT",
                "province": "",
                "country": "",
            }
        ],
        schema=sql.RANGE_SCHEMA,
    )
    ranges = pa.concat_tables([ranges, asn])
    org_rows = orgs(
        (1, "Sở TT&TT", "government", "Hà Nội"),
        (2, "Trung tâm CNTT", "government", "Hà Nội"),
        (3, "Bệnh viện", "health", "Hà Nội"),
        (4, "Ngân hàng", "finance", "Hồ Chí Minh"),
    )
    fresh = fresh_table(
        [
            ("203.0.113.10", "gamarue", "2026-11-23"),  # Monday
            ("203.0.113.10", "gamarue", "2026-11-24"),
            ("203.0.113.10", "mirai", "2026-11-24"),
            ("203.0.113.200", "necurs", "2026-11-24"),
            ("2001:db8:1::25", "mirai", "2026-11-24"),
            ("192.0.2.77", "emotet", "2026-11-30"),  # next week, same month
            ("45.76.1.2", "qsnatch", "2026-12-01"),  # next month, unattributed
        ]
    )
    out = run(fresh, ranges, org_rows)
    rows = {(r["ip"], r["family"]): r for r in out["ip_rows"].to_pylist()}
    assert len(rows) == 6
    first = rows[("203.0.113.10", "gamarue")]
    assert (first["first_day"], first["last_day"], first["days"]) == (
        date(2026, 11, 23),
        date(2026, 11, 24),
        2,
    )
    assert (first["org_id"], first["asn"], first["isp"], first["province"]) == (
        1,
        64500,
        "VNPT",
        "Hà Nội",
    )
    assert rows[("203.0.113.200", "necurs")]["org_id"] == 2  # the /25 inside the /24
    assert rows[("2001:db8:1::25", "mirai")]["org_id"] == 3
    assert rows[("2001:db8:1::25", "mirai")]["asn"] is None
    assert rows[("45.76.1.2", "qsnatch")]["org_id"] is None
    assert rows[("45.76.1.2", "qsnatch")]["province"] == ""

    stats = {
        (r["period"], str(r["start"]), r["dim"], r["key"]): (r["label"], r["ips"])
        for r in out["stats"].to_pylist()
    }
    assert stats[("day", "2026-11-24", "all", "")] == ("", 3)
    assert stats[("day", "2026-11-24", "family", "mirai")] == ("mirai", 2)
    assert stats[("day", "2026-11-23", "all", "")] == ("", 1)
    assert stats[("week", "2026-11-23", "all", "")] == ("", 3)
    assert stats[("week", "2026-11-30", "all", "")] == ("", 2)  # Mon 30 Nov and Tue 1 Dec
    assert stats[("month", "2026-11-01", "all", "")] == ("", 4)
    assert stats[("month", "2026-11-01", "org", "1")] == ("Sở TT&TT", 1)
    assert stats[("month", "2026-11-01", "sector", "government")] == ("government", 2)
    assert stats[("month", "2026-11-01", "province", "Hà Nội")] == ("Hà Nội", 3)
    assert stats[("month", "2026-11-01", "asn", "64500")] == ("VNPT", 2)
    assert stats[("month", "2026-11-01", "asn", "")] == ("", 2)
    assert stats[("month", "2026-12-01", "org", "")] == ("", 1)  # unattributed
    assert stats[("month", "2026-12-01", "sector", "")] == ("", 1)
    # every (period, start) has one 'all' row, and per dim the keys add up to it
    for (period, start, dim, _key), (_, _n) in stats.items():
        total = stats[(period, start, "all", "")][1]
        if dim in ("province", "asn", "sector", "org"):
            assert sum(v[1] for k, v in stats.items() if k[:3] == (period, start, dim)) == total
    counts = out["counts"].to_pylist()
    assert counts == [{"src": 0, "new_events": 7, "attributed": 6}]


# -- store, periods, organisations ---------------------------------------------------------------


def test_event_store_dedup_stage_publish(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "events")
    con = duck.connect()
    first = read_feed(DATA / "event4_sinkhole.csv").events
    con.register("incoming", first.append_column("src", pa.array([0] * first.num_rows, pa.int64())))
    fresh = store.new_events(con, "incoming")
    assert fresh.num_rows == 8  # 9 good rows, one repeats an (ip, family, day)
    staged = store.stage(con, fresh)
    assert store.days() == []  # not visible before publish
    staged.publish()
    assert store.days() == [date(2026, 11, 23), date(2026, 11, 24)]
    assert store.read(date(2026, 11, 1), date(2026, 11, 30)).num_rows == 8
    again = store.new_events(con, "incoming")
    assert again.num_rows == 0
    staged = store.stage(con, again)
    staged.discard()
    assert not staged.folder.exists()
    with store.locked(), pytest.raises(StoreBusy, match="another botnet import"), store.locked():
        pass


def test_stored_events_count_in_stats(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "events")
    con = duck.connect()
    old = fresh_table(
        [("203.0.113.10", "gamarue", "2026-11-02"), ("192.0.2.1", "mirai", "2026-11-03")]
    )
    store.stage(con, old).publish()
    new = fresh_table([("203.0.113.10", "gamarue", "2026-11-24")])
    periods, first, last = periods_of([date(2026, 11, 24)])
    assert (first, last) == (date(2026, 11, 1), date(2026, 11, 30))
    assert first is not None and last is not None
    ranges, _ = org_ranges([(1, "203.0.113.0/24")])
    out = duck.run(
        duck.Inputs(store.files(first, last), new, ranges, orgs((1, "A", "", "")), periods)
    )
    stats = {(r["period"], r["dim"], r["key"]): r["ips"] for r in out["stats"].to_pylist()}
    assert stats[("month", "all", "")] == 2 and stats[("day", "all", "")] == 1
    assert stats[("week", "all", "")] == 1
    assert {r["period"] for r in out["stats"].to_pylist()} == {"day", "week", "month"}
    assert out["ip_rows"].num_rows == 1  # only the new event goes to botnet_ips


def test_periods_of() -> None:
    table, first, last = periods_of([date(2026, 11, 30), date(2026, 12, 1)])
    assert set(
        zip(table.column("period").to_pylist(), table.column("start").to_pylist(), strict=True)
    ) == {
        ("day", date(2026, 11, 30)),
        ("day", date(2026, 12, 1)),
        ("week", date(2026, 11, 30)),
        ("month", date(2026, 11, 1)),
        ("month", date(2026, 12, 1)),
    }
    assert (first, last) == (date(2026, 11, 1), date(2026, 12, 31))
    assert periods_of([])[0].num_rows == 0


def test_org_table_inherits_sector_and_province() -> None:
    table = org_table(
        [
            (1, None, "NCSC", "national", ""),
            (2, 1, "Hà Nội", "province", ""),
            (3, 2, "Sở Y tế", "department", "health"),
            (4, 3, "Bệnh viện", "unit", ""),
            (5, 1, "Bộ Tài chính", "ministry", "finance"),
            (6, 5, "Kho bạc", "unit", "other"),
        ]
    )
    rows = {r["org_id"]: r for r in table.to_pylist()}
    assert rows[4]["sector"] == "health" and rows[4]["province"] == "Hà Nội"
    assert rows[6]["sector"] == "other" and rows[6]["province"] == ""
    assert rows[2]["sector"] == "" and rows[2]["province"] == "Hà Nội"


# -- MaxMind -----------------------------------------------------------------------------------


def write_asn_db(path: Path) -> Path:
    w = MMDBWriter(ip_version=6, database_type="GeoLite2-ASN", ipv4_compatible=True)
    for nets, asn, name in (
        (["203.0.113.0/24"], 64500, "VNPT Corp"),
        (["198.51.100.0/24", "2001:db8::/32"], 64501, "Viettel Group"),
        (["192.0.2.0/24"], 64502, "FPT Telecom"),
    ):
        w.insert_network(
            IPSet(nets), {"autonomous_system_number": asn, "autonomous_system_organization": name}
        )
    w.to_db_file(str(path))
    return path


def write_city_db(path: Path) -> Path:
    """Like real GeoLite2-City: subdivision names in English/ASCII only (no Vietnamese)."""
    w = MMDBWriter(ip_version=6, database_type="GeoLite2-City", ipv4_compatible=True)

    def rec(cc: str, sub: dict[str, Any] | None) -> dict[str, Any]:
        out: dict[str, Any] = {"country": {"iso_code": cc, "names": {"en": cc}}}
        if sub:
            out["subdivisions"] = [sub]
        return out

    hn = {"iso_code": "HN", "names": {"en": "Hanoi", "de": "Hanoi"}}
    hcm = {"iso_code": "SG", "names": {"en": "Ho Chi Minh"}}
    hue = {"iso_code": "26", "names": {"en": "Thua Thien-Hue"}}
    dn = {"iso_code": "DN", "names": {"en": "Da Nang"}}
    w.insert_network(IPSet(["203.0.113.0/25", "198.51.100.0/24", "2001:db8:1::/48"]), rec("VN", hn))
    w.insert_network(IPSet(["192.0.2.0/25"]), rec("VN", hcm))
    w.insert_network(IPSet(["192.0.2.128/26"]), rec("VN", hue))
    w.insert_network(IPSet(["192.0.2.192/26"]), rec("VN", dn))
    w.insert_network(IPSet(["45.76.0.0/16"]), rec("SG", {"names": {"en": "Central Singapore"}}))
    w.to_db_file(str(path))
    return path


@pytest.mark.parametrize(
    ("geolite", "official"),
    [
        ("Ho Chi Minh", "Thành phố Hồ Chí Minh"),
        ("Ho Chi Minh City", "Thành phố Hồ Chí Minh"),
        ("Hanoi", "Thành phố Hà Nội"),
        ("Da Nang", "Thành phố Đà Nẵng"),
        ("Thua Thien-Hue", "Thành phố Huế"),
        ("Haiphong", "Thành phố Hải Phòng"),
        ("Dak Lak", "Đắk Lắk"),
        ("Ba Ria-Vung Tau", "Bà Rịa - Vũng Tàu"),
        ("Thanh Hoa Province", "Thanh Hóa"),
        ("Thành phố Hà Nội", "Thành phố Hà Nội"),
        ("Bavaria", "Bavaria"),  # unknown: kept as given
        ("", ""),
    ],
)
def test_official_province(geolite: str, official: str) -> None:
    assert official_province(geolite) == official


def test_mmdb_ranges(tmp_path: Path) -> None:
    asn = read_mmdb(write_asn_db(tmp_path / "asn.mmdb"), "asn")
    assert asn.num_rows == 4 and set(asn.column("kind").to_pylist()) == {"asn"}
    assert lookup(asn, "198.51.100.9")["isp"] == "Viettel Group"  # type: ignore[index]
    assert lookup(asn, "2001:db8:5::1")["asn"] == 64501  # type: ignore[index]
    assert lookup(asn, "8.8.8.8") is None
    city = mmdb_ranges(write_city_db(tmp_path / "city.mmdb"), "geo")
    got = lookup(city, "203.0.113.5")
    # English GeoLite names become the official Vietnamese names
    assert got is not None and (got["province"], got["country"]) == ("Thành phố Hà Nội", "VN")
    assert lookup(city, "192.0.2.1")["province"] == "Thành phố Hồ Chí Minh"  # type: ignore[index]
    assert lookup(city, "192.0.2.130")["province"] == "Thành phố Huế"  # type: ignore[index]
    assert lookup(city, "45.76.3.3")["country"] == "SG"  # type: ignore[index]
    assert lookup(city, "45.76.3.3")["province"] == ""  # a foreign region is no province  # type: ignore[index]
    assert lookup(city, "203.0.113.200") is None
    again = mmdb_ranges(tmp_path / "city.mmdb", "geo")  # from the Parquet cache
    assert again.equals(city)

    # through the SQL: the owning organisation's province wins over the geo database's; the
    # geo database's (mapped) name for addresses nobody registered; ASN from the database
    ranges, _ = org_ranges([(1, "203.0.113.0/24"), (2, "192.0.2.0/26")])
    ranges = pa.concat_tables([ranges, asn, city])
    fresh = fresh_table(
        [
            ("203.0.113.5", "x", "2026-11-24"),
            ("203.0.113.200", "x", "2026-11-24"),
            ("192.0.2.5", "x", "2026-11-24"),
            ("192.0.2.70", "x", "2026-11-24"),
            ("198.51.100.7", "x", "2026-11-24"),
            ("45.76.3.3", "x", "2026-11-24"),
        ]
    )
    out = run(
        fresh,
        ranges,
        orgs((1, "A", "", "Tỉnh khác"), (2, "B", "", "Thành phố Hồ Chí Minh")),
    )
    rows = {r["ip"]: r for r in out["ip_rows"].to_pylist()}
    assert (rows["203.0.113.5"]["province"], rows["203.0.113.5"]["isp"]) == (
        "Tỉnh khác",
        "VNPT Corp",
    )
    assert rows["203.0.113.200"]["province"] == "Tỉnh khác"  # not in the geo database
    assert rows["192.0.2.5"]["province"] == "Thành phố Hồ Chí Minh"
    assert rows["192.0.2.70"]["province"] == "Thành phố Hồ Chí Minh"  # geo: HCM, unregistered
    assert rows["198.51.100.7"]["province"] == "Thành phố Hà Nội"  # geo only, mapped
    assert (rows["45.76.3.3"]["country"], rows["45.76.3.3"]["org_id"]) == ("SG", None)
    # one province is one statistics row: no "Hà Nội" next to "Thành phố Hà Nội"
    provinces = {
        r["key"]: r["ips"]
        for r in out["stats"].to_pylist()
        if r["period"] == "month" and r["dim"] == "province"
    }
    assert provinces == {
        "Tỉnh khác": 2,
        "Thành phố Hồ Chí Minh": 2,
        "Thành phố Hà Nội": 1,
        "": 1,  # the address in Singapore: a foreign region is no province
    }
