"""The intel store on SQLite and PostgreSQL: migrations, exact import counts, merging of sources,
warning lists, lookup by labels and CIDRs, expiry and false positives."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest_db import BACKENDS, database_url
from quet.errors import InputError
from quet.indicators.formats import read_path
from quet.indicators.model import Indicator, IndicatorType, IssueLog, make
from quet.store import connect
from quet.store.intel import (
    DEFAULT_TTL,
    add_sighting,
    expire,
    import_indicators,
    iter_indicators,
    lookup,
    parse_ttl,
    stats,
)
from quet.store.models import Base, import_runs, indicator_sources, indicators, sightings

DATA = Path(__file__).parent / "data"
T0 = datetime(2024, 1, 10, 12, 0, tzinfo=UTC)


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    with database_url(request.param, tmp_path) as url:
        eng = connect(url)
        yield eng
        eng.dispose()


def read(path: Path) -> list[Indicator]:
    issues = IssueLog()
    out = list(read_path(path, issues))
    assert issues.count == 0, issues.issues[:3]
    return out


def count(eng: sa.Engine, table: sa.Table) -> int:
    with eng.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def ind(kind: str, value: str, **fields: Any) -> Indicator:
    return make(kind, value, **fields)


def test_migrations_match_the_models(engine: sa.Engine) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        version = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one()
    assert diff == []
    from alembic.script import ScriptDirectory

    from quet.store.db import alembic_config

    assert version == ScriptDirectory.from_config(alembic_config()).get_current_head()
    connect(engine.url.render_as_string(hide_password=False)).dispose()  # second run: no-op


def test_default_store_lives_in_quet_home(quet_home: Path) -> None:
    eng = connect()
    assert eng.url.database == str(quet_home / "intel.sqlite")
    assert (quet_home / "intel.sqlite").is_file()
    with eng.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
    eng.dispose()


def test_import_csv_sample_exact(engine: sa.Engine) -> None:
    rows = read(DATA / "csv" / "indicators.csv")
    first = import_indicators(engine, rows, source="csv-sample")
    assert (first.read, first.added, first.updated, first.suppressed) == (9, 9, 0, 0)
    assert first.by_type == {
        "sha256": 2, "md5": 1, "domain": 2, "ipv4": 1, "cidr": 1, "url": 1, "filename": 1,
    }  # fmt: skip
    again = import_indicators(engine, rows, source="csv-sample")
    assert (again.read, again.added, again.updated) == (9, 0, 9)
    assert count(engine, indicators) == 9
    assert count(engine, indicator_sources) == 9
    with engine.connect() as conn:
        runs = conn.execute(sa.select(import_runs).order_by(import_runs.c.id)).all()
    assert [(r.read, r.added, r.updated) for r in runs] == [(9, 9, 0), (9, 0, 9)]
    assert all(r.finished is not None and r.finished.tzinfo is not None for r in runs)
    # One record, field by field, as the store gives it back.
    url = next(i for i in iter_indicators(engine, types=["url"]))
    assert url.value == "http://evil.example.com/gate.php?id=1"
    assert (url.name, url.confidence, url.source) == ("Gate, with comma", 80, "csv-sample")
    assert url.first_seen is not None and url.first_seen.tzinfo is not None
    sha = next(iter_indicators(engine, types=[IndicatorType.SHA256], min_confidence=100))
    assert sha.value == "71e7b604d18aefd839e51a39c88df8383bb4c071dc31f87f00a2b5df580d4495"
    assert (sha.family, sha.size, sha.tags) == ("EICAR-like", 544, ("clamav", "test"))


def test_import_loki_with_duplicates_across_batches(engine: sa.Engine) -> None:
    hashes = read(DATA / "loki" / "hash-iocs.first500.txt")
    c2 = read(DATA / "loki" / "c2-iocs.first500.txt")
    assert (len(hashes), len({i.key() for i in hashes})) == (469, 447)
    # Small batches: the same hash turns up in several batches of one import.
    done: list[int] = []
    s = import_indicators(engine, hashes, source="loki", batch=50, progress=done.append)
    assert (s.read, s.added, s.updated) == (469, 447, 0)
    assert done[-1] == 469 and done == sorted(done) and len(done) >= 9
    s = import_indicators(engine, hashes, source="loki", batch=50)
    assert (s.read, s.added, s.updated) == (469, 0, 447)
    s = import_indicators(engine, c2 + hashes[:10], source="loki-c2")
    assert (s.read, s.added, s.updated) == (484, 474, 10)
    assert count(engine, indicators) == 447 + 474
    assert count(engine, indicator_sources) == 447 + 474 + 10


def test_one_value_from_two_sources_is_one_row(engine: sa.Engine) -> None:
    early, late = T0 - timedelta(days=30), T0
    import_indicators(
        engine,
        [ind("domain", "evil.example", confidence=40, first_seen=early, last_seen=early)],
        source="feed-a",
    )
    s = import_indicators(
        engine,
        [
            ind(
                "domain", "evil.example", confidence=90, name="Emotet C2", family="Emotet",
                tags=("c2",), first_seen=late, last_seen=late,
            )
        ],
        source="feed-b",
    )  # fmt: skip
    assert (s.added, s.updated) == (0, 1)
    assert count(engine, indicators) == 1
    [got] = list(iter_indicators(engine))
    assert got.source == "feed-a,feed-b"
    assert (got.confidence, got.name, got.family, got.tags) == (90, "Emotet C2", "Emotet", ("c2",))
    assert (got.first_seen, got.last_seen) == (early, late)
    with engine.connect() as conn:
        srcs = conn.execute(sa.select(indicator_sources).order_by(indicator_sources.c.source)).all()
    assert [(r.source, r.confidence, r.last_seen) for r in srcs] == [
        ("feed-a", 40, early),
        ("feed-b", 90, late),
    ]
    # A third import: names already set stay, tags merge, lower confidence does not win.
    import_indicators(
        engine,
        [ind("domain", "evil.example", confidence=10, name="Other", tags=("botnet", "c2"))],
        source="feed-a",
    )
    [got] = list(iter_indicators(engine, source="feed-a"))
    assert (got.name, got.confidence, got.tags) == ("Emotet C2", 90, ("botnet", "c2"))


def test_duplicates_within_one_batch_merge(engine: sa.Engine) -> None:
    rows = [
        ind("ipv4", "198.51.100.7", confidence=20, tags=("a",)),
        ind("ipv4", "198.51.100.7", confidence=70, family="Mirai", tags=("b",)),
        ind("ipv4", "198.51.100.8"),
    ]
    s = import_indicators(engine, rows, source="x")
    assert (s.read, s.added, s.updated, s.by_type) == (3, 2, 0, {"ipv4": 3})
    got = {i.value: i for i in iter_indicators(engine)}
    assert (got["198.51.100.7"].confidence, got["198.51.100.7"].family) == (70, "Mirai")
    assert got["198.51.100.7"].tags == ("a", "b")


class _ListMatcher:
    """A stand-in with the WarninglistSet.match contract, used until that module exists."""

    def __init__(self, name: str, values: set[str]) -> None:
        self.name, self.values = name, values

    def match(self, ind: Indicator) -> str | None:
        return self.name if ind.value in self.values else None


def _warninglists(tmp_path: Path) -> Any:
    misp = tmp_path / "lists" / "test-resolvers"
    misp.mkdir(parents=True)
    (misp / "list.json").write_text(
        json.dumps(
            {
                "name": "Test public resolvers",
                "description": "two resolvers",
                "version": 1,
                "type": "string",
                "matching_attributes": ["ip-dst", "ip-src", "domain"],
                "list": ["8.8.8.8", "1.1.1.1"],
            }
        )
    )
    try:
        mod = importlib.import_module("quet.indicators.warninglists")
    except ImportError:
        return _ListMatcher("Test public resolvers", {"8.8.8.8", "1.1.1.1"})
    issues = IssueLog()
    lists = mod.WarninglistSet.load([misp / "list.json"], issues)
    assert issues.count == 0 and len(lists) == 1
    return lists


def test_warninglists_suppress_and_are_reported(engine: sa.Engine, tmp_path: Path) -> None:
    lists = _warninglists(tmp_path)
    rows = [ind("ipv4", "8.8.8.8"), ind("ipv4", "203.0.113.9"), ind("ipv4", "1.1.1.1")]
    s = import_indicators(engine, rows, source="feed", warninglists=lists)
    assert (s.read, s.added, s.suppressed) == (3, 1, 2)
    assert s.suppressed_examples == [
        ("ipv4", "8.8.8.8", "Test public resolvers"),
        ("ipv4", "1.1.1.1", "Test public resolvers"),
    ]
    assert [i.value for i in iter_indicators(engine)] == ["203.0.113.9"]
    with engine.connect() as conn:
        assert conn.execute(sa.select(import_runs.c.suppressed)).scalar_one() == 2


@pytest.fixture
def looked(engine: sa.Engine) -> sa.Engine:
    rows = [
        ind("domain", "evil.com", name="parent"),
        ind("domain", "higan.org"),
        ind("cidr", "10.20.0.0/16", family="Botnet"),
        ind("ipv4", "10.20.30.40"),
        ind("ipv6", "2001:db8::5"),
        ind("cidr", "2001:db8::/32"),
        ind("url", "http://Drop.Example.net/a.exe"),
        ind("domain", "drop.example.net"),
        ind("md5", "44d88612fea8a8f36de82e1278abb02f"),
    ]
    import_indicators(engine, rows, source="lk")
    return engine


def _found(eng: sa.Engine, value: str) -> list[tuple[str, str, str]]:
    return [(r.indicator.type.value, r.indicator.value, r.matched) for r in lookup(eng, value)]


def test_lookup_domains_by_labels(looked: sa.Engine) -> None:
    assert _found(looked, "a.b.evil.com") == [("domain", "evil.com", "parent-domain")]
    assert _found(looked, "EVIL.com.") == [("domain", "evil.com", "exact")]
    assert _found(looked, "michigan.org") == []
    assert _found(looked, "notevil.com") == []
    assert _found(looked, "www.higan.org") == [("domain", "higan.org", "parent-domain")]


def test_lookup_ips_in_cidrs(looked: sa.Engine) -> None:
    assert _found(looked, "10.20.30.40") == [
        ("ipv4", "10.20.30.40", "exact"),
        ("cidr", "10.20.0.0/16", "cidr"),
    ]
    assert _found(looked, "10.20.255.1") == [("cidr", "10.20.0.0/16", "cidr")]
    assert _found(looked, "10.21.0.1") == []
    assert _found(looked, "2001:db8::5") == [
        ("ipv6", "2001:db8::5", "exact"),
        ("cidr", "2001:db8::/32", "cidr"),
    ]
    assert _found(looked, "10.20.1.0/24") == [("cidr", "10.20.0.0/16", "cidr")]


def test_lookup_urls_and_hashes(looked: sa.Engine) -> None:
    assert _found(looked, "http://drop.example.net:80/a.exe#x") == [
        ("url", "http://drop.example.net/a.exe", "exact"),
        ("domain", "drop.example.net", "url-host"),
    ]
    assert _found(looked, "https://x.evil.com/login") == [("domain", "evil.com", "parent-domain")]
    assert _found(looked, "http://10.20.3.4/p") == [("cidr", "10.20.0.0/16", "cidr")]
    assert _found(looked, "44D88612FEA8A8F36DE82E1278ABB02F") == [
        ("md5", "44d88612fea8a8f36de82e1278abb02f", "exact")
    ]
    [rec] = lookup(looked, "evil.com")
    assert [s.source for s in rec.sources] == ["lk"] and rec.indicator.source == "lk"
    assert rec.to_dict()["sources"][0]["source"] == "lk"
    with pytest.raises(InputError):
        lookup(looked, "not a value at all")


def test_false_positive_sighting_hides_but_keeps(engine: sa.Engine) -> None:
    rows = [ind("domain", "good.example"), ind("domain", "bad.example")]
    import_indicators(engine, rows, source="f")
    sid = add_sighting(engine, "good.example", "false_positive", where="pc-12", note="CDN")
    add_sighting(engine, "bad.example", "seen", where="pc-13")
    assert sid > 0
    assert [i.value for i in iter_indicators(engine)] == ["bad.example"]
    assert lookup(engine, "good.example") == []
    [rec] = lookup(engine, "good.example", include_inactive=True)
    assert rec.status == "false_positive"
    assert [(s.kind, s.where, s.note) for s in rec.sightings] == [
        ("false_positive", "pc-12", "CDN")
    ]
    # A feed listing it again does not undo the analyst's decision.
    s = import_indicators(engine, rows, source="f")
    assert (s.added, s.updated) == (0, 2)
    assert [i.value for i in iter_indicators(engine)] == ["bad.example"]
    assert len(list(iter_indicators(engine, active_only=False))) == 2
    assert count(engine, sightings) == 2
    with pytest.raises(InputError, match="not in the intel store"):
        add_sighting(engine, "unknown.example", "seen")
    with pytest.raises(InputError):
        add_sighting(engine, "bad.example", "maybe")


def test_expiry_explicit_and_by_ttl(engine: sa.Engine) -> None:
    now = datetime.now(UTC)
    old = now - timedelta(days=120)
    rows = [
        ind("ipv4", "192.0.2.1", first_seen=old, last_seen=old),  # TTL 90 days: expires
        ind("ipv4", "192.0.2.2", last_seen=now - timedelta(days=10)),  # recent: stays
        ind("domain", "soon.example", expires=now - timedelta(hours=1)),  # own expiry passed
        ind("domain", "later.example", expires=now + timedelta(days=3)),  # expiring in 7 days
        ind("sha1", "3395856ce81f2b7382dee72602f798b642f14140", last_seen=old),  # never expires
    ]
    import_indicators(engine, rows, source="t")
    # An explicit past expiry hides it even before `expire` runs.
    assert "soon.example" not in {i.value for i in iter_indicators(engine)}
    assert stats(engine)["expiring_7d"] == 1
    assert expire(engine, now=now) == 2
    assert expire(engine, now=now) == 0
    assert {i.value for i in iter_indicators(engine)} == {
        "192.0.2.2", "later.example", "3395856ce81f2b7382dee72602f798b642f14140",
    }  # fmt: skip
    assert expire(engine, now=now, default_ttl={"ipv4": timedelta(days=5)}) == 1
    assert stats(engine)["by_status"] == {"expired": 3, "active": 2}
    # Listed again: it comes back.
    import_indicators(engine, [ind("ipv4", "192.0.2.1")], source="t")
    assert "192.0.2.1" in {i.value for i in iter_indicators(engine)}


def test_parse_ttl() -> None:
    assert parse_ttl("ipv4=30d") == ("ipv4", timedelta(days=30))
    assert parse_ttl("URL = 12h") == ("url", timedelta(hours=12))
    assert parse_ttl("domain=never") == ("domain", None)
    assert parse_ttl("cidr=7") == ("cidr", timedelta(days=7))
    for bad in ("ipv4", "host=3d", "ipv4=3w", "ipv4=-1d"):
        with pytest.raises(InputError):
            parse_ttl(bad)
    assert DEFAULT_TTL["ipv4"] == timedelta(days=90) and "sha256" not in DEFAULT_TTL


def test_iter_filters_and_stats(engine: sa.Engine) -> None:
    import_indicators(
        engine,
        [
            ind("ipv4", "203.0.113.1", family="Mirai", confidence=90, campaign="c1"),
            ind("ipv4", "203.0.113.2", family="mirai", confidence=30),
            ind("domain", "x.example", family="Emotet"),
        ],
        source="a",
    )
    import_indicators(
        engine, [ind("domain", "x.example"), ind("url", "http://u.example/")], source="b"
    )
    values = lambda **kw: sorted(i.value for i in iter_indicators(engine, **kw))  # noqa: E731
    assert values(types=["ipv4"]) == ["203.0.113.1", "203.0.113.2"]
    assert values(source="b") == ["http://u.example/", "x.example"]
    assert values(family="MIRAI") == ["203.0.113.1", "203.0.113.2"]
    assert values(min_confidence=60) == ["203.0.113.1"]
    assert values(campaign="c1") == ["203.0.113.1"]
    got = stats(engine)
    assert got["total"] == 4
    assert got["by_type"] == {"ipv4": 2, "domain": 1, "url": 1}
    assert got["by_status"] == {"active": 4}
    assert got["by_source"] == {"a": 3, "b": 2}
    assert got["top_families"] == {"Emotet": 1, "Mirai": 1, "mirai": 1}
    assert got["expiring_7d"] == 0


def test_timestamps_are_utc_aware(engine: sa.Engine) -> None:
    from zoneinfo import ZoneInfo

    hanoi = datetime(2024, 5, 1, 7, 0, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))
    import_indicators(engine, [ind("domain", "tz.example", first_seen=hanoi)], source="tz")
    [got] = list(iter_indicators(engine))
    assert got.first_seen == datetime(2024, 5, 1, 0, 0, tzinfo=UTC)
    assert got.first_seen is not None and got.first_seen.utcoffset() == timedelta(0)


@pytest.mark.slow
def test_import_maltrail_trails(engine: sa.Engine) -> None:
    folder = DATA / "maltrail" / "malware"
    if not folder.is_dir():
        pytest.skip("maltrail samples not present yet")
    rows = read(folder)
    distinct = {i.key() for i in rows}
    assert len(rows) > 10_000 and len(distinct) < len(rows)  # trails repeat across families
    s = import_indicators(engine, rows, source="maltrail", batch=5000)
    assert (s.read, s.added, s.updated) == (len(rows), len(distinct), 0)
    s = import_indicators(engine, rows, source="maltrail", batch=5000)
    assert (s.read, s.added, s.updated) == (len(rows), 0, len(distinct))
    assert count(engine, indicators) == len(distinct)
    assert sum(stats(engine)["by_type"].values()) == len(distinct)


_values = st.one_of(
    st.integers(0, 40).map(lambda n: ("ipv4", f"192.0.2.{n}")),
    st.sampled_from(["a.example", "b.example", "c.a.example"]).map(lambda v: ("domain", v)),
    st.integers(0, 5).map(lambda n: ("md5", f"{n:032x}")),
)


@settings(max_examples=25, deadline=None)
@given(
    first=st.lists(st.tuples(_values, st.integers(0, 100)), max_size=60),
    second=st.lists(st.tuples(_values, st.integers(0, 100)), max_size=60),
    batch=st.integers(1, 7),
)
def test_counts_are_exact_for_any_input(
    first: list[tuple[tuple[str, str], int]],
    second: list[tuple[tuple[str, str], int]],
    batch: int,
) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        eng = connect(f"sqlite:///{tmp}/p.sqlite")
        try:
            rows1 = [ind(k, v, confidence=c) for (k, v), c in first]
            rows2 = [ind(k, v, confidence=c) for (k, v), c in second]
            keys1 = {i.key() for i in rows1}
            keys2 = {i.key() for i in rows2}
            s1 = import_indicators(eng, rows1, source="one", batch=batch)
            assert (s1.read, s1.added, s1.updated) == (len(rows1), len(keys1), 0)
            s2 = import_indicators(eng, rows2, source="two", batch=batch)
            assert (s2.added, s2.updated) == (len(keys2 - keys1), len(keys2 & keys1))
            got = {(i.type.value, i.value): i for i in iter_indicators(eng)}
            assert set(got) == keys1 | keys2
            best: dict[tuple[str, str], int] = {}
            for i in rows1 + rows2:
                best[i.key()] = max(best.get(i.key(), 0), i.confidence)
            assert {k: g.confidence for k, g in got.items()} == best
            assert count(eng, indicator_sources) == len(keys1) + len(keys2)
        finally:
            eng.dispose()
