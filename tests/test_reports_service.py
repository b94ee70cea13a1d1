"""The official reports' logic on SQLite and PostgreSQL: figures equal the database, overrides need
a reason, the workflow locks and unlocks, the roll-up over a three-level tree lists late and
missing units (never counting them as zero), and reminder e-mails go once each through a real
SMTP server (aiosmtpd)."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.orm import Session

import reports_data as rd
from quet.errors import InputError
from quet.server.services import report_document, report_monthly, report_reminders, reports
from quet.server.services import report_figures as rf
from quet.server.services.errors import Forbidden, NotFound
from quet.server.settings import Settings
from quet.store.models import AuditEntry, Participation
from quet.store.models.botnet import BotnetStat
from quet.store.models.report import Report, ReportReminder

pytest_plugins = ["server_fixtures"]

TODAY = datetime.now(UTC).date()


def _audit(session: Session, action: str) -> list[AuditEntry]:
    return list(session.scalars(sa.select(AuditEntry).where(AuditEntry.action == action)))


# -- figures ----------------------------------------------------------------------------------------
def test_figures_equal_the_database(db_session: Session) -> None:
    s = db_session
    world = rd.build(s, TODAY)
    rd.add_unit_data(s, world, "CB-A")
    s.commit()
    own = rf.measure(s, world.campaign, rd.org(s, "CB-A"))
    assert own["received"] == 1 and own["deployed"] == 1
    for key, value in rd.CB_A.items():
        assert own[key] == value, key
    # The province's own rows hold no devices; its subtree holds CB-A's, and 4 units deployed
    # (CB, CB-A, CB-B; CB-C has not) of 4 that received.
    cb = rd.org(s, "CB")
    assert rf.measure(s, world.campaign, cb)["devices"] == 0
    sub = rf.measure(s, world.campaign, cb, subtree=True)
    assert (sub["received"], sub["deployed"]) == (4, 3)
    for key, value in rd.CB_A.items():
        assert sub[key] == value, key
    # An organisation without devices: coverage is unknown, not 0 %.
    assert rf.measure(s, world.campaign, rd.org(s, "DN-A"))["coverage"] is None


def test_a_draft_shows_live_figures_and_the_form_rows(db_session: Session) -> None:
    s = db_session
    world = rd.build(s, TODAY)
    rd.add_unit_data(s, world)
    s.commit()
    v = reports.view(s, world.campaign, rd.org(s, "CB-A"))
    assert v.status == "draft" and v.report is None and not v.locked
    doc = report_document.build_campaign_report(s, world.campaign, rd.org(s, "CB-A"))
    assert [f.key for f in doc.figures] == list(rf.KEYS)
    assert doc.figures[0].label == (
        "Tổng số cơ quan, tổ chức, doanh nghiệp nhận được thông tin về chiến dịch"
    )
    assert doc.figures[1].label == "Tổng số cơ quan tổ chức triển khai chiến dịch"
    values = {f.key: f.value for f in doc.figures}
    assert values["devices"] == 5 and values["coverage"] == 40.0 and values["botnet_ips"] == 3
    assert doc.issuer == "SỞ Y TẾ TỈNH CAO BẰNG"
    assert doc.parent_body == "SỞ THÔNG TIN VÀ TRUYỀN THÔNG TỈNH CAO BẰNG"
    assert doc.place == "Cao Bằng" and doc.deadline == world.deadline
    assert doc.recipients_to == ["Sở Thông tin và Truyền thông tỉnh Cao Bằng"]
    assert doc.annexes == []  # a leaf has no annex


# -- overrides --------------------------------------------------------------------------------------
def test_an_override_needs_a_reason_and_is_kept(db_session: Session) -> None:
    s = db_session
    world = rd.build(s, TODAY)
    rd.add_unit_data(s, world)
    me = rd.principal(s, "canbo.cba", "officer", "CB-A")
    unit = rd.org(s, "CB-A")
    for reason in ("", "   ", "\n\t"):
        with pytest.raises(InputError, match="reason"):
            reports.override(s, me, world.campaign, unit, "devices", 7, reason)
    for key, value in (("devices", -1), ("devices", 2.5), ("coverage", 101), ("nope", 1)):
        with pytest.raises(InputError):
            reports.override(s, me, world.campaign, unit, key, value, "lý do")
    reports.override(
        s, me, world.campaign, unit, "devices", 7, "Có 2 máy chủ không cài được tác tử"
    )
    s.commit()
    doc = report_document.build_campaign_report(s, world.campaign, unit)
    row = next(f for f in doc.figures if f.key == "devices")
    assert row.value == 7 and row.measured == 5 and row.overridden
    assert "Có 2 máy chủ không cài được tác tử" in row.note
    [entry] = _audit(s, "report.override")
    assert entry.actor == "user:canbo.cba"
    assert entry.detail == {
        "key": "devices",
        "value": 7,
        "measured": 5,
        "reason": "Có 2 máy chủ không cài được tác tử",
    }
    # Back to the measured value: still needs (and records) a reason.
    reports.override(s, me, world.campaign, unit, "devices", None, "đã cài xong tác tử")
    s.commit()
    assert reports.view(s, world.campaign, unit).values["devices"] == 5
    assert len(_audit(s, "report.override_clear")) == 1


@given(st.one_of(st.floats(allow_nan=True), st.integers(-(2**60), 2**60)))
def test_override_values_are_checked_never_crash(value: float) -> None:
    for key in ("devices", "coverage"):
        try:
            checked = reports._check_value(key, value)
        except InputError:
            continue
        assert checked >= 0
        if key == "coverage":
            assert checked <= 100


@given(st.text(max_size=12))
def test_parse_month_fuzz(text: str) -> None:
    try:
        month = report_monthly.parse_month(text)
    except InputError:
        return
    assert month.day == 1


# -- workflow -------------------------------------------------------------------------------------
def test_workflow_locks_and_the_parent_decides(db_session: Session) -> None:
    s = db_session
    world = rd.build(s, TODAY)
    rd.add_unit_data(s, world)
    unit, c = rd.org(s, "CB-A"), world.campaign
    me = rd.principal(s, "canbo.cba", "officer", "CB-A")
    viewer = rd.principal(s, "xem.cba", "viewer", "CB-A")
    province = rd.principal(s, "canbo.cb", "officer", "CB")
    other = rd.principal(s, "canbo.dn", "officer", "DN")

    with pytest.raises(Forbidden):
        reports.edit(s, viewer, c, unit, {"evaluation": "x"})
    with pytest.raises(Forbidden):  # the province does not write the unit's report
        reports.edit(s, province, c, unit, {"evaluation": "x"})
    with pytest.raises(NotFound):  # another province cannot see it
        reports.edit(s, other, c, unit, {"evaluation": "x"})
    reports.edit(
        s,
        me,
        c,
        unit,
        {"evaluation": "Đã rà quét toàn bộ máy trạm.", "signer_name": "Nguyễn Văn Ánh"},
    )
    with pytest.raises(InputError):
        reports.edit(s, me, c, unit, {"password": "x"})
    with pytest.raises(InputError, match="not been submitted"):
        reports.accept(s, province, c, unit)

    moment = datetime.now(UTC).replace(microsecond=0)
    reports.submit(s, me, c, unit, now=moment)
    s.commit()
    row = reports.get_report(s, c, unit)
    assert row is not None and row.status == "submitted" and row.submitted_at == moment
    assert row.figures["values"]["devices"] == 5
    part = s.scalars(
        sa.select(Participation).where(
            Participation.campaign_id == c.id, Participation.org_id == unit.id
        )
    ).one()
    assert part.reported_at == moment
    # Locked: no edit, no override, no second submission.
    with pytest.raises(reports.Locked):
        reports.edit(s, me, c, unit, {"evaluation": "changed"})
    with pytest.raises(reports.Locked):
        reports.override(s, me, c, unit, "devices", 9, "lý do")
    with pytest.raises(reports.Locked):
        reports.submit(s, me, c, unit)
    # The snapshot is frozen: new devices do not change a submitted report.
    rd.add_unit_data(s, world, "CB-A")
    s.commit()
    assert reports.view(s, c, unit).values["devices"] == 5
    # Only someone above decides; a return needs a reason and unlocks.
    with pytest.raises(Forbidden):
        reports.accept(s, me, c, unit)
    with pytest.raises(InputError, match="why"):
        reports.return_report(s, province, c, unit, "  ")
    reports.return_report(s, province, c, unit, "Thiếu số liệu máy chủ")
    s.commit()
    row = reports.get_report(s, c, unit)
    assert row is not None and row.status == "returned"
    assert row.return_reason == "Thiếu số liệu máy chủ" and row.figures == {}
    s.refresh(part)
    assert part.reported_at is None
    reports.edit(s, me, c, unit, {"proposals": "Đề nghị hỗ trợ công cụ."})
    reports.submit(s, me, c, unit)
    assert reports.view(s, c, unit).values["devices"] == 10  # re-measured on resubmission
    reports.accept(s, province, c, unit)
    s.commit()
    row = reports.get_report(s, c, unit)
    assert row is not None and row.status == "accepted" and row.decided_by == "user:canbo.cb"
    actions = [a.action for a in s.scalars(sa.select(AuditEntry).order_by(AuditEntry.id))]
    assert [a for a in actions if a.startswith("report.")] == [
        "report.edit",
        "report.submit",
        "report.return",
        "report.edit",
        "report.submit",
        "report.accept",
    ]


# -- roll-up --------------------------------------------------------------------------------------
def test_rollup_over_three_levels_with_a_late_and_a_missing_unit(db_session: Session) -> None:
    s = db_session
    # The deadline was two days ago.
    world = rd.build(s, TODAY, deadline_in=-2)
    c = world.campaign
    rd.add_unit_data(s, world, "CB-A")
    rd.add_unit_data(s, world, "CB-C")
    rd.add_unit_data(s, world, "DN-A")
    on_time = datetime.combine(world.deadline - timedelta(days=1), datetime.min.time(), UTC)
    late = datetime.now(UTC)
    # CB-A reports late, with an override; CB-C on time; CB-B never.
    a = rd.principal(s, "a", "officer", "CB-A")
    reports.override(s, a, c, rd.org(s, "CB-A"), "devices", 6, "Thêm 1 máy chủ ngoài mạng")
    reports.submit(s, a, c, rd.org(s, "CB-A"), now=late)
    reports.submit(s, rd.principal(s, "cc", "officer", "CB-C"), c, rd.org(s, "CB-C"), now=on_time)
    s.commit()

    cb = rd.org(s, "CB")
    v = reports.view(s, c, cb)
    assert v.missing == ["Sở Tài chính tỉnh Cao Bằng"]
    assert v.late_children == ["Sở Y tế tỉnh Cao Bằng"]
    # Summed: CB's own (nothing) + CB-A (6 after its override) + CB-C (5); CB-B not as zero.
    assert v.values["devices"] == 11 and v.values["infected"] == 4
    assert v.values["coverage"] == round(4 * 100 / 11, 1)
    assert v.notes["devices"] == "1 đơn vị chưa báo cáo"
    # Rows 1-2 are the province's own participation data over its subtree: all 4 received.
    assert v.values["received"] == 4 and v.values["deployed"] == 3
    lines = {line.org.code: line for line in v.children}
    assert lines["CB-B"].status == "missing" and lines["CB-B"].values is None
    assert lines["CB-B"].late  # the deadline passed without a report
    assert lines["CB-A"].late and not lines["CB-C"].late

    doc = report_document.document(s, v)
    [annex] = doc.annexes
    rows = {r.code: r for r in annex.rows}
    assert rows["CB-B"].status == "missing" and set(rows["CB-B"].values.values()) == {None}
    assert rows["CB-A"].values["devices"] == 6 and rows["CB-A"].status == "submitted"
    assert doc.missing == ["Sở Tài chính tỉnh Cao Bằng"]
    assert any("1 đơn vị chưa báo cáo" in p for p in doc.body)

    # The province submits; the national report then counts CB and lists DN as missing, and its
    # second annex level shows the agencies.
    reports.submit(s, rd.principal(s, "cb", "officer", "CB"), c, cb, now=on_time)
    s.commit()
    root = rd.org(s, "VN")
    national = reports.view(s, c, root)
    assert national.values["devices"] == 11
    assert national.missing == ["Sở Thông tin và Truyền thông thành phố Đà Nẵng"]
    assert [line.org.code for line in national.levels[1]] == ["CB-A", "CB-B", "CB-C", "DN-A"]
    ndoc = report_document.document(s, national)
    assert len(ndoc.annexes) == 2 and ndoc.parent_body == "" and ndoc.place == "Hà Nội"
    # DN-A has data but no report: it is not counted anywhere.
    assert rf.measure(s, c, rd.org(s, "DN-A"))["devices"] == 5


# -- reminders ------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Mailbox:
    mails: list[tuple[list[str], email.message.EmailMessage]] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, email.message.EmailMessage)
        self.mails.append((list(envelope.rcpt_tos), msg))
        return "250 OK"


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


def test_reminders_go_once_each_before_the_deadline(
    server_app: FastAPI, db_session: Session, mailbox: tuple[Mailbox, int]
) -> None:
    s = db_session
    box, port = mailbox
    world = rd.build(s, TODAY, deadline_in=3)
    c = world.campaign
    rd.org(s, "DN-A").contact_email = ""  # cannot be reminded: a failed delivery
    reports.submit(s, rd.principal(s, "cc", "officer", "CB-C"), c, rd.org(s, "CB-C"))
    s.commit()
    settings = Settings(smtp_host="127.0.0.1", smtp_port=port, public_url="https://quet.example.vn")

    # The server's hourly job: its own session, committed.
    assert report_reminders.remind_all(server_app.state.db.sessions, settings) == 4
    out = list(report_reminders.remind(s, settings))
    assert [d for d in out if d.ok] == []  # already sent by the job
    s.execute(sa.delete(ReportReminder))
    s.commit()
    out = report_reminders.remind(s, settings)
    s.commit()
    sent = sorted(d.org_code for d in out if d.ok)
    assert sent == ["CB", "CB-A", "CB-B", "DN"]  # not CB-C (reported), not VN (the scope)
    assert [(d.org_code, d.error) for d in out if not d.ok] == [("DN-A", "no contact e-mail")]
    assert sorted(r[0][0] for r in box.mails[4:]) == [
        "cb-a@example.test",
        "cb-b@example.test",
        "cb@example.test",
        "dn@example.test",
    ]
    _, msg = next(m for m in box.mails if m[0] == ["cb-a@example.test"])
    assert "còn 3 ngày" in str(msg["Subject"])
    body = msg.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "Sở Y tế tỉnh Cao Bằng" in text
    assert f"https://quet.example.vn/reports/{c.id}/CB-A" in text

    # Again the same day, and the next day (still the 3-day occasion): nothing more.
    assert [d for d in report_reminders.remind(s, settings) if d.ok] == []
    tomorrow = TODAY + timedelta(days=1)
    assert [d for d in report_reminders.remind(s, settings, today=tomorrow) if d.ok] == []
    # One day before: the second reminder, once; CB-A has submitted meanwhile.
    reports.submit(s, rd.principal(s, "a", "officer", "CB-A"), c, rd.org(s, "CB-A"))
    s.commit()
    day_before = TODAY + timedelta(days=2)
    second = report_reminders.remind(s, settings, today=day_before)
    s.commit()
    assert sorted(d.org_code for d in second if d.ok) == ["CB", "CB-B", "DN"]
    assert [d for d in report_reminders.remind(s, settings, today=day_before) if d.ok] == []
    assert len(box.mails) == 4 + 7
    kinds = sorted({r.kind for r in s.scalars(sa.select(ReportReminder))})
    assert kinds == [f"d1:{world.deadline}", f"d3:{world.deadline}"]
    # After the deadline nothing is sent.
    assert report_reminders.due(s, TODAY + timedelta(days=4)) == []


# -- the monthly technical report ----------------------------------------------------------------
def test_monthly_report_reads_the_botnet_statistics(db_session: Session) -> None:
    s = db_session
    world = rd.build(s, TODAY)
    month = date(2026, 10, 1)
    cb = rd.org(s, "CB")
    cb.sector = "government"  # a state agency: listed under section 5
    rows = [
        ("month", month, "all", "", "", 1000),
        ("month", date(2026, 9, 1), "all", "", "", 1250),
        ("month", date(2025, 10, 1), "all", "", "", 2000),
        ("month", month, "family", "mirai", "Mirai", 600),
        ("month", month, "family", "ramnit", "Ramnit", 300),
        ("month", date(2026, 9, 1), "family", "mirai", "Mirai", 700),
        ("month", month, "province", "CB", "Cao Bằng", 120),
        ("month", month, "asn", "45899", "VNPT", 500),
        ("month", month, "org", str(cb.id), cb.name, 40),
        ("day", date(2026, 10, 1), "all", "", "", 400),
        ("day", date(2026, 10, 2), "all", "", "", 380),
        ("day", date(2026, 9, 30), "all", "", "", 999),  # not in the month
    ]
    for period, start, dim, key, label, ips in rows:
        s.add(BotnetStat(period=period, start=start, dim=dim, key=key, label=label, ips=ips))
    reports.submit(s, rd.principal(s, "cb", "officer", "CB"), world.campaign, cb)
    s.commit()
    doc = report_monthly.build_monthly_report(s, date(2026, 10, 17))
    assert doc.month == month and doc.ips_month == 1000
    assert doc.ips_previous_month == 1250 and doc.ips_same_month_last_year == 2000
    assert doc.change(doc.ips_month, doc.ips_previous_month) == -20.0
    assert [(p.day, p.ips) for p in doc.daily] == [
        (date(2026, 10, 1), 400),
        (date(2026, 10, 2), 380),
    ]
    assert [(r.label, r.value, r.previous) for r in doc.by_family] == [
        ("Mirai", 600, 700),
        ("Ramnit", 300, None),
    ]
    assert doc.state_agency_ips[0].label == cb.name and doc.state_agency_ips[0].value == 40
    status = {p.code: p for p in doc.participation}
    assert set(status) == {"CB", "DN"}
    assert status["CB"].reported and not status["DN"].reported
    assert (status["CB"].received, status["CB"].deployed) == (4, 3)
    assert doc.issuer == "TRUNG TÂM GIÁM SÁT AN TOÀN KHÔNG GIAN MẠNG QUỐC GIA"
    # Defect 13: a signature block and the issuer's abbreviation in the number.
    assert doc.signer_title == "THỦ TRƯỞNG ĐƠN VỊ" and doc.issuer_short == "TTGSATKGMQG"
    from quet.reports.docx import render_monthly_docx
    from quet.reports.labels import number_line

    assert number_line(doc.number, "BC", doc.issuer_short, "vi") == "Số:      /BC-TTGSATKGMQG"
    import io

    import docx

    buffer = io.BytesIO()
    render_monthly_docx(doc, buffer)
    texts = [
        p.text
        for t in docx.Document(io.BytesIO(buffer.getvalue())).tables
        for c in t._cells
        for p in c.paragraphs
    ]
    assert "THỦ TRƯỞNG ĐƠN VỊ" in texts and "Số:      /BC-TTGSATKGMQG" in texts


def test_report_rows_exist_once_per_campaign_and_org(db_session: Session) -> None:
    s = db_session
    world = rd.build(s, TODAY)
    me = rd.principal(s, "a", "officer", "CB-A")
    reports.edit(s, me, world.campaign, rd.org(s, "CB-A"), {"place": "Cao Bằng"})
    reports.edit(s, me, world.campaign, rd.org(s, "CB-A"), {"number": "12/BC-SYT"})
    s.commit()
    assert s.scalar(sa.select(sa.func.count()).select_from(Report)) == 1
    with pytest.raises(InputError, match="one line"):
        reports.edit(s, me, world.campaign, rd.org(s, "CB-A"), {"place": "a\nb"})


def test_migration_0008_matches_the_models(server_app: FastAPI) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from quet.store.models import Base

    with server_app.state.db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in diff if "report" in repr(d)] == []


# -- review fixes (defects 3-7, 12, 13, 17, 21) -------------------------------------------------
def _stat(s: Session, period: str, start: date, dim: str, key: str, label: str, ips: int) -> None:
    s.add(BotnetStat(period=period, start=start, dim=dim, key=key, label=label, ips=ips))


def test_monthly_state_agencies_are_all_government_units(db_session: Session) -> None:
    s = db_session
    rd.build(s, TODAY)
    from quet.server.services import orgs

    month, before = date(2026, 10, 1), date(2026, 9, 1)
    cb = rd.org(s, "CB")
    cb.sector = "government"  # CB-A and CB-C inherit it; CB-B is a bank: not a state agency
    rd.org(s, "CB-B").sector = "finance"
    extra = []
    for i in range(11):  # more state agencies than a top-10 list holds
        extra.append(orgs.create(s, f"CB-X{i}", f"Ủy ban nhân dân xã Số {i}", "department", cb))
    s.flush()
    _stat(s, "month", month, "all", "", "", 5000)
    _stat(s, "month", month, "org", "", "", 4000)  # the unattributed bucket
    _stat(s, "month", month, "org", str(cb.id), cb.name, 40)
    _stat(s, "month", month, "org", str(rd.org(s, "CB-A").id), "x", 30)
    _stat(s, "month", month, "org", str(rd.org(s, "CB-B").id), "bank", 500)
    _stat(s, "month", month, "org", str(rd.org(s, "DN").id), "dn", 200)  # no sector
    for i, o in enumerate(extra):
        _stat(s, "month", month, "org", str(o.id), o.name, 20 - i)
    _stat(s, "month", before, "org", str(cb.id), cb.name, 25)
    _stat(s, "month", month, "province", "", "", 3000)  # unknown province: biggest, shown last
    _stat(s, "month", month, "province", "Cao Bằng", "Cao Bằng", 120)
    _stat(s, "month", month, "asn", "", "", 70)
    _stat(s, "month", month, "asn", "45899", "VNPT", 500)
    s.commit()
    doc = report_monthly.build_monthly_report(s, month)
    agencies = [(r.label, r.value, r.previous) for r in doc.state_agency_ips]
    assert len(agencies) == 13  # CB, CB-A and the 11 communes: all of them, not a top 10
    assert agencies[0] == (cb.name, 40, 25)
    assert agencies[1] == ("Sở Y tế tỉnh Cao Bằng", 30, None)
    names = {a[0] for a in agencies}
    assert "Sở Tài chính tỉnh Cao Bằng" not in names and "" not in names
    assert not any("Đà Nẵng" in n for n in names)
    assert [(r.label, r.value) for r in doc.by_province] == [("Cao Bằng", 120), ("", 3000)]
    assert [(r.label, r.value) for r in doc.by_isp] == [("VNPT", 500), ("", 70)]


def test_a_month_without_data_is_no_data_not_zero(db_session: Session) -> None:
    s = db_session
    rd.build(s, TODAY)
    _stat(s, "month", date(2026, 10, 1), "all", "", "", 1000)
    s.commit()
    empty = report_monthly.build_monthly_report(s, date(2019, 1, 1))
    assert empty.ips_month is None and empty.ips_previous_month is None
    assert empty.ips_same_month_last_year is None
    # Data this month, none last month nor last year: those are unknown, not 0.
    doc = report_monthly.build_monthly_report(s, date(2026, 10, 1))
    assert doc.ips_month == 1000
    assert doc.ips_previous_month is None and doc.ips_same_month_last_year is None
    assert doc.change(doc.ips_month, doc.ips_previous_month) is None
    from quet.reports.labels import monthly_summary

    assert "Chưa có dữ liệu" in monthly_summary(empty)
    assert report_document.render_bytes(empty, "docx")[:2] == b"PK"  # renders, no crash


def _two_phases(s: Session, world: rd.World) -> None:
    """Phase 1 (60 to 30 days ago, report deadline 25 days ago) and phase 2 (running, deadline
    in 25 days)."""
    from quet.store.models import Phase

    c = world.campaign
    [p1] = c.phases
    p1.name, p1.starts = "Đợt 1", TODAY - timedelta(days=60)
    p1.ends, p1.report_deadline = TODAY - timedelta(days=30), TODAY - timedelta(days=25)
    p2 = Phase(
        campaign_id=c.id,
        number=2,
        name="Đợt 2",
        starts=TODAY - timedelta(days=29),
        ends=TODAY + timedelta(days=20),
        report_deadline=TODAY + timedelta(days=25),
    )
    s.add(p2)
    s.flush()
    s.refresh(c)
    assert [p.number for p in c.phases] == [1, 2]


def test_a_submitted_report_keeps_its_phase(db_session: Session) -> None:
    s = db_session
    world = rd.build(s, TODAY)
    _two_phases(s, world)
    c, unit = world.campaign, rd.org(s, "CB-A")
    when = datetime.combine(TODAY - timedelta(days=40), datetime.min.time(), UTC)
    reports.submit(s, rd.principal(s, "a", "officer", "CB-A"), c, unit, now=when)
    s.commit()
    v = reports.view(s, c, unit)
    assert v.phase is not None and v.phase.label == "Đợt 1"
    assert v.deadline == TODAY - timedelta(days=25) and not v.late
    doc = report_document.document(s, v)
    assert doc.phase == "Đợt 1" and doc.deadline == TODAY - timedelta(days=25)
    assert "(Đợt 1)" in doc.body[0]
    # A snapshot without the phase (older rows): the phase whose dates contain the submission.
    row = reports.get_report(s, c, unit)
    assert row is not None
    row.figures = {k: v for k, v in row.figures.items() if k != "phase"}
    s.commit()
    assert report_document.build_campaign_report(s, c, unit).phase == "Đợt 1"


def test_the_deadline_shown_agrees_with_late(db_session: Session) -> None:
    from quet.server.services import campaigns

    s = db_session
    world = rd.build(s, TODAY)
    _two_phases(s, world)
    c = world.campaign
    # No report and phase 1's deadline has passed: late, and the deadline shown is that one.
    v = reports.view(s, c, rd.org(s, "CB-B"))
    assert v.late and campaigns.is_late(c, None, TODAY)
    assert v.deadline == TODAY - timedelta(days=25) < TODAY and v.phase is not None
    assert v.phase.label == "Đợt 1"
    # The parent's annex says the same of it.
    line = next(x for x in reports.view(s, c, rd.org(s, "CB")).children if x.org.code == "CB-B")
    assert line.late and line.phase == v.phase
    # Before any deadline passed: the running phase's deadline, not late.
    early = reports.view(s, c, rd.org(s, "CB-B"), today=TODAY - timedelta(days=40))
    assert not early.late and early.deadline == TODAY - timedelta(days=25)
    # Reported in phase 2, before its deadline, after phase 1's: late against phase 1's.
    reports.submit(s, rd.principal(s, "b", "officer", "CB-B"), c, rd.org(s, "CB-B"))
    s.commit()
    after = reports.view(s, c, rd.org(s, "CB-B"))
    assert after.status == "submitted" and after.late
    assert after.phase == v.phase and after.deadline < TODAY


def test_the_place_keeps_names_after_a_person(db_session: Session) -> None:
    from quet.server.services import orgs

    place = report_document.place_name
    assert place("Thành phố Hồ Chí Minh") == "Thành phố Hồ Chí Minh"
    assert place("Sở Thông tin và Truyền thông Thành phố Hồ Chí Minh") == "Thành phố Hồ Chí Minh"
    assert place("TP. Hồ Chí Minh") == "Thành phố Hồ Chí Minh"
    assert place("Tỉnh Cao Bằng") == "Cao Bằng" and place("Thành phố Đà Nẵng") == "Đà Nẵng"
    s = db_session
    root = orgs.root(s)
    assert root is not None
    hcm = orgs.create(
        s, "HCM", "Sở Thông tin và Truyền thông Thành phố Hồ Chí Minh", "province", root
    )
    unit = orgs.create(s, "HCM-A", "Sở Y tế", "department", hcm)
    s.flush()
    assert report_document.default_place(s, unit) == "Thành phố Hồ Chí Minh"


def test_overrides_must_agree_with_the_other_figures(db_session: Session) -> None:
    s = db_session
    world = rd.build(s, TODAY)
    rd.add_unit_data(s, world)  # devices 5, scanned 3, infected 2, cleaned 1
    me = rd.principal(s, "a", "officer", "CB-A")
    c, unit = world.campaign, rd.org(s, "CB-A")
    refused = (
        ("scanned", 500, "đã rà quét"),  # > devices 5
        ("devices", 2, "đã rà quét"),  # < scanned 3
        ("infected", 4, "nhiễm mã độc"),  # > scanned 3
        ("cleaned", 3, "bóc gỡ"),  # > infected 2
        ("deployed", 5, "triển khai"),  # > received 1
    )
    for key, value, words in refused:
        with pytest.raises(InputError, match=words):
            reports.override(s, me, c, unit, key, value, "lý do")
    # Raising both sides in the right order is fine; then dropping the larger one is refused.
    reports.override(s, me, c, unit, "devices", 600, "máy chủ ngoài mạng")
    reports.override(s, me, c, unit, "scanned", 500, "rà quét thủ công")
    with pytest.raises(InputError, match="mâu thuẫn"):
        reports.override(s, me, c, unit, "devices", None, "quay về số đo")
    assert reports.view(s, c, unit).values["scanned"] == 500


def test_rows_1_2_say_their_source_and_missing_counts_every_level(db_session: Session) -> None:
    s = db_session
    world = rd.build(s, TODAY, deadline_in=-2)
    c = world.campaign
    for code in ("CB-A", "CB-C"):
        reports.submit(s, rd.principal(s, code.lower(), "officer", code), c, rd.org(s, code))
    reports.submit(s, rd.principal(s, "cb", "officer", "CB"), c, rd.org(s, "CB"))
    s.commit()
    national = reports.view(s, c, rd.org(s, "VN"))
    assert national.missing == ["Sở Thông tin và Truyền thông thành phố Đà Nẵng"]
    assert national.missing_below == ["Sở Tài chính tỉnh Cao Bằng", "Sở Y tế thành phố Đà Nẵng"]
    assert national.notes["devices"] == "3 đơn vị chưa báo cáo (1 trực thuộc, 2 cấp dưới)"
    assert national.notes["received"] == "theo dữ liệu tiếp nhận của hệ thống"
    assert national.notes["deployed"] == "theo dữ liệu tiếp nhận của hệ thống"
    doc = report_document.document(s, national)
    assert any("Sở Y tế thành phố Đà Nẵng" in p for p in doc.body)
    # The missing province's annex row past the deadline: overdue, never "nộp muộn".
    from quet.reports.labels import annex_note

    row = next(r for r in doc.annexes[0].rows if r.code == "DN")
    assert annex_note(row) == "chưa báo cáo; quá hạn"
    # Frozen with the root's snapshot too.
    reports.submit(s, rd.principal(s, "admin2", "admin", "VN"), c, rd.org(s, "VN"))
    s.commit()
    frozen = reports.view(s, c, rd.org(s, "VN"))
    assert frozen.locked and frozen.missing_below == national.missing_below
