"""`quet botnet` end to end on SQLite and PostgreSQL: provinces and organisations (with ranges and
sectors) through `quet org`, the sample feeds imported with MaxMind test databases, the rows the
server store holds, re-import adding nothing, the figures, the lookup and the help."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from conftest_db import BACKENDS, database_url
from quet.cli import botnet as botnet_cli
from quet.cli import org as org_cli
from quet.server.db import Database
from quet.store.models import Organisation
from quet.store.models.botnet import BotnetImport, BotnetIp, BotnetStat
from test_botnet_sql import write_asn_db, write_city_db

DATA = Path(__file__).parent / "data" / "botnet"
FEEDS = ["event4_sinkhole.csv", "event4_sinkhole_http.csv", "intelmq.jsonl", "plain.csv"]


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as url:
        runner = CliRunner()
        assert runner.invoke(org_cli.app, ["provinces", "--database-url", url]).exit_code == 0
        res = runner.invoke(org_cli.app, ["import", str(DATA / "orgs.csv"), "--database-url", url])
        assert res.exit_code == 0 and "Added: 4" in res.stdout, res.output
        yield url


def bn(db_url: str, *args: str) -> Result:
    return CliRunner().invoke(botnet_cli.app, [*args, "--database-url", db_url])


def rows(db_url: str, stmt: sa.Select) -> list[sa.Row]:  # type: ignore[type-arg]
    db = Database(db_url)
    try:
        with db.sessions() as session:
            return list(session.execute(stmt).all())
    finally:
        db.dispose()


def test_import_attribute_stats_lookup(db_url: str, tmp_path: Path) -> None:
    asn = write_asn_db(tmp_path / "asn.mmdb")
    city = write_city_db(tmp_path / "city.mmdb")
    files = [str(DATA / f) for f in FEEDS]
    res = bn(db_url, "import", *files, "--asn-db", str(asn), "--geo-db", str(city), "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    by_name = {Path(f["file"]).name: f for f in report["files"]}
    sink = by_name["event4_sinkhole.csv"]
    assert (sink["rows"], sink["bad_rows"], sink["duplicates"], sink["new_events"]) == (12, 3, 1, 8)
    assert (sink["attributed"], sink["unattributed"]) == (7, 1)  # 45.76.1.2 is nobody's
    assert sink["first_day"] == "2026-11-23" and sink["last_day"] == "2026-11-24"
    assert by_name["intelmq.jsonl"]["bad_rows"] == 2

    codes = dict(rows(db_url, sa.select(Organisation.id, Organisation.code)))
    cols = [
        BotnetIp.id,
        BotnetIp.ip,
        BotnetIp.family,
        BotnetIp.org_id,
        BotnetIp.first_seen,
        BotnetIp.last_seen,
        BotnetIp.days_seen,
        BotnetIp.asn,
        BotnetIp.isp,
        BotnetIp.province,
        BotnetIp.country,
    ]
    ips = {(r.ip, r.family): r for r in rows(db_url, sa.select(*cols))}
    assert len(ips) == 12
    gamarue = ips[("203.0.113.10", "gamarue")]
    assert codes[gamarue.org_id] == "HN-STTTT"
    assert (gamarue.first_seen, gamarue.last_seen, gamarue.days_seen) == (
        date(2026, 11, 23),
        date(2026, 11, 25),
        3,
    )
    # the owner's province (its ancestor VN-01), not the geo database's spelling
    assert (gamarue.asn, gamarue.isp, gamarue.province, gamarue.country) == (
        64500,
        "VNPT Corp",
        "Thành phố Hà Nội",
        "VN",
    )
    assert codes[ips[("203.0.113.130", "qakbot")].org_id] == "HN-STTTT-TT"  # nested /25
    v6 = ips[("2001:db8:1::25", "mirai")]
    assert codes[v6.org_id] == "HN-BVTN" and v6.asn == 64501
    bank = ips[("192.0.2.77", "emotet")]
    assert codes[bank.org_id] == "HCM-NHX" and bank.province == "Thành phố Hồ Chí Minh"
    assert codes[ips[("192.0.2.90", "conficker")].org_id] == "HCM-NHX"  # ::ffff:192.0.2.90
    assert ips[("45.76.1.2", "qsnatch")].org_id is None

    stat_cols = [
        BotnetStat.period,
        BotnetStat.start,
        BotnetStat.dim,
        BotnetStat.key,
        BotnetStat.ips,
    ]
    stat = {tuple(r[:4]): r[4] for r in rows(db_url, sa.select(*stat_cols))}
    assert stat[("month", date(2026, 11, 1), "all", "")] == 11  # distinct addresses in November
    assert stat[("day", date(2026, 11, 23), "all", "")] == 5
    health = stat[("month", date(2026, 11, 1), "sector", "health")]
    assert health == 3  # 198.51.100.5, .6 and 2001:db8:1::25 (plain.csv's .7 is not in it)
    assert stat[("month", date(2026, 11, 1), "org", str(gamarue.org_id))] == 1
    # the centre's unit inherits the department's sector
    assert stat[("month", date(2026, 11, 1), "sector", "government")] == 3
    assert len(rows(db_url, sa.select(BotnetImport.id))) == 4
    # one row per province: no English spellings next to the official names, and a foreign
    # region is no province (its addresses count under "unknown")
    month_provinces = {
        k[3] for k in stat if k[0] == "month" and k[1] == date(2026, 11, 1) and k[2] == "province"
    }
    assert month_provinces == {"Thành phố Hà Nội", "Thành phố Hồ Chí Minh", ""}

    again = bn(db_url, "import", *files, "--asn-db", str(asn), "--geo-db", str(city))
    assert again.exit_code == 0, again.output
    assert "0 (IP, family) rows updated" in again.stdout
    third = bn(db_url, "import", str(DATA / "plain.csv"), "--json")
    plain = json.loads(third.stdout)["files"][0]
    assert (plain["new_events"], plain["duplicates"], plain["bad_rows"]) == (0, 3, 1)
    assert len(rows(db_url, sa.select(BotnetImport.id))) == 9
    assert rows(db_url, sa.select(BotnetIp.days_seen).where(BotnetIp.id == gamarue.id)) == [(3,)]
    assert len(rows(db_url, sa.select(BotnetImport.id))) == 9

    figures = bn(db_url, "stats", "--json", "--month", "2026-11")
    assert figures.exit_code == 0, figures.output
    data = json.loads(figures.stdout)
    assert data["ips"] == 11 and data["latest_day"] == "2026-11-25"
    text = bn(db_url, "stats")
    assert text.exit_code == 0 and "Unique botnet IPs this month: 11" in text.stdout
    assert "gamarue" in text.stdout
    hn = bn(db_url, "stats", "--org", "HN-STTTT", "--json")
    assert hn.exit_code == 0 and json.loads(hn.stdout)["ips"] == 3
    assert bn(db_url, "stats", "--org", "NOPE").exit_code != 0

    listed = bn(db_url, "lookup", "198.51.100.6")
    assert listed.exit_code == 1 and "IS in a botnet on 2026-11-25: mozi" in listed.stdout
    clean = bn(db_url, "lookup", "198.51.100.5", "--json")  # listed on the 24th, not the 25th
    assert clean.exit_code == 0 and json.loads(clean.stdout)["listed"] is False


def test_notify_reports_failed_deliveries(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert bn(db_url, "import", str(DATA / "intelmq.jsonl")).exit_code == 0
    # A port nobody listens on: the digests fail and say so (the server's own tests cover real
    # deliveries through aiosmtpd).
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("QUET_SMTP_PORT", str(port))
    res = bn(db_url, "notify", "--day", "2026-11-25")
    assert res.exit_code == 1, res.output
    assert "Sent the digest of 2026-11-25 to 0" in res.stdout
    assert "Delivery failed: HN-BVTN — e-mail" in res.stderr, res.stderr
    assert "{" not in res.stderr and "'ok'" not in res.stderr  # a line, not a Python dict


def test_bad_input_is_one_clear_error(db_url: str, tmp_path: Path) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("nothing here\n")
    res = bn(db_url, "import", str(other))
    assert res.exit_code == 1 and "unknown feed format" in res.stderr, res.output
    res = bn(db_url, "import", str(DATA / "plain.csv"), "--engine", "hadoop")
    assert res.exit_code != 0 and "unknown engine" in str(res.exception)


def test_help_teaches() -> None:
    res = CliRunner().invoke(botnet_cli.app, ["--help"])
    assert res.exit_code == 0 and "quet botnet import" in res.stdout
    res = CliRunner().invoke(botnet_cli.app, ["import", "--help"])
    assert "--asn-db" in res.stdout and "--geo-db" in res.stdout and "Shadowserver" in res.stdout


def _stats_of(db_url: str, period: str, start: date, dim: str) -> dict[str, int]:
    got = rows(
        db_url,
        sa.select(BotnetStat.key, BotnetStat.ips).where(
            BotnetStat.period == period, BotnetStat.start == start, BotnetStat.dim == dim
        ),
    )
    return {k: n for k, n in got}


def test_later_import_without_maxmind_keeps_isp_and_province(db_url: str, tmp_path: Path) -> None:
    asn = write_asn_db(tmp_path / "asn.mmdb")
    city = write_city_db(tmp_path / "city.mmdb")
    first = bn(db_url, "import", str(DATA / "event4_sinkhole.csv"), "--asn-db", str(asn),
               "--geo-db", str(city))  # fmt: skip
    assert first.exit_code == 0, first.output
    assert "MaxMind data (asn): given:" in first.stdout
    day = date(2026, 11, 24)
    before_asn = _stats_of(db_url, "day", day, "asn")
    before_prov = _stats_of(db_url, "day", day, "province")
    assert "64500" in before_asn and "Thành phố Hà Nội" in before_prov
    # a late feed for the same day, imported without --asn-db/--geo-db: the day is recounted
    late = tmp_path / "late.csv"
    late.write_text("ip,timestamp,family\n198.51.100.200,2026-11-24T08:00:00Z,mirai\n")
    res = bn(db_url, "import", str(late))
    assert res.exit_code == 0, res.output
    assert "MaxMind data (asn): saved:" in res.stdout and "MaxMind data (geo): saved:" in res.stdout
    after_asn = _stats_of(db_url, "day", day, "asn")
    after_prov = _stats_of(db_url, "day", day, "province")
    for key, n in before_asn.items():
        if key:
            assert after_asn.get(key, 0) >= n, (key, before_asn, after_asn)
    assert after_asn.get("64501") == before_asn.get("64501", 0) + 1  # the new address's ASN
    assert after_prov["Thành phố Hà Nội"] == before_prov["Thành phố Hà Nội"] + 1
    assert after_prov.get("", 0) == before_prov.get("", 0)  # nothing fell into "unknown"
    new = rows(db_url, sa.select(BotnetIp.asn, BotnetIp.province).where(
        BotnetIp.ip == "198.51.100.200"))  # fmt: skip
    assert new == [(64501, "Thành phố Hà Nội")]  # unregistered: the geo name, mapped


def test_unreadable_files_do_not_lose_the_others(db_url: str, tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    folder = tmp_path / "feeds"
    folder.mkdir()
    broken = tmp_path / "broken.csv"
    broken.write_bytes(
        b"ip,timestamp,family\n"
        b"198.51.100.5,2026-11-24T01:00:00Z,mirai\n"
        b"198.51.100.\xff6,2026-11-24T01:00:00Z,mirai\n"
        b"198.51.100.6,2026-11-24T02:00:00Z,mozi\n"
    )
    res = bn(db_url, "import", str(DATA / "plain.csv"), str(empty), str(folder),
             str(tmp_path / "missing.csv"), str(broken), "--json")  # fmt: skip
    assert res.exit_code == 1, res.output
    report = json.loads(res.stdout)
    failed = {Path(f).name: why for f, why in report["failed"]}
    assert failed == {
        "empty.csv": "empty file",
        "feeds": "is a folder, not a feed file (give the files in it)",
        "missing.csv": "no such file",
    }
    by_name = {Path(f["file"]).name: f for f in report["files"]}
    assert by_name["plain.csv"]["new_events"] == 3  # the good file is imported
    bad = by_name["broken.csv"]
    assert (bad["rows"], bad["bad_rows"], bad["new_events"]) == (3, 1, 2)
    assert bad["errors"] == [f"{broken}:3: invalid UTF-8 bytes"]
    assert len(rows(db_url, sa.select(BotnetImport.id))) == 2
    text = bn(db_url, "import", str(empty), str(DATA / "intelmq.jsonl"))
    assert text.exit_code == 1
    assert f"Could not read {empty}: empty file" in text.stderr
    assert "1 file(s) could not be imported (the others were)" in text.stderr


def test_stats_without_data_periods_labels(db_url: str, tmp_path: Path) -> None:
    asn = write_asn_db(tmp_path / "asn.mmdb")
    files = [str(DATA / f) for f in FEEDS]
    assert bn(db_url, "import", *files, "--asn-db", str(asn)).exit_code == 0
    # a month without feed data is "no data", not 0
    old = bn(db_url, "stats", "--month", "2019-01", "--json")
    data = json.loads(old.stdout)
    assert (data["ips"], data["last_month"], data["last_year"]) == (None, None, None)
    assert data["has_data"] is False and data["change_month_pct"] is None
    text = bn(db_url, "stats", "--month", "2019-01")
    assert "Unique botnet IPs this month: no data" in text.stdout
    assert "vs last month (no data): —" in text.stdout and "(0)" not in text.stdout
    nov = json.loads(bn(db_url, "stats", "--month", "2026-11", "--json").stdout)
    assert nov["ips"] == 11 and nov["last_month"] is None and nov["change_month_pct"] is None
    # organisations by code, readable labels for unknown buckets
    orgs_rows = {r["key"]: r for r in nov["top_orgs"]}
    assert {"HN-STTTT", "HN-BVTN", "HCM-NHX", ""} <= set(orgs_rows)
    assert orgs_rows[""]["label"] == "Unattributed" and orgs_rows["HN-BVTN"]["id"].isdigit()
    assert all(r["label"] for key in ("top_provinces", "top_sectors") for r in nov[key])
    # sectors translated in the Vietnamese table
    vi = CliRunner().invoke(
        botnet_cli.app, ["stats", "--month", "2026-11", "--database-url", db_url],
        env={"QUET_LANG": "vi"},
    )  # fmt: skip
    assert vi.exit_code == 0, vi.output
    assert "Y tế" in vi.stdout and "Cơ quan nhà nước" in vi.stdout
    assert "health" not in vi.stdout and "government" not in vi.stdout
    # weeks and days
    week = json.loads(
        bn(db_url, "stats", "--period", "week", "--day", "2026-11-25", "--json").stdout
    )
    assert (week["period"], week["start"], week["end"]) == ("week", "2026-11-23", "2026-11-29")
    week_all = _stats_of(db_url, "week", date(2026, 11, 23), "all")[""]
    assert week["ips"] == week_all and week["last_month"] is None
    day = json.loads(bn(db_url, "stats", "--period", "day", "--day", "2026-11-24", "--json").stdout)
    assert day["ips"] == _stats_of(db_url, "day", date(2026, 11, 24), "all")[""]
    assert day["last_month"] == _stats_of(db_url, "day", date(2026, 11, 23), "all")[""]
    assert day["change_month_pct"] is not None
    wtext = bn(db_url, "stats", "--period", "week", "--day", "2026-11-25")
    assert "Week 2026-11-23 – 2026-11-29" in wtext.stdout
    assert f"Unique botnet IPs that week: {week_all}" in wtext.stdout
    assert bn(db_url, "stats", "--period", "year").exit_code != 0
