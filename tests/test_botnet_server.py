"""Botnet IPs on the server (issue 6): storing the engine's results, the figures, scope, the public
lookup with its rate limit, and the daily digests over a real SMTP server and a real webhook
receiver, on SQLite and PostgreSQL."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from quet.errors import InputError
from quet.server.notify import SIGNATURE_HEADER, verify_webhook
from quet.server.services import botnet, orgs
from quet.store.models import AuditEntry, Organisation
from quet.store.models.botnet import BotnetDigest, BotnetImport, BotnetIp, BotnetStat
from server_fixtures import login, make_org, make_user

DAY = date(2026, 11, 20)


def ip_rows(*rows: dict[str, Any]) -> pa.Table:
    """Engine-shaped rows: defaults for what a test does not care about."""
    full = []
    for r in rows:
        full.append(
            {
                "ip": r["ip"],
                "family": r.get("family", "mirai"),
                "first_day": r.get("first_day", r.get("day", DAY)),
                "last_day": r.get("last_day", r.get("day", DAY)),
                "days": r.get("days", 1),
                "org_id": r.get("org_id"),
                "asn": r.get("asn"),
                "isp": r.get("isp", ""),
                "province": r.get("province", ""),
                "country": r.get("country", "VN"),
            }
        )
    schema = pa.schema(
        [
            ("ip", pa.string()),
            ("family", pa.string()),
            ("first_day", pa.date32()),
            ("last_day", pa.date32()),
            ("days", pa.int32()),
            ("org_id", pa.int64()),
            ("asn", pa.int64()),
            ("isp", pa.string()),
            ("province", pa.string()),
            ("country", pa.string()),
        ]
    )
    return pa.Table.from_pylist(full, schema=schema)


def stat_rows(*rows: tuple[str, date, str, str, str, int]) -> pa.Table:
    cols: list[tuple[Any, ...]] = list(zip(*rows, strict=True)) if rows else [()] * 6
    return pa.table(
        {
            "period": pa.array(cols[0], pa.string()),
            "start": pa.array(cols[1], pa.date32()),
            "dim": pa.array(cols[2], pa.string()),
            "key": pa.array(cols[3], pa.string()),
            "label": pa.array(cols[4], pa.string()),
            "ips": pa.array(cols[5], pa.int64()),
        }
    )


def org(session: Session, code: str) -> Organisation:
    found = orgs.by_code(session, code)
    assert found is not None
    return found


@pytest.fixture
def tree(db_session: Session) -> dict[str, Organisation]:
    """VN ─ HN (province) ─ SOYT (health department), and DN (another province)."""
    make_org(db_session, "HN", kind="province", name="Hà Nội", ip_ranges=("10.1.0.0/16",))
    make_org(db_session, "SOYT", "HN", "department", name="Sở Y tế", ip_ranges=("10.1.2.0/24",))
    make_org(db_session, "DN", kind="province", name="Đà Nẵng", ip_ranges=("10.2.0.0/16",))
    org(db_session, "SOYT").sector = "health"
    org(db_session, "HN").sector = "government"
    db_session.commit()
    return {c: org(db_session, c) for c in ("VN", "HN", "SOYT", "DN")}


# --- apply_ips ------------------------------------------------------------------------------------


def test_apply_ips_inserts_then_merges(db_session: Session, tree: dict[str, Organisation]) -> None:
    hn, soyt = tree["HN"].id, tree["SOYT"].id
    n = botnet.apply_ips(
        db_session,
        ip_rows(
            {"ip": "10.1.0.5", "family": "Mirai", "org_id": hn, "asn": 7552, "isp": "Viettel"},
            {"ip": "10.1.2.9", "family": "avalanche", "org_id": soyt, "days": 2,
             "first_day": DAY - timedelta(days=1)},
            {"ip": "2001:db8::1", "family": "", "org_id": None},
        ),
    )  # fmt: skip
    assert n == 3
    db_session.commit()
    rows = {(r.ip, r.family): r for r in db_session.scalars(sa.select(BotnetIp))}
    assert set(rows) == {("10.1.0.5", "mirai"), ("10.1.2.9", "avalanche"), ("2001:db8::1", "")}
    first = rows[("10.1.0.5", "mirai")]
    assert (first.org_id, first.asn, first.isp, first.days_seen) == (hn, 7552, "Viettel", 1)
    assert rows[("10.1.2.9", "avalanche")].first_seen == DAY - timedelta(days=1)

    # A later import: the span widens, days add up, the newest attribution wins.
    later = DAY + timedelta(days=3)
    n = botnet.apply_ips(
        db_session,
        ip_rows(
            {"ip": "10.1.0.5", "family": "mirai", "day": later, "org_id": soyt, "asn": 45899,
             "isp": "VNPT", "days": 2},
            {"ip": "10.1.0.5", "family": "gozi", "day": later, "org_id": hn},
        ),
    )  # fmt: skip
    assert n == 2
    db_session.commit()
    db_session.expire_all()
    merged = db_session.scalars(
        sa.select(BotnetIp).where(BotnetIp.ip == "10.1.0.5", BotnetIp.family == "mirai")
    ).one()
    assert (merged.first_seen, merged.last_seen, merged.days_seen) == (DAY, later, 3)
    assert (merged.org_id, merged.asn, merged.isp) == (soyt, 45899, "VNPT")
    assert db_session.scalar(sa.select(sa.func.count()).select_from(BotnetIp)) == 4

    # An older import re-sent keeps the span (min/max), still adds its days.
    botnet.apply_ips(db_session, ip_rows({"ip": "10.1.0.5", "family": "mirai", "day": DAY}))
    db_session.commit()
    db_session.expire_all()
    again = db_session.scalars(
        sa.select(BotnetIp).where(BotnetIp.ip == "10.1.0.5", BotnetIp.family == "mirai")
    ).one()
    assert (again.first_seen, again.last_seen, again.days_seen) == (DAY, later, 4)


def test_apply_ips_folds_duplicate_keys_and_is_not_committed(
    server_app: FastAPI, db_session: Session, tree: dict[str, Organisation]
) -> None:
    table = ip_rows(
        {"ip": "10.1.0.7", "family": "mirai", "day": DAY, "org_id": tree["HN"].id},
        {"ip": "10.1.0.7", "family": "MIRAI", "day": DAY + timedelta(days=2), "days": 1,
         "org_id": tree["SOYT"].id},
    )  # fmt: skip
    assert botnet.apply_ips(db_session, table) == 1
    db_session.flush()
    row = db_session.scalars(sa.select(BotnetIp)).one()
    assert (row.first_seen, row.last_seen, row.days_seen) == (DAY, DAY + timedelta(days=2), 2)
    assert row.org_id == tree["SOYT"].id  # the later row of the input wins
    db_session.rollback()
    with server_app.state.db.sessions() as other:
        assert other.scalar(sa.select(sa.func.count()).select_from(BotnetIp)) == 0


def test_apply_ips_rejects_rows_without_the_key_columns(db_session: Session) -> None:
    with pytest.raises(InputError, match="first_day"):
        botnet.apply_ips(db_session, pa.table({"ip": ["10.0.0.1"], "last_day": [DAY]}))
    bad = ip_rows({"ip": "10.0.0.1"}).set_column(0, "ip", pa.array([None], pa.string()))
    with pytest.raises(InputError, match="null 'ip'"):
        botnet.apply_ips(db_session, bad)
    assert botnet.apply_ips(db_session, ip_rows()) == 0


# --- apply_stats ----------------------------------------------------------------------------------


def test_apply_stats_replaces_only_the_periods_given(db_session: Session) -> None:
    d1, d2 = DAY, DAY + timedelta(days=1)
    botnet.apply_stats(
        db_session,
        stat_rows(
            ("day", d1, "all", "", "", 10),
            ("day", d1, "family", "mirai", "mirai", 7),
            ("day", d2, "all", "", "", 12),
            ("month", d1.replace(day=1), "all", "", "", 30),
        ),
    )
    db_session.commit()
    # Re-running day d1 replaces its rows (the family row disappears) and leaves d2 and the month.
    assert botnet.apply_stats(db_session, stat_rows(("day", d1, "all", "", "", 11))) == 1
    db_session.commit()
    got = {
        (s.period, s.start, s.dim, s.key): s.ips for s in db_session.scalars(sa.select(BotnetStat))
    }
    assert got == {
        ("day", d1, "all", ""): 11,
        ("day", d2, "all", ""): 12,
        ("month", d1.replace(day=1), "all", ""): 30,
    }


def test_apply_stats_rejects_unknown_period_or_dim(db_session: Session) -> None:
    with pytest.raises(InputError, match="period"):
        botnet.apply_stats(db_session, stat_rows(("year", DAY, "all", "", "", 1)))
    with pytest.raises(InputError, match="dim"):
        botnet.apply_stats(db_session, stat_rows(("day", DAY, "colour", "", "", 1)))


def test_record_import_keeps_the_first_hundred_errors(db_session: Session) -> None:
    run = {
        "file": "/feeds/2026-11-20-event4_sinkhole.csv",
        "sha256": "ab" * 32,
        "format": "shadowserver",
        "rows": 1000,
        "bad_rows": 150,
        "duplicates": 20,
        "new_events": 830,
        "attributed": 800,
        "unattributed": 30,
        "first_day": "2026-11-20",
        "last_day": date(2026, 11, 20),
        "errors": [f"f.csv:{i}: bad ip" for i in range(150)],
        "something_else": 1,
    }
    run_id = botnet.record_import(db_session, run)
    db_session.commit()
    row = db_session.get(BotnetImport, run_id)
    assert row is not None
    assert (row.rows, row.bad_rows, row.attributed, row.first_day) == (1000, 150, 800, DAY)
    assert len(row.errors) == 100 and row.errors[0] == "f.csv:0: bad ip"


# --- figures and scope ----------------------------------------------------------------------------

NOV, OCT, NOV_LAST_YEAR = date(2026, 11, 1), date(2026, 10, 1), date(2025, 11, 1)


def seed_stats(session: Session, tree: dict[str, Organisation]) -> None:
    hn, soyt, dn = (str(tree[c].id) for c in ("HN", "SOYT", "DN"))
    rows: list[tuple[str, date, str, str, str, int]] = [
        ("month", NOV, "all", "", "", 1000),
        ("month", OCT, "all", "", "", 1250),
        ("month", NOV_LAST_YEAR, "all", "", "", 2000),
        ("month", NOV, "family", "mirai", "mirai", 700),
        ("month", NOV, "family", "gozi", "gozi", 300),
        ("month", NOV, "province", "Hà Nội", "Hà Nội", 600),
        ("month", NOV, "asn", "7552", "Viettel Group", 800),
        ("month", NOV, "sector", "health", "health", 100),
        ("month", NOV, "sector", "", "", 900),
        ("month", NOV, "org", hn, "Hà Nội", 300),
        ("month", NOV, "org", soyt, "Sở Y tế", 100),
        ("month", NOV, "org", dn, "Đà Nẵng", 50),
        ("month", NOV, "org", "", "", 550),
        ("month", OCT, "org", hn, "Hà Nội", 200),
        ("month", OCT, "org", soyt, "Sở Y tế", 100),
    ]
    for i in range(20):
        d = NOV + timedelta(days=i)
        rows += [
            ("day", d, "all", "", "", 100 + i),
            ("day", d, "org", hn, "Hà Nội", 10 + i),
            ("day", d, "org", soyt, "Sở Y tế", 5),
            ("day", d, "org", dn, "Đà Nẵng", 1),
        ]
    botnet.apply_stats(session, stat_rows(*rows))
    session.commit()


def test_summary_for_the_country(db_session: Session, tree: dict[str, Organisation]) -> None:
    seed_stats(db_session, tree)
    s = botnet.summary(db_session, None)
    assert s["month"] == "2026-11" and s["latest_day"] == "2026-11-20"
    assert (s["ips"], s["last_month"], s["last_year"]) == (1000, 1250, 2000)
    assert (s["change_month_pct"], s["change_year_pct"]) == (-20.0, -50.0)
    assert s["latest_day_ips"] == 119
    assert [r["key"] for r in s["top_families"]] == ["mirai", "gozi"]
    assert s["top_isps"] == [{"key": "7552", "label": "Viettel Group", "ips": 800}]
    assert s["top_orgs"][0] == {"key": "", "label": "", "ips": 550, "code": ""}
    assert s["top_orgs"][1]["code"] == "HN"  # organisations carry their code
    assert botnet.summary(db_session, tree["VN"]) == s  # the root is the country
    # September has no feed data at all: None ("no data"), not 0, and no change
    october = botnet.summary(db_session, None, date(2026, 10, 15))
    assert (october["ips"], october["last_month"], october["change_month_pct"]) == (
        1250,
        None,
        None,
    )
    assert october["has_data"] is True and october["last_year"] is None
    empty = botnet.summary(db_session, None, date(2019, 1, 1))
    assert (empty["ips"], empty["last_month"], empty["last_year"]) == (None, None, None)
    assert (empty["has_data"], empty["change_month_pct"], empty["change_year_pct"]) == (
        False,
        None,
        None,
    )
    assert empty["top_families"] == [] and empty["month"] == "2019-01"
    # a subtree in a month with data but none of its IPs: 0, not None
    dn_sept = botnet.summary(db_session, tree["DN"], date(2026, 10, 1))
    assert dn_sept["ips"] == 0 and dn_sept["last_month"] is None


def test_summary_by_week_and_day(db_session: Session, tree: dict[str, Organisation]) -> None:
    seed_stats(db_session, tree)
    hn = str(tree["HN"].id)
    # ISO week of Wed 18 Nov 2026: Monday 16th; the week before: Monday 9th
    botnet.apply_stats(
        db_session,
        stat_rows(
            ("week", date(2026, 11, 16), "all", "", "", 500),
            ("week", date(2026, 11, 9), "all", "", "", 400),
            ("week", date(2026, 11, 16), "family", "mirai", "mirai", 300),
            ("week", date(2026, 11, 16), "org", hn, "Hà Nội", 40),
            ("week", date(2026, 11, 9), "org", hn, "Hà Nội", 50),
        ),
    )
    db_session.commit()
    w = botnet.summary(db_session, None, date(2026, 11, 18), "week")
    assert (w["period"], w["start"], w["end"]) == ("week", "2026-11-16", "2026-11-22")
    assert (w["ips"], w["last_month"], w["last_year"], w["change_month_pct"]) == (
        500,
        400,
        None,
        25.0,
    )
    assert w["year_ago_start"] == "2025-11-17"  # 52 weeks back: a Monday again
    assert w["top_families"] == [{"key": "mirai", "label": "mirai", "ips": 300}]
    sub = botnet.summary(db_session, tree["HN"], date(2026, 11, 18), "week")
    assert (sub["ips"], sub["last_month"], sub["change_month_pct"]) == (40, 50, -20.0)
    d = botnet.summary(db_session, None, date(2026, 11, 5), "day")
    assert (d["ips"], d["last_month"], d["change_month_pct"]) == (104, 103, 1.0)
    weekly = botnet.trend(db_session, None, 60, period="week")
    assert weekly == [(date(2026, 11, 9), 400), (date(2026, 11, 16), 500)]
    with pytest.raises(InputError):
        botnet.summary(db_session, None, None, "year")


def test_summary_and_trend_for_a_subtree(
    db_session: Session, tree: dict[str, Organisation]
) -> None:
    seed_stats(db_session, tree)
    hn = tree["HN"]
    botnet.apply_ips(
        db_session,
        ip_rows(
            {"ip": "10.1.0.1", "family": "mirai", "org_id": hn.id, "province": "Hà Nội"},
            {"ip": "10.1.2.1", "family": "gozi", "org_id": tree["SOYT"].id},
            {"ip": "10.1.2.2", "family": "gozi", "org_id": tree["SOYT"].id},
            {"ip": "10.2.0.1", "family": "emotet", "org_id": tree["DN"].id},
            {"ip": "10.1.0.9", "family": "old", "org_id": hn.id, "day": date(2026, 9, 1)},
        ),
    )
    db_session.commit()
    s = botnet.summary(db_session, hn)
    assert s["scope"] == {"code": "HN", "name": "Hà Nội"}
    assert (s["ips"], s["last_month"], s["last_year"]) == (400, 300, 0)
    assert (s["change_month_pct"], s["change_year_pct"]) == (33.3, None)
    assert s["latest_day_ips"] == 29 + 5
    # Organisations only from the subtree; DN and the unattributed never show.
    assert {r["key"] for r in s["top_orgs"]} == {str(hn.id), str(tree["SOYT"].id)}
    # The other dimensions from the subtree's IP rows overlapping the month.
    assert s["top_families"] == [
        {"key": "gozi", "label": "gozi", "ips": 2},
        {"key": "mirai", "label": "mirai", "ips": 1},
    ]
    # SOYT's own sector, HN's for HN itself (inherited by nobody else here).
    assert {r["key"]: r["ips"] for r in s["top_sectors"]} == {"health": 2, "government": 1}
    days = botnet.trend(db_session, hn, 730)
    assert len(days) == 20 and days[0] == (NOV, 15) and days[-1] == (date(2026, 11, 20), 34)
    country = botnet.trend(db_session, None, 5)
    assert [n for _, n in country] == [115, 116, 117, 118, 119]


def test_sector_is_inherited_from_the_nearest_ancestor(
    db_session: Session, tree: dict[str, Organisation]
) -> None:
    make_org(db_session, "SOYT-BV", "SOYT", name="Bệnh viện")
    make_org(db_session, "HN-X", "HN", name="Phòng X")
    got = botnet.effective_sectors(db_session, tree["HN"])
    assert got[org(db_session, "SOYT-BV").id] == "health"
    assert got[org(db_session, "HN-X").id] == "government"
    assert got[tree["HN"].id] == "government"


def test_org_ips_status_and_scope(db_session: Session, tree: dict[str, Organisation]) -> None:
    soyt, hn = tree["SOYT"].id, tree["HN"].id
    botnet.apply_ips(
        db_session,
        ip_rows(
            {"ip": "10.1.2.1", "family": "mirai", "org_id": soyt},  # new on DAY
            {"ip": "10.1.2.2", "family": "gozi", "org_id": soyt,
             "first_day": DAY - timedelta(days=5)},  # active
            {"ip": "10.1.2.3", "family": "avalanche", "org_id": soyt,
             "day": DAY - timedelta(days=3)},  # gone
            {"ip": "10.1.2.4", "family": "x", "org_id": soyt,
             "day": DAY - timedelta(days=60)},  # too old to list
            {"ip": "10.1.0.1", "family": "mirai", "org_id": hn},
            {"ip": "10.2.0.1", "family": "mirai", "org_id": tree["DN"].id},
        ),
    )  # fmt: skip
    db_session.commit()
    rows, total = botnet.org_ips(db_session, tree["SOYT"])
    assert total == 3
    assert [(r.ip, r.status) for r in rows] == [
        ("10.1.2.1", "new"),
        ("10.1.2.2", "active"),
        ("10.1.2.3", "gone"),
    ]
    rows, total = botnet.org_ips(db_session, tree["HN"], subtree=True)
    assert total == 4 and {r.org_code for r in rows} == {"HN", "SOYT"}
    assert botnet.status_of(DAY, DAY, None) == "gone"


def test_two_years_of_daily_statistics_chart(
    db_session: Session, tree: dict[str, Organisation]
) -> None:
    """Two years of daily rows come back as one point a day and chart as one SVG (the speed of
    this at national scale is measured by bench/botnet_page.py, not here)."""
    from quet.server.web import charts

    start = DAY - timedelta(days=729)
    keys = [str(tree[c].id) for c in ("HN", "SOYT", "DN")]
    rows = []
    for i in range(730):
        d = start + timedelta(days=i)
        rows.append(("day", d, "all", "", "", 50_000 + i))
        rows += [("day", d, "org", k, "", 10 + i % 7) for k in keys]
        rows += [("day", d, "family", f"f{j}", "", j) for j in range(20)]
        rows += [("day", d, "asn", str(7000 + j), "", j) for j in range(30)]
    botnet.apply_stats(db_session, stat_rows(*rows))
    db_session.commit()
    for under in (None, tree["HN"]):
        days = botnet.trend(db_session, under, 730)
        svg = charts.line_chart({"ips": [(d, float(n)) for d, n in days]}, title="t")
        assert len(days) == 730 and "<svg" in svg
        assert [d for d, _ in days] == [start + timedelta(days=i) for i in range(730)]


# --- the public lookup ----------------------------------------------------------------------------


def test_lookup_says_only_whether_listed_on_the_newest_day(
    db_session: Session, tree: dict[str, Organisation]
) -> None:
    assert botnet.lookup(db_session, "192.0.2.1").day is None  # no data at all
    botnet.apply_ips(
        db_session,
        ip_rows(
            {"ip": "10.1.0.5", "family": "mirai", "org_id": tree["HN"].id, "asn": 7552},
            {"ip": "10.1.0.5", "family": "gozi", "org_id": tree["HN"].id},
            {"ip": "10.1.0.6", "family": "mirai", "day": DAY - timedelta(days=1)},
            {"ip": "2001:db8::5", "family": ""},
        ),
    )
    db_session.commit()
    hit = botnet.lookup(db_session, " 10.1.0.5 ", today=DAY)
    # the public answer: yes/no and the day, never the family, owner or ASN
    assert hit.to_dict() == {"ip": "10.1.0.5", "listed": True, "day": "2026-11-20", "stale": False}
    assert hit.families == ["gozi", "mirai"]  # for the operators' CLI only
    assert not botnet.lookup(db_session, "10.1.0.6", today=DAY).listed  # yesterday only
    assert botnet.lookup(db_session, "::ffff:10.1.0.5", today=DAY).listed
    v6 = botnet.lookup(db_session, "2001:0DB8:0:0::5", today=DAY)
    assert (v6.ip, v6.listed, v6.families) == ("2001:db8::5", True, [])
    # Asked about an earlier day, the newest day up to it counts.
    assert botnet.lookup(db_session, "10.1.0.6", today=DAY - timedelta(days=1)).listed
    assert botnet.lookup(db_session, "10.1.0.5", today=DAY + timedelta(days=30)).stale
    with pytest.raises(InputError):
        botnet.lookup(db_session, "10.1.0.256")


def test_rate_limiter_window() -> None:
    limiter = botnet.RateLimiter(3, 60.0)
    assert [limiter.hit("10.0.0.1", now=t) for t in (0.0, 1.0, 2.0)] == [0.0, 0.0, 0.0]
    assert limiter.hit("10.0.0.1", now=3.0) == pytest.approx(57.0)
    assert limiter.hit("10.0.0.2", now=3.0) == 0.0  # per client
    assert limiter.hit("10.0.0.1", now=60.5) == 0.0  # the first call left the window


def test_rate_limiter_keys_ipv6_by_64() -> None:
    assert botnet.client_key("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert botnet.client_key("::ffff:10.0.0.1") == "10.0.0.1"
    assert botnet.client_key("testclient") == "testclient"
    limiter = botnet.RateLimiter(3, 60.0)
    # rotating the interface identifier within one /64 does not buy more lookups
    got = [limiter.hit(f"2001:db8:1:2::{i:x}", now=float(i)) for i in range(1, 5)]
    assert got[:3] == [0.0, 0.0, 0.0] and got[3] > 0
    assert limiter.hit("2001:db8:1:3::1", now=5.0) == 0.0  # the next /64 is another client


def test_rate_limiter_flood_does_not_reset_budgets() -> None:
    limiter = botnet.RateLimiter(2, 60.0, max_clients=100)
    assert limiter.hit("10.0.0.1", now=0.0) == 0.0
    assert limiter.hit("10.0.0.1", now=0.5) == 0.0
    assert limiter.hit("10.0.0.1", now=1.0) > 0  # spent
    # a flood of new addresses (more than the table holds) inside the window
    refused = sum(limiter.hit(f"2001:db8:{i:x}::1", now=2.0) > 0 for i in range(500))
    assert len(limiter) == 100 and refused == 401  # 99 new keys fitted, the rest refused
    assert limiter.hit("10.0.0.1", now=3.0) > 0  # the spent client is still counted
    # once windows have passed, expired clients make room again
    assert limiter.hit("10.9.9.9", now=70.0) == 0.0
    assert limiter.hit("10.0.0.1", now=70.0) == 0.0


def test_lookup_api_is_public_and_rate_limited(
    client: TestClient, db_session: Session, tree: dict[str, Organisation]
) -> None:
    botnet.apply_ips(db_session, ip_rows({"ip": "10.1.0.5", "org_id": tree["HN"].id}))
    db_session.commit()
    r = client.get("/api/v1/botnet/lookup", params={"ip": "10.1.0.5"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["listed"] is True
    # yes/no and the day only: no family, nothing about the owner
    assert set(body) == {"ip", "listed", "day", "stale"}
    assert "mirai" not in r.text and "Hà Nội" not in r.text
    # Without ?ip= the caller's own address (the test client's "testclient") is checked: invalid.
    assert client.get("/api/v1/botnet/lookup").status_code == 400
    assert client.get("/api/v1/botnet/lookup", params={"ip": "nope"}).status_code == 400
    codes = [
        client.get("/api/v1/botnet/lookup", params={"ip": "10.9.9.9"}).status_code
        for _ in range(30)
    ]
    assert codes.count(200) == 27 and codes[-1] == 429  # 30 a minute, the first 3 above
    limited = client.get("/lookup", params={"ip": "10.1.0.5"})  # the page shares the limit
    assert limited.status_code == 429 and 1 <= int(limited.headers["Retry-After"]) <= 60


def test_lookup_page_yes_and_no(
    client: TestClient, db_session: Session, tree: dict[str, Organisation]
) -> None:
    botnet.apply_ips(
        db_session,
        ip_rows(
            {
                "ip": "10.1.0.5",
                "family": "mirai",
                "org_id": tree["HN"].id,
                "asn": 7552,
                "isp": "Viettel Group",
                "province": "Đà Nẵng",
            }
        ),
    )
    db_session.commit()
    yes = client.get("/lookup", params={"ip": "10.1.0.5"})
    assert yes.status_code == 200
    assert 'data-listed="yes"' in yes.text and "CÓ trong danh sách" in yes.text
    answer = yes.text.split('id="lookup-result"', 1)[1].split("</section>", 1)[0]
    # never the family, the owner, its province, the ISP or the ASN
    for secret in ("mirai", "Hà Nội", "Đà Nẵng", "Viettel", "7552", "Họ mã độc"):
        assert secret not in yes.text, secret
    assert "cập nhật phần mềm" in answer  # generic advice
    no = client.get("/lookup", params={"ip": "10.1.0.6", "lang": "en"})
    assert 'data-listed="no"' in no.text and "is not listed" in no.text
    assert client.get("/lookup", params={"ip": "x"}).status_code == 400


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.one_of(st.text(max_size=60), st.ip_addresses().map(str)))
def test_fuzz_lookup_input_never_breaks(db_session: Session, text: str) -> None:
    if botnet.latest_day(db_session) is None:  # seeded once (hypothesis reuses the fixture)
        botnet.apply_ips(
            db_session,
            ip_rows(
                {"ip": "10.1.0.5", "family": "mirai"},
                {"ip": "2001:db8::5", "family": "gozi"},
                {"ip": "10.1.0.6", "family": "mirai", "day": DAY - timedelta(days=1)},
            ),
        )
        db_session.commit()
    try:
        result = botnet.lookup(db_session, text, today=DAY)
    except InputError:
        return
    assert result.ip and result.day == DAY
    assert result.listed == (result.ip in {"10.1.0.5", "2001:db8::5"})
    assert set(result.to_dict()) == {"ip", "listed", "day", "stale"}


def test_fuzz_lookup_seeded_addresses_listed(db_session: Session) -> None:
    botnet.apply_ips(db_session, ip_rows({"ip": "10.1.0.5", "family": "mirai"}))
    db_session.commit()
    for asked in ("10.1.0.5", " 10.1.0.5", "::ffff:10.1.0.5", "[10.1.0.5]"):
        assert botnet.lookup(db_session, asked, today=DAY).listed, asked


# --- API figures ----------------------------------------------------------------------------------


def test_stats_api_is_scoped(
    client: TestClient, db_session: Session, tree: dict[str, Organisation]
) -> None:
    seed_stats(db_session, tree)
    assert client.get("/api/v1/botnet/stats").status_code == 401
    password = make_user(db_session, "hn_officer", "officer", "HN")
    login(client, "hn_officer", password)
    mine = client.get("/api/v1/botnet/stats", params={"days": 3}).json()
    assert mine["scope"]["code"] == "HN" and mine["ips"] == 400
    assert [n for _, n in mine["trend"]] == [32, 33, 34]
    day = client.get(
        "/api/v1/botnet/stats", params={"period": "day", "day": "2026-11-05", "days": 2}
    ).json()
    assert (day["period"], day["start"], day["ips"], day["last_month"]) == (
        "day",
        "2026-11-05",
        14 + 5,  # HN's own and SOYT's rows of that day
        13 + 5,
    )
    none = client.get("/api/v1/botnet/stats", params={"month": "2019-01"}).json()
    assert (none["ips"], none["last_month"], none["has_data"]) == (None, None, False)
    assert client.get("/api/v1/botnet/stats", params={"period": "year"}).status_code == 422
    assert client.get("/api/v1/botnet/stats", params={"org": "DN"}).status_code == 404
    assert client.get("/api/v1/botnet/stats", params={"month": "2026-13"}).status_code == 422
    ips = client.get("/api/v1/botnet/ips").json()
    assert ips["total"] == 0


# --- digests --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Mailbox:
    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), msg))
        return "250 OK"


@dataclass
class Hook:
    path: str
    body: bytes
    signature: str


class Receiver:
    def __init__(self) -> None:
        self.hits: list[Hook] = []
        self.status = 200
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.hits.append(Hook(self.path, body, self.headers.get(SIGNATURE_HEADER, "")))
                self.send_response(outer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()


def seed_digest_data(session: Session, receiver: Receiver) -> None:
    """SOYT: 3 IPs today (e-mail + webhook); DN: 1 IP today (e-mail only); HN: only yesterday."""
    make_org(session, "BV", "SOYT", name="Bệnh viện", contact_email="", webhook_url="")
    soyt, dn, hn = org(session, "SOYT"), org(session, "DN"), org(session, "HN")
    soyt.webhook_url = receiver.url("/hook/soyt")
    soyt.contact_email = "soyt@example.test, it@soyt.example.test"
    session.commit()
    botnet.apply_ips(
        session,
        ip_rows(
            {"ip": "10.1.2.1", "family": "mirai", "org_id": soyt.id, "asn": 7552,
             "isp": "Viettel"},
            {"ip": "10.1.2.1", "family": "gozi", "org_id": soyt.id,
             "first_day": DAY - timedelta(days=4)},
            {"ip": "10.1.2.2", "family": "mirai", "org_id": soyt.id},
            {"ip": "10.1.2.3", "family": "mirai", "org_id": soyt.id},
            {"ip": "10.1.2.9", "family": "mirai", "org_id": soyt.id,
             "day": DAY - timedelta(days=2)},  # gone: not in today's digest
            {"ip": "10.2.0.1", "family": "emotet", "org_id": dn.id},
            {"ip": "10.1.0.1", "family": "mirai", "org_id": hn.id,
             "day": DAY - timedelta(days=1)},
            {"ip": "10.1.2.50", "family": "mirai", "org_id": org(session, "BV").id},
            {"ip": "192.0.2.1", "family": "mirai"},  # unattributed: nobody to tell
        ),
    )  # fmt: skip
    session.commit()


def test_digests_mail_csv_and_signed_webhook_once_a_day(
    server_app: FastAPI,
    db_session: Session,
    tree: dict[str, Organisation],
    mailbox: tuple[Mailbox, int],
    receiver: Receiver,
) -> None:
    box, port = mailbox
    seed_digest_data(db_session, receiver)
    cfg = server_app.state.settings.model_copy(
        update={"smtp_port": port, "smtp_sender": "quet@cert.example.vn"}
    )
    result = botnet.send_digests(db_session, cfg)
    assert result.day == DAY
    assert result.sent == ["DN", "SOYT"]
    assert result.skipped == {"BV": "no contact e-mail or webhook"}
    assert not result.failed and len(result.deliveries) == 3

    by_to = {tuple(to): msg for to, msg in box.messages}
    assert set(by_to) == {("dn@example.test",), ("soyt@example.test", "it@soyt.example.test")}
    msg = by_to[("soyt@example.test", "it@soyt.example.test")]
    assert "3 địa chỉ IP" in str(msg["Subject"]) and "3 botnet IPs" in str(msg["Subject"])
    body = msg.get_body(preferencelist=("plain",))
    assert body is not None and "Sở Y tế" in body.get_content()
    attachments = list(msg.iter_attachments())
    assert [a.get_filename() for a in attachments] == ["botnet-SOYT-2026-11-20.csv"]
    csv_text = attachments[0].get_content()
    if isinstance(csv_text, bytes):
        csv_text = csv_text.decode("utf-8")
    lines = csv_text.lstrip("\ufeff").splitlines()
    assert lines[0] == "ip,family,first_seen,last_seen,status,asn,isp"
    assert lines[1:] == [
        "10.1.2.1,gozi,2026-11-16,2026-11-20,active,,",
        "10.1.2.1,mirai,2026-11-20,2026-11-20,new,7552,Viettel",
        "10.1.2.2,mirai,2026-11-20,2026-11-20,new,,",
        "10.1.2.3,mirai,2026-11-20,2026-11-20,new,,",
    ]

    assert [h.path for h in receiver.hits] == ["/hook/soyt"]
    hook = receiver.hits[0]
    assert verify_webhook(hook.body, hook.signature, cfg.webhook_secret)
    payload = json.loads(hook.body)
    assert (payload["event"], payload["day"], payload["ips"], payload["rows"]) == (
        "botnet.digest", "2026-11-20", 3, 4,
    )  # fmt: skip
    assert payload["org"] == {"code": "SOYT", "name": "Sở Y tế"}

    # Idempotent: the second run of the day sends nothing.
    again = botnet.send_digests(db_session, cfg, DAY)
    assert again.sent == [] and again.skipped["SOYT"] == "already sent"
    assert len(box.messages) == 2 and len(receiver.hits) == 1
    with server_app.state.db.sessions() as other:  # committed
        row = other.get(BotnetDigest, tree["SOYT"].id)
        assert row is not None and row.last_sent_day == DAY
        audit = other.scalars(sa.select(AuditEntry).where(AuditEntry.action == "botnet.digest"))
        assert [a.detail["sent"] for a in audit] == [["DN", "SOYT"]]


def test_digest_opt_out_threshold_and_failures(
    server_app: FastAPI,
    db_session: Session,
    tree: dict[str, Organisation],
    mailbox: tuple[Mailbox, int],
    receiver: Receiver,
) -> None:
    from quet.server.deps import Principal
    from quet.store.models import User

    box, port = mailbox
    seed_digest_data(db_session, receiver)
    admin = db_session.scalars(sa.select(User).where(User.username == "admin")).one()
    who = Principal(admin, tree["VN"])
    soyt, dn = org(db_session, "SOYT"), org(db_session, "DN")
    botnet.set_digest_settings(
        db_session, who, soyt, email_enabled=False, webhook_enabled=True, threshold=4
    )
    botnet.set_digest_settings(
        db_session, who, dn, email_enabled=False, webhook_enabled=False, threshold=1
    )
    db_session.commit()
    cfg = server_app.state.settings.model_copy(update={"smtp_port": port})
    result = botnet.send_digests(db_session, cfg, DAY)
    assert result.sent == []
    assert result.skipped["SOYT"] == "below threshold (3 < 4)"
    assert result.skipped["DN"] == "opted out"
    assert box.messages == [] and receiver.hits == []

    # Threshold met, e-mail still off: only the webhook. It fails (HTTP 500): tried again later.
    botnet.set_digest_settings(
        db_session, who, soyt, email_enabled=False, webhook_enabled=True, threshold=3
    )
    db_session.commit()
    receiver.status = 500
    failed = botnet.send_digests(db_session, cfg, DAY)
    assert failed.sent == [] and [d.org_code for d in failed.failed] == ["SOYT"]
    assert box.messages == [] and len(receiver.hits) == 3  # first try + 2 retries
    receiver.status = 200
    ok = botnet.send_digests(db_session, cfg, DAY)
    assert ok.sent == ["SOYT"] and len(receiver.hits) == 4 and box.messages == []
    changes = db_session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "botnet.digest_settings")
    ).all()
    assert len(changes) == 3  # the unchanged DN row is not logged twice


def test_digest_settings_need_an_officer(
    db_session: Session, tree: dict[str, Organisation]
) -> None:
    from quet.server.deps import Principal
    from quet.server.services.errors import Forbidden
    from quet.store.models import User

    make_user(db_session, "hn_viewer", "viewer", "HN")
    viewer = db_session.scalars(sa.select(User).where(User.username == "hn_viewer")).one()
    with pytest.raises(Forbidden):
        botnet.set_digest_settings(
            db_session, Principal(viewer, tree["HN"]), tree["SOYT"],
            email_enabled=False, webhook_enabled=False, threshold=1,
        )  # fmt: skip
    defaults = botnet.digest_settings(db_session, tree["SOYT"])
    assert (defaults.email_enabled, defaults.webhook_enabled, defaults.threshold) == (True, True, 1)


def test_server_loop_step_sends_only_recent_days(
    server_app: FastAPI,
    db_session: Session,
    tree: dict[str, Organisation],
    mailbox: tuple[Mailbox, int],
    receiver: Receiver,
) -> None:
    box, port = mailbox
    seed_digest_data(db_session, receiver)
    cfg = server_app.state.settings.model_copy(update={"smtp_port": port})
    sessions = server_app.state.db.sessions
    assert botnet.digests_due(sessions, cfg, today=DAY + timedelta(days=10)) is None
    result = botnet.digests_due(sessions, cfg, today=DAY + timedelta(days=1))
    assert result is not None and result.sent == ["DN", "SOYT"]
    assert botnet.digests_due(sessions, cfg, today=DAY + timedelta(days=1)) is None  # done
    assert len(box.messages) == 2


# --- pages (HTML; the browser tests are in test_web_botnet.py) --------------------------------------


def test_botnet_page_and_org_section(
    client: TestClient, db_session: Session, tree: dict[str, Organisation]
) -> None:
    seed_stats(db_session, tree)
    botnet.apply_ips(
        db_session,
        ip_rows(
            {"ip": "10.1.2.1", "family": "mirai", "org_id": tree["SOYT"].id},
            {"ip": "10.1.2.2", "family": "gozi", "org_id": tree["SOYT"].id,
             "day": DAY - timedelta(days=2)},
        ),
    )  # fmt: skip
    db_session.commit()
    assert client.get("/botnet", follow_redirects=False).status_code == 303
    password = make_user(db_session, "hn_officer", "officer", "HN")
    login(client, "hn_officer", password)
    page = client.get("/botnet", params={"lang": "en"})
    assert page.status_code == 200, page.text
    assert 'data-value="400"' in page.text and "▲ 33.3% vs last month" in page.text
    assert 'data-ip="10.1.2.1" data-status="new"' in page.text
    assert "Đà Nẵng" not in page.text  # another province's figures stay hidden
    assert client.get("/botnet", params={"month": "bad"}).status_code == 400
    assert client.get("/botnet", params={"org": "DN"}).status_code == 404

    org_page = client.get("/orgs/SOYT", params={"lang": "en"})
    assert org_page.status_code == 200
    assert 'data-ip="10.1.2.2" data-status="gone"' in org_page.text
    assert 'action="/orgs/SOYT/botnet-digest"' in org_page.text
    saved = client.post(
        "/orgs/SOYT/botnet-digest",
        data={"threshold": "5", "webhook_enabled": "1"},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    db_session.expire_all()
    row = db_session.get(BotnetDigest, tree["SOYT"].id)
    assert row is not None and (row.email_enabled, row.webhook_enabled, row.threshold) == (
        False, True, 5,
    )  # fmt: skip

    # The edit form sets the sector.
    form = {"name": "Sở Y tế", "kind": "department", "sector": "y tế", "contact_email": ""}
    assert client.post("/orgs/SOYT", data=form, follow_redirects=False).status_code == 303
    db_session.expire_all()
    assert org(db_session, "SOYT").sector == "health"
    bad = client.post("/orgs/SOYT", data=dict(form, sector="bananas"))
    assert bad.status_code == 422


def test_org_import_reads_the_sector_column(db_session: Session, tmp_path: Any) -> None:
    from quet.server.services import org_import

    path = tmp_path / "orgs.csv"
    path.write_text(
        "code,name,parent_code,kind,sector\n"
        "VN-01,Hà Nội,VN,province,nhà nước\n"
        "VN-01-NH,Ngân hàng X,VN-01,unit,finance\n"
        "VN-01-Z,Đơn vị Z,VN-01,unit,bananas\n",
        encoding="utf-8",
    )
    root = org(db_session, "VN")
    result = org_import.import_csv(db_session, "test", path, root)
    db_session.commit()
    assert sorted(result.added) == ["VN-01", "VN-01-NH", "VN-01-Z"]
    assert any("unknown sector 'bananas'" in r for r in result.rejected)
    got = {o.code: o.sector for o in db_session.scalars(sa.select(Organisation))}
    assert (got["VN-01"], got["VN-01-NH"], got["VN-01-Z"]) == ("government", "finance", "")
    # A file without the column leaves sectors alone.
    path.write_text("code,name,parent_code\nVN-01-NH,Ngân hàng X,VN-01\n", encoding="utf-8")
    org_import.import_csv(db_session, "test", path, root)
    db_session.commit()
    assert org(db_session, "VN-01-NH").sector == "finance"


BATCH = st.lists(
    st.fixed_dictionaries(
        {
            "ip": st.sampled_from(["10.0.0.1", "10.0.0.2", "2001:db8::1"]),
            "family": st.sampled_from(["mirai", "Mirai", "gozi", ""]),
            "first": st.integers(0, 20),
            "span": st.integers(0, 5),
            "days": st.integers(1, 3),
            "asn": st.one_of(st.none(), st.integers(1, 70000)),
        }
    ),
    max_size=6,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batches=st.lists(BATCH, min_size=1, max_size=3))
def test_apply_ips_matches_a_simple_model(
    db_session: Session, batches: list[list[dict[str, Any]]]
) -> None:
    """Any sequence of imports (duplicates within a batch included) ends as the model says:
    min first day, max last day, days added, the attribution of the last row imported."""
    db_session.execute(sa.delete(BotnetIp))
    model: dict[tuple[str, str], list[Any]] = {}
    for batch in batches:
        rows = []
        for r in batch:
            first = DAY + timedelta(days=r["first"])
            last = first + timedelta(days=r["span"])
            rows.append({"ip": r["ip"], "family": r["family"], "first_day": first,
                         "last_day": last, "days": r["days"], "asn": r["asn"]})  # fmt: skip
            key = (r["ip"], r["family"].lower())
            old = model.get(key)
            if old is None:
                model[key] = [first, last, r["days"], r["asn"]]
            else:
                model[key] = [min(old[0], first), max(old[1], last), old[2] + r["days"], r["asn"]]
        botnet.apply_ips(db_session, ip_rows(*rows))
    got = {
        (r.ip, r.family): [r.first_seen, r.last_seen, r.days_seen, r.asn]
        for r in db_session.scalars(sa.select(BotnetIp))
    }
    db_session.rollback()
    assert got == model
