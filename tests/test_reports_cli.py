"""`quet report` end to end on a real SQLite database (and PostgreSQL for `generate`): write the
campaign report in all three formats, reopen each file (python-docx, openpyxl, `pdftotext`) and
check the figures equal the database and the Vietnamese diacritics are intact; the monthly
technical report; `status`; `remind` through a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from docx import Document
from openpyxl import load_workbook

import reports_data as rd
from conftest import require
from conftest_db import BACKENDS, database_url
from quet.reports.dates import vn_value
from quet.server.app import bootstrap
from quet.server.db import Database
from quet.server.services import report_figures as rf
from quet.server.services import reports
from quet.server.settings import Settings
from test_reports_service import Mailbox, free_port

TODAY = datetime.now(UTC).date()
FORM_ROW_1 = "Tổng số cơ quan, tổ chức, doanh nghiệp nhận được thông tin về chiến dịch"


def quet(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "quet", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(params=BACKENDS)
def world_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A database with the report world: CB-A has data and a submitted report (devices
    overridden to 6 with a reason); CB-C has data but no report."""
    with database_url(request.param, tmp_path) as url:
        settings = Settings(database_url=url)
        db = Database(settings.resolved_database_url())
        bootstrap(db, settings)
        with db.sessions() as s:
            world = rd.build(s, TODAY)
            rd.add_unit_data(s, world, "CB-A")
            rd.add_unit_data(s, world, "CB-C")
            me = rd.principal(s, "a", "officer", "CB-A")
            unit = rd.org(s, "CB-A")
            reports.edit(s, me, world.campaign, unit, {"evaluation": "Đánh giá: đạt yêu cầu."})
            reports.override(s, me, world.campaign, unit, "devices", 6, "Thêm 1 máy chủ dự phòng")
            reports.submit(s, me, world.campaign, unit)
            s.commit()
            cid = world.campaign.id
        db.dispose()
        yield url, cid


def _expected(url: str, cid: int, code: str) -> dict[str, int | float | None]:
    """The province's figures straight from the database, through the service."""
    db = Database(Settings(database_url=url).resolved_database_url())
    try:
        with db.sessions() as s:
            from quet.store.models import Campaign

            campaign = s.get(Campaign, cid)
            assert campaign is not None
            return dict(reports.view(s, campaign, rd.org(s, code)).values)
    finally:
        db.dispose()


def test_generate_all_three_formats_and_reopen_them(
    world_db: tuple[str, int], tmp_path: Path
) -> None:
    url, cid = world_db
    expected = _expected(url, cid, "CB")
    # The province: its own nothing + CB-A's submitted snapshot (6 after the override); CB-C's
    # data is not counted (no report), and 2 units are missing.
    assert expected["devices"] == 6 and expected["infected"] == 2
    assert expected["received"] == 4 and expected["deployed"] == 3
    env = {"QUET_DATABASE_URL": url}

    out = tmp_path / "cb.docx"
    r = quet("report", "generate", "--campaign", str(cid), "--org", "CB", "-o", str(out), env=env)
    assert r.returncode == 0, r.stderr
    doc = Document(str(out))
    cells = [[c.text.strip() for c in row.cells] for t in doc.tables for row in t.rows]
    text = "\n".join(p.text for p in doc.paragraphs) + "\n".join(" | ".join(c) for c in cells)
    assert FORM_ROW_1 in text and "Tổng số cơ quan tổ chức triển khai chiến dịch" in text
    assert "SỞ THÔNG TIN VÀ TRUYỀN THÔNG TỈNH CAO BẰNG" in text
    form = {c[1]: c[2] for c in cells if len(c) >= 4 and c[1] in {s.label for s in rf.ROWS}}
    assert form[FORM_ROW_1] == "4"
    assert form[rf.BY_KEY["devices"].label] == "6"
    assert form[rf.BY_KEY["infected"].label] == "2"
    assert "Sở Tài chính tỉnh Cao Bằng" in text  # in the annex, not reported
    assert "2 đơn vị chưa báo cáo" in text

    out = tmp_path / "cb.xlsx"
    r = quet("report", "generate", "--org", "CB", "--format", "xlsx", "-o", str(out), env=env)
    assert r.returncode == 0, r.stderr
    book = load_workbook(out)
    sheet = book.worksheets[0]
    values: dict[str, object] = {}
    for row in sheet.iter_rows(values_only=True):
        for i, cell in enumerate(row):
            if isinstance(cell, str) and cell in {s.label for s in rf.ROWS}:
                values[cell] = next(v for v in row[i + 1 :] if v is not None)
    for spec in rf.ROWS:
        want = expected[spec.key]
        got = values[spec.label]
        if want is None:
            assert got in (None, "—"), spec.key
        else:
            assert isinstance(got, int | float), (spec.key, got)  # numbers, not text
            assert got == pytest.approx(want), spec.key
    assert len(book.worksheets) >= 2  # the form and the children's annex
    names = [c for ws in book.worksheets[1:] for r in ws.iter_rows(values_only=True) for c in r]
    assert "Sở Giáo dục và Đào tạo tỉnh Cao Bằng" in names

    require("pdftotext (poppler-utils)", shutil.which("pdftotext") is not None)
    out = tmp_path / "cb.pdf"
    r = quet("report", "generate", "--org", "CB", "-f", "pdf", "-o", str(out), env=env)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes().startswith(b"%PDF")
    pdf_text = subprocess.run(
        ["pdftotext", "-layout", str(out), "-"], capture_output=True, text=True, check=True
    ).stdout
    flat = " ".join(pdf_text.split())
    assert "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in flat
    assert "Tổng số cơ quan, tổ chức, doanh nghiệp" in flat
    assert "Sở Tài chính tỉnh Cao Bằng" in flat and "Thêm 1 máy chủ dự phòng" not in flat
    # Part 2's rows: "STT   Nội dung   Số lượng   Ghi chú", the number on the row's middle line.
    found: dict[int, str] = {}
    for line in pdf_text.splitlines():
        parts = re.split(r"\s{2,}", line.strip())
        if len(parts) >= 2 and parts[0].isdigit() and int(parts[0]) <= len(rf.ROWS):
            value = next((c for c in parts[1:] if re.fullmatch(r"[\d.]+(,\d+)?( %)?|—", c)), None)
            if value is not None:
                found.setdefault(int(parts[0]), value)
    for i, spec in enumerate(rf.ROWS, start=1):
        want = expected[spec.key]
        shown = vn_value(want, spec.unit)  # 1.234 and 40 %: the Vietnamese forms
        assert found[i] == shown, (spec.key, found.get(i), shown)


def test_generate_defaults_the_unit_report_and_monthly(
    world_db: tuple[str, int], tmp_path: Path
) -> None:
    url, _ = world_db
    env = {"QUET_DATABASE_URL": url}
    out = tmp_path / "a.docx"
    # Defaults: the latest campaign; the format from the file name.
    r = quet("report", "generate", "--org", "CB-A", "-o", str(out), env=env)
    assert r.returncode == 0, r.stderr
    text = "\n".join(c.text for t in Document(str(out)).tables for row in t.rows for c in row.cells)
    assert "Thêm 1 máy chủ dự phòng" in text  # the override's reason in Ghi chú
    assert "Đánh giá: đạt yêu cầu." in "\n".join(p.text for p in Document(str(out)).paragraphs)
    r = quet("report", "generate", "--monthly", "2026-10", "-o", str(tmp_path / "m.xlsx"), env=env)
    assert r.returncode == 0, r.stderr
    assert load_workbook(tmp_path / "m.xlsx").worksheets
    bad = quet("report", "generate", "-o", str(tmp_path / "x.txt"), env=env)
    assert bad.returncode == 2 and "docx, xlsx or pdf" in bad.stderr
    bad = quet("report", "generate", "--org", "NOPE", "-o", str(out), env=env)
    assert bad.returncode == 2 and "NOPE" in bad.stderr
    # A missing folder is refused, never created behind the person's back.
    nowhere = tmp_path / "khong-co" / "a.docx"
    bad = quet("report", "generate", "--org", "CB-A", "-o", str(nowhere), env=env)
    assert bad.returncode == 2 and "No folder" in bad.stderr and str(nowhere.parent) in bad.stderr
    assert not nowhere.parent.exists()


def test_status_and_remind(world_db: tuple[str, int], tmp_path: Path) -> None:
    url, _ = world_db
    env = {"QUET_DATABASE_URL": url, "COLUMNS": "200"}
    r = quet("report", "status", "--org", "CB", env=env)
    assert r.returncode == 0, r.stderr
    assert "Sở Y tế tỉnh Cao Bằng" in r.stdout and "Submitted" in r.stdout
    assert "1/3 units reported; 2 missing" in r.stdout
    # The deadline with its phase, and per unit the deadline its late flag is judged by.
    deadline = (TODAY + timedelta(days=10)).isoformat()
    assert f"Đợt 1: report deadline {deadline}" in r.stdout
    assert r.stdout.count(f"Đợt 1 {deadline}") == 3
    # Nothing is due 10 days before the deadline.
    r = quet("report", "remind", env=env)
    assert r.returncode == 0 and "No reminders are due" in r.stdout
    # Move the deadline to 3 days ahead, then remind through a real SMTP server.
    import sqlalchemy as sa

    from quet.store.models import Phase

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.update(Phase).values(report_deadline=TODAY + timedelta(days=3)))
    engine.dispose()
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        smtp = {"QUET_SMTP_HOST": "127.0.0.1", "QUET_SMTP_PORT": str(port)}
        r = quet("report", "remind", env=env | smtp)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "Sent 5 reminders, 0 failed" in r.stdout  # CB, CB-B, CB-C, DN, DN-A
        r = quet("report", "remind", env=env | smtp)
        assert "No reminders are due" in r.stdout  # once each
    finally:
        controller.stop()
    assert len(box.mails) == 5


def test_help_teaches() -> None:
    r = quet("report", "generate", "--help", env={"COLUMNS": "120"})
    assert r.returncode == 0
    for word in ("--campaign", "--org", "--format", "--monthly", "Nghị định 30/2020"):
        assert word in r.stdout
