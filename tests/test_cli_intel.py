"""`quet intel` end to end: import real samples, export, lookup, stats, expire, sightings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner, Result

from conftest_db import BACKENDS, database_url
from quet.cli import intel as intel_cli
from quet.cli.intel import app
from quet.errors import InputError
from quet.indicators.formats import read_path
from quet.indicators.model import IssueLog

DATA = Path(__file__).parent / "data"
CSV = DATA / "csv" / "indicators.csv"
C2 = DATA / "loki" / "c2-iocs.first500.txt"


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as url:
        yield url


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    # Rich sizes tables to the terminal; under xdist there is none, and cells would wrap.
    monkeypatch.setattr(intel_cli, "out", Console(width=250))
    monkeypatch.setattr(intel_cli, "err", Console(width=250, stderr=True))


def run(*args: str, db: str) -> Result:
    return CliRunner().invoke(app, [*args, "--db", db])


def test_import_then_stats_and_lookup(db: str) -> None:
    res = run("import", str(CSV), str(C2), "--no-warninglists", db=db)
    assert res.exit_code == 0, res.output
    assert "Import summary" in res.output
    assert "474" in res.output and "indicators.csv" in res.output
    res = run("stats", "--json", db=db)
    data = json.loads(res.output)
    keys = {i.key() for f in (CSV, C2) for i in read_path(f, IssueLog())}
    assert data["total"] == len(keys) == 9 + 474 - 3  # suroot.com & co. are in both
    assert data["by_source"] == {"indicators.csv": 9, "c2-iocs.first500.txt": 474}
    res = run("lookup", "www.suroot.com", "--json", db=db)
    assert res.exit_code == 0
    [rec] = json.loads(res.output)
    assert (rec["value"], rec["matched"], rec["name"]) == (
        "suroot.com",
        "parent-domain",
        "FireEye Operation Snowman",
    )
    # Listed by both files: one indicator, two sources.
    assert [s["source"] for s in rec["sources"]] == ["c2-iocs.first500.txt", "indicators.csv"]
    res = run("lookup", "michigan.org", db=db)
    assert res.exit_code == 1
    assert "not in the intel store" in res.output


def test_reimport_counts_updates(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.sqlite'}"
    run("import", str(CSV), "--source", "mine", "--no-warninglists", db=url)
    res = run(
        "import", str(CSV), "--source", "mine", "--no-warninglists", "--format", "csv", db=url
    )
    assert res.exit_code == 0
    row = next(line for line in res.output.splitlines() if "indicators.csv" in line)
    assert [c.strip() for c in row.split("│")[3:8]] == ["9", "0", "9", "0", "0"]


def test_bad_lines_and_missing_files(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.sqlite'}"
    bad = tmp_path / "bad.csv"
    bad.write_text("type,value\nipv4,192.0.2.1\nipv4,not-an-ip\ndomain,ok.example\n")
    res = run("import", str(bad), str(tmp_path / "missing.txt"), "--no-warninglists", db=url)
    assert res.exit_code == 0, res.output
    assert "No such file or folder" in res.output
    assert "bad.csv:3" in res.output
    row = next(line for line in res.output.splitlines() if "bad.csv" in line and "│" in line)
    assert [c.strip() for c in row.split("│")[3:8]] == ["2", "2", "0", "0", "1"]
    res = run("import", str(tmp_path / "missing.txt"), db=url)
    assert res.exit_code == 2
    empty = tmp_path / "empty.csv"
    empty.write_text("type,value\n")
    assert run("import", str(empty), "--no-warninglists", db=url).exit_code == 2
    res = run("import", str(bad), "--format", "nope", db=url)
    assert isinstance(res.exception, InputError) and "known:" in str(res.exception)


def test_warninglist_option_suppresses(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.sqlite'}"
    lst = tmp_path / "list.json"
    lst.write_text(
        json.dumps(
            {
                "name": "Local allow list",
                "description": "ours",
                "version": 1,
                "type": "hostname",
                "matching_attributes": ["domain", "hostname", "url"],
                "list": ["suroot.com"],
            }
        )
    )
    res = run("import", str(CSV), "--warninglist", str(lst), db=url)
    assert res.exit_code == 0, res.output
    assert "suroot.com — Local allow list" in res.output
    assert run("lookup", "suroot.com", db=url).exit_code == 1


def test_export_filters_and_false_positives(db: str, tmp_path: Path) -> None:
    assert run("import", str(CSV), str(C2), "--no-warninglists", db=db).exit_code == 0
    out = tmp_path / "out.csv"
    res = run("export", "--format", "csv", "-o", str(out), "--type", "ipv4", db=db)
    assert res.exit_code == 0, res.output
    issues = IssueLog()
    ips = {i.value for i in read_path(out, issues)}
    expected = {
        i.value for f in (CSV, C2) for i in read_path(f, IssueLog()) if i.type.value == "ipv4"
    }
    assert ips == expected and issues.count == 0 and len(ips) > 10
    victim = sorted(ips)[0]
    res = run("sighting", victim, "--false-positive", "--where", "pc-1", "--note", "lab", db=db)
    assert res.exit_code == 0, res.output
    run("export", "--format", "csv", "-o", str(out), "--type", "ipv4", db=db)
    assert {i.value for i in read_path(out, IssueLog())} == ips - {victim}
    assert run("lookup", victim, db=db).exit_code == 1
    res = run("lookup", victim, "--all", "--json", db=db)
    [rec] = json.loads(res.output)
    assert rec["status"] == "false_positive" and rec["sightings"][0]["where"] == "pc-1"
    res = run("export", "--format", "nope", "-o", str(out), db=db)
    assert isinstance(res.exception, InputError) and "csv" in str(res.exception)
    res = run("sighting", victim, "--seen", "--false-positive", db=db)
    assert isinstance(res.exception, InputError)


def test_expire_with_ttl(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.sqlite'}"
    run("import", str(CSV), "--no-warninglists", db=url)
    res = run("expire", db=url)
    assert res.exit_code == 0 and "Marked 0 indicator(s) expired" in res.output
    # A zero-hour TTL for domains expires both stored domains right away.
    res = run("expire", "--ttl", "domain=0h", db=url)
    assert "Marked 2 indicator(s) expired" in res.output, res.output
    res = run("expire", "--ttl", "bogus=1d", db=url)
    assert isinstance(res.exception, InputError)
    data = json.loads(run("stats", "--json", db=url).output)
    assert data["by_status"] == {"active": 7, "expired": 2}


def test_vietnamese_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUET_LANG", "vi")
    url = f"sqlite:///{tmp_path / 's.sqlite'}"
    res = run("import", str(CSV), "--no-warninglists", db=url)
    assert "Kết quả nhập" in res.output and "Thêm mới" in res.output


def _mounted() -> bool:
    from quet.cli import main

    # Commands are registered lazily by main(); the table of them says whether intel is there.
    return "intel" in getattr(main, "COMMANDS", {})


def test_python_m_quet_intel(tmp_path: Path) -> None:
    if not _mounted():
        pytest.skip("`quet intel` is not mounted in quet.cli.main yet")
    env = {**os.environ, "QUET_INTEL_DB": f"sqlite:///{tmp_path / 'cli.sqlite'}", "COLUMNS": "200"}

    def quet(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "quet", "intel", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )

    res = quet("import", str(CSV), "--no-warninglists")
    assert res.returncode == 0, res.stderr
    res = quet("lookup", "58.64.200.7", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)[0]["value"] == "58.64.200.0/24"
    assert quet("lookup", "192.0.2.99").returncode == 1
    res = quet("lookup", "not a value")
    assert res.returncode == 2 and "error" in res.stderr.lower()
    assert quet("import", str(tmp_path / "nothing.csv")).returncode == 2
