"""`quet org` on SQLite and PostgreSQL: provinces (34 and 63), CSV import with a bad line named
file:line, the tree listing, people with one-time passwords and enrollment tokens."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from conftest_db import BACKENDS, database_url
from quet.cli.org import app
from quet.errors import InputError
from quet.server import security
from quet.server.db import Database
from quet.server.services import users
from quet.store.models import AuditEntry, EnrollmentToken, Organisation

CSV = """\
code,name,parent_code,kind,ip_ranges,domains,asns,contact_name,contact_email,contact_phone
VN-04,Cao Bằng,VN,province,,caobang.gov.vn,,,,
VN-04-SYT,Sở Y tế tỉnh Cao Bằng,VN-04,department,192.0.2.32/27,,,,soyte@caobang.gov.vn,
VN-04-X,Mồ côi,KHONG-CO,unit,,,,,,
"""


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as url:
        yield url


def run(db_url: str, *args: str) -> Result:
    return CliRunner().invoke(app, [*args, "--database-url", db_url])


def count_orgs(db_url: str) -> int:
    db = Database(db_url)
    try:
        with db.sessions() as session:
            return session.scalar(sa.select(sa.func.count()).select_from(Organisation)) or 0
    finally:
        db.dispose()


def test_provinces_2025_then_list(db_url: str) -> None:
    first = run(db_url, "provinces", "--edition", "2025")
    assert first.exit_code == 0, first.output
    assert "admin" in first.stderr  # the first start makes the administrator
    assert "Added: 34" in first.stdout
    assert count_orgs(db_url) == 35
    again = run(db_url, "provinces")
    assert "Added: 0" in again.stdout and "Unchanged: 34" in again.stdout
    assert "admin" not in again.stderr
    listing = run(db_url, "list")
    assert listing.exit_code == 0
    assert "VN-01" in listing.stdout and "Hà Nội" in listing.stdout


def test_provinces_2008(db_url: str) -> None:
    result = run(db_url, "provinces", "--edition", "2008")
    assert result.exit_code == 0, result.output
    assert "Added: 63" in result.stdout
    assert count_orgs(db_url) == 64
    bad = run(db_url, "provinces", "--edition", "1975")
    assert isinstance(bad.exception, InputError)


def test_import_reports_bad_line(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "donvi.csv"
    path.write_text(CSV, encoding="utf-8")
    result = run(db_url, "import", str(path))
    assert result.exit_code == 0, result.output
    assert "Added: 2" in result.stdout and "Rejected: 1" in result.stdout
    assert f"{path}:4:" in result.stderr.replace("\n", "") and "KHONG-CO" in result.stderr
    listing = run(db_url, "list", "--under", "VN-04")
    assert "VN-04-SYT" in listing.stdout and "soyte@caobang.gov.vn" in listing.stdout
    assert "VN-01" not in listing.stdout
    missing = run(db_url, "import", str(tmp_path / "none.csv"))
    assert isinstance(missing.exception, InputError)


def test_user_add_and_enroll_token(db_url: str) -> None:
    assert run(db_url, "provinces").exit_code == 0
    made = run(db_url, "user-add", "lan", "--role", "officer", "--org", "VN-04")
    assert made.exit_code == 0, made.output
    password = made.stdout.strip().splitlines()[-1]
    token_run = run(db_url, "enroll-token", "VN-04", "--label", "phòng máy chủ")
    assert token_run.exit_code == 0, token_run.output
    token = token_run.stdout.strip().splitlines()[-1]
    assert token.startswith("qe_")

    db = Database(db_url)
    try:
        with db.sessions() as session:
            user = users.authenticate(session, "lan", password)
            assert user is not None and user.role == "officer" and user.must_change_password
            row = session.scalars(sa.select(EnrollmentToken)).one()
            assert row.token_hash == security.token_hash(token) and row.label == "phòng máy chủ"
            actions = set(session.scalars(sa.select(AuditEntry.action)))
            assert {"org.create", "user.create", "enrollment_token.create"} <= actions
    finally:
        db.dispose()

    assert isinstance(
        run(db_url, "user-add", "lan", "--role", "viewer", "--org", "VN").exception, InputError
    )
    nowhere = run(db_url, "user-add", "hoa", "--role", "viewer", "--org", "NOWHERE")
    assert isinstance(nowhere.exception, InputError)
    assert isinstance(run(db_url, "enroll-token", "NOWHERE").exception, InputError)
