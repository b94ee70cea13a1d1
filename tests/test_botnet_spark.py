"""The botnet SQL on Spark (local mode) against DuckDB: the same statements on the same small
feed (stored events read from the Parquet store, new events, registered ranges and MaxMind
databases) give the same rows, row for row. One SparkSession for the module: a JVM is slow to
start."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from quet.botnet import duck, sql
from quet.botnet.attribute import periods_of
from quet.botnet.eventstore import EventStore
from quet.botnet.feeds import read_feed
from quet.botnet.geo import mmdb_ranges, org_ranges
from test_botnet_sql import orgs, write_asn_db, write_city_db

DATA = Path(__file__).parent / "data" / "botnet"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def spark() -> Iterator[object]:
    if shutil.which("java") is None:
        pytest.skip("Java is needed for Spark")
    from quet.botnet import spark as runner

    session = runner.session()
    session.conf.set("spark.sql.shuffle.partitions", "1")  # a small feed: fewer, cheaper tasks
    yield session
    runner.stop()


def with_src(table: pa.Table, src: int) -> pa.Table:
    return table.append_column("src", pa.array([src] * table.num_rows, pa.int64()))


def inputs(tmp_path: Path) -> duck.Inputs:
    store = EventStore(tmp_path / "events")
    con = duck.connect()
    # Yesterday's feed is already stored; today's three files are new.
    old = with_src(read_feed(DATA / "event4_sinkhole.csv").events, 0)
    con.register("old", old)
    store.stage(con, store.new_events(con, "old")).publish()
    new = pa.concat_tables(
        [
            with_src(read_feed(DATA / name).events, i)
            for i, name in enumerate(
                [
                    "event4_sinkhole_http.csv",
                    "intelmq.jsonl",
                    "intelmq-array.json",
                    "plain.csv",
                    "plain-noheader.csv",
                ]
            )
        ]
    )
    con.register("new", new)
    fresh = store.new_events(con, "new")
    periods, first, last = periods_of(pc.unique(fresh.column("day")).to_pylist())
    assert first is not None and last is not None
    ranges, _ = org_ranges(
        [
            (1, "203.0.113.0/24"),
            (2, "203.0.113.128/25"),
            (3, "198.51.100.0/26"),
            (3, "2001:db8:1::/48"),
            (4, "192.0.2.0/25"),
            (5, "0.0.0.0/0"),
        ]
    )
    asn = mmdb_ranges(write_asn_db(tmp_path / "asn.mmdb"), "asn")
    city = mmdb_ranges(write_city_db(tmp_path / "city.mmdb"), "geo")
    org_rows = orgs(
        (1, "Sở TT&TT", "government", "Hà Nội"),
        (2, "Trung tâm", "government", "Hà Nội"),
        (3, "Bệnh viện", "health", "Hà Nội"),
        (4, "Ngân hàng", "finance", "Hồ Chí Minh"),
        (5, "Mọi nơi", "", ""),
    )
    files = store.files(first, last)
    assert files  # the stored day is read back
    return duck.Inputs(files, fresh, pa.concat_tables([ranges, asn, city]), org_rows, periods)


def sorted_rows(table: pa.Table) -> list[dict[str, object]]:
    keys = [(name, "ascending") for name in table.column_names]
    rows: list[dict[str, object]] = table.sort_by(keys).to_pylist()
    return rows


def test_spark_equals_duckdb(spark: object, tmp_path: Path) -> None:
    from quet.botnet import spark as runner

    data = inputs(tmp_path)
    by_duck = duck.run(data)
    by_spark = runner.run(data, spark)
    for name in sql.OUTPUTS:
        assert by_spark[name].schema == by_duck[name].schema
        assert by_duck[name].num_rows > 0
        assert sorted_rows(by_spark[name]) == sorted_rows(by_duck[name]), name
    stats = by_duck["stats"].to_pylist()
    # the stored day counts in the week and the month, not as new rows
    assert {r["start"].isoformat() for r in stats if r["period"] == "day"} == {
        "2026-11-24",
        "2026-11-25",
    }
    month = {(r["dim"], r["key"]): r["ips"] for r in stats if r["period"] == "month"}
    assert month[("all", "")] == 14
    assert month[("org", "5")] >= 1  # 0.0.0.0/0 catches the addresses nobody else registered


def test_spark_with_nothing_stored(spark: object, tmp_path: Path) -> None:
    from quet.botnet import spark as runner

    data = inputs(tmp_path)
    data.stored_files = []
    data.ranges = data.ranges.slice(0, 0)
    a, b = duck.run(data), runner.run(data, spark)
    for name in sql.OUTPUTS:
        assert sorted_rows(a[name]) == sorted_rows(b[name]), name
    assert all(r["org_id"] is None for r in a["ip_rows"].to_pylist())


def test_cli_import_with_spark_engine(spark: object, tmp_path: Path) -> None:
    """`quet botnet import --engine spark` stores the same rows as the DuckDB engine."""
    import sqlalchemy as sa
    from typer.testing import CliRunner

    from quet.cli import botnet as botnet_cli
    from quet.cli import org as org_cli
    from quet.server.db import Database
    from quet.store.models.botnet import BotnetIp, BotnetStat

    feeds = [str(DATA / f) for f in ("event4_sinkhole.csv", "intelmq.jsonl")]
    found = {}
    for engine in ("duckdb", "spark"):
        url = f"sqlite:///{tmp_path / engine}.sqlite"
        home = tmp_path / f"home-{engine}"
        env = {"QUET_HOME": str(home)}
        runner = CliRunner(env=env)
        assert runner.invoke(org_cli.app, ["provinces", "--database-url", url]).exit_code == 0
        orgs_csv = str(DATA / "orgs.csv")
        assert (
            runner.invoke(org_cli.app, ["import", orgs_csv, "--database-url", url]).exit_code == 0
        )
        res = runner.invoke(
            botnet_cli.app, ["import", *feeds, "--engine", engine, "--database-url", url]
        )
        assert res.exit_code == 0, res.output
        db = Database(url)
        with db.sessions() as session:
            ips = session.execute(
                sa.select(
                    BotnetIp.ip, BotnetIp.family, BotnetIp.days_seen, BotnetIp.province
                ).order_by(BotnetIp.ip, BotnetIp.family)
            ).all()
            stats = session.execute(
                sa.select(
                    BotnetStat.period,
                    BotnetStat.start,
                    BotnetStat.dim,
                    BotnetStat.key,
                    BotnetStat.ips,
                ).order_by(BotnetStat.period, BotnetStat.start, BotnetStat.dim, BotnetStat.key)
            ).all()
        db.dispose()
        found[engine] = ([tuple(r) for r in ips], [tuple(r) for r in stats])
    assert found["duckdb"] == found["spark"]
    assert len(found["spark"][0]) == 8 and found["spark"][1]
