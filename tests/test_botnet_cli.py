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
    assert (gamarue.asn, gamarue.isp, gamarue.province, gamarue.country) == (
        64500,
        "VNPT Corp",
        "Hà Nội",
        "VN",
    )
    assert codes[ips[("203.0.113.130", "qakbot")].org_id] == "HN-STTTT-TT"  # nested /25
    v6 = ips[("2001:db8:1::25", "mirai")]
    assert codes[v6.org_id] == "HN-BVTN" and v6.asn == 64501
    bank = ips[("192.0.2.77", "emotet")]
    assert codes[bank.org_id] == "HCM-NHX" and bank.province == "Ho Chi Minh"
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
    assert "Delivery failed" in res.stderr and "HN-BVTN" in res.stderr


def test_bad_input_is_one_clear_error(db_url: str, tmp_path: Path) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("nothing here\n")
    res = bn(db_url, "import", str(other))
    assert res.exit_code != 0 and "unknown feed format" in str(res.exception)
    res = bn(db_url, "import", str(DATA / "plain.csv"), "--engine", "hadoop")
    assert res.exit_code != 0 and "unknown engine" in str(res.exception)


def test_help_teaches() -> None:
    res = CliRunner().invoke(botnet_cli.app, ["--help"])
    assert res.exit_code == 0 and "quet botnet import" in res.stdout
    res = CliRunner().invoke(botnet_cli.app, ["import", "--help"])
    assert "--asn-db" in res.stdout and "--geo-db" in res.stdout and "Shadowserver" in res.stdout
