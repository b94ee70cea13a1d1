"""`quet net scan` and `quet net watch` end to end on the real shared samples: exit codes, the
table, the JSON and JSONL outputs, indicators from the intel store and from IOC files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner, Result

from quet.cli import net as net_cli
from quet.cli.net import app
from quet.indicators.model import make
from quet.store.db import connect
from quet.store.importer import import_indicators

ZEEK = Path(__file__).parent / "data" / "netwatch" / "zeek" / "btest-baseline"
DNS = ZEEK / "opt.basic" / "dns.log"
CONN = ZEEK / "opt.basic" / "conn.log"


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(net_cli, "out", Console(width=250))
    monkeypatch.setattr(net_cli, "err", Console(width=250, stderr=True))


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def bad_iocs(tmp_path: Path) -> Path:
    path = tmp_path / "iocs.txt"
    path.write_text("# a plain list\nwikimedia.org\nhigan.org\n198.51.100.7\nnot a value!\n")
    return path


@pytest.fixture
def clean_iocs(tmp_path: Path) -> Path:
    path = tmp_path / "clean.txt"
    path.write_text("michigan-never-seen.org\n192.0.2.99\nwikimedia.org.evil.test\n")
    return path


def test_scan_with_a_domain_from_the_log_alerts(bad_iocs: Path, tmp_path: Path) -> None:
    jsonl = tmp_path / "alerts.jsonl"
    report = tmp_path / "report.json"
    res = run(
        "scan",
        str(DNS),
        "--iocs",
        str(bad_iocs),
        "--no-intel",
        "--stream",
        "--jsonl",
        str(jsonl),
        "--json",
        str(report),
    )
    assert res.exit_code == 1, res.output
    assert "141.142.220.118" in res.output and "wikimedia.org (domain)" in res.output
    assert "1 alert(s)" in res.output
    assert "Read 34 events" in res.output and "zeek:dns: 34 events" in res.output
    [alert] = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert (alert["client"], alert["indicator"], alert["count"]) == (
        "141.142.220.118",
        "wikimedia.org",
        10,
    )
    assert alert["examples"][0] == {"file": str(DNS), "line": 12, "value": "upload.wikimedia.org"}
    data = json.loads(report.read_text())
    assert data["alerts"] == [alert]
    assert data["summary"]["events"] == 34
    assert data["summary"]["events_by_source"] == {"zeek:dns": 34}
    assert data["summary"]["indicator_issues"] == 1  # "not a value!"


def test_scan_clean_indicators_exit_zero(clean_iocs: Path) -> None:
    res = run("scan", str(DNS), str(CONN), "--iocs", str(clean_iocs), "--no-intel")
    assert res.exit_code == 0, res.output
    assert "No alerts" in res.output


def test_scan_missing_file_is_exit_two(clean_iocs: Path, tmp_path: Path) -> None:
    res = run("scan", str(tmp_path / "nope.log"), "--iocs", str(clean_iocs), "--no-intel")
    assert res.exit_code == 2
    assert "nope.log" in res.output and "no such file" in res.output


def test_scan_without_indicators_is_exit_two() -> None:
    res = run("scan", str(DNS), "--no-intel")
    assert res.exit_code == 2
    assert "No indicators" in res.output


def test_scan_uses_the_intel_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'intel.sqlite'}"
    engine = connect(url)
    import_indicators(engine, [make("domain", "wikimedia.org", family="Wiki")], source="feed-x")
    engine.dispose()
    res = run("scan", str(DNS), "--db", url, "--json", "-")
    assert res.exit_code == 1, res.output
    report = json.loads(res.output[res.output.index('{\n  "summary"') :])
    [alert] = report["alerts"]
    assert (alert["family"], alert["source_feed"]) == ("Wiki", "feed-x")


def test_scan_internal_option_turns_the_sides(tmp_path: Path) -> None:
    # In conn.log 141.142.220.118 talks to 208.80.152.3; said to be ours, 208.80.152.3 is remote.
    iocs = tmp_path / "ips.txt"
    iocs.write_text("208.80.152.3\n141.142.220.118\n")
    res = run(
        "scan",
        str(CONN),
        "--iocs",
        str(iocs),
        "--no-intel",
        "--json",
        "-",
        "--internal",
        "141.142.0.0/16",
    )
    assert res.exit_code == 1, res.output
    report = json.loads(res.output[res.output.index('{\n  "summary"') :])
    assert {(a["client"], a["indicator"]) for a in report["alerts"]} == {
        ("141.142.220.118", "208.80.152.3")
    }


@pytest.mark.parametrize("internal", [[], ["--internal", "141.142.0.0/16"]])
def test_batch_and_stream_agree(bad_iocs: Path, tmp_path: Path, internal: list[str]) -> None:
    iocs = tmp_path / "more.txt"
    iocs.write_text("208.80.152.3\n141.142.220.118\nwikimedia.org\n")

    def alerts(mode: str) -> list[dict[str, object]]:
        res = run(
            "scan",
            str(DNS),
            str(CONN),
            "--iocs",
            str(bad_iocs),
            "--iocs",
            str(iocs),
            "--no-intel",
            mode,
            "--json",
            "-",
            *internal,
        )
        assert res.exit_code == 1, res.output
        data = json.loads(res.output[res.output.index('{\n  "summary"') :])
        assert data["summary"]["mode"] == mode.strip("-")
        return sorted(data["alerts"], key=lambda a: a["id"])

    streamed = alerts("--stream")
    assert len(streamed) >= 2
    assert alerts("--batch") == streamed


def test_watch_follows_and_writes_jsonl(bad_iocs: Path, tmp_path: Path) -> None:
    log = tmp_path / "dns.log"
    log.write_bytes(DNS.read_bytes())
    jsonl = tmp_path / "live.jsonl"
    res = run(
        "watch",
        str(log),
        "--iocs",
        str(bad_iocs),
        "--no-intel",
        "--from-start",
        "--duration",
        "1",
        "--interval",
        "0.1",
        "--jsonl",
        str(jsonl),
        "--post",
        "http://127.0.0.1:9/api/v1/net/alerts",
    )
    assert res.exit_code == 1, res.output
    assert "141.142.220.118 → wikimedia.org" in res.output
    assert "Could not post alerts" in res.output
    lines = [json.loads(x) for x in jsonl.read_text().splitlines()]
    assert lines[0]["indicator"] == "wikimedia.org" and lines[0]["count"] == 1
    assert lines[-1]["id"] == lines[0]["id"] and lines[-1]["count"] == 10


def test_watch_needs_something_to_watch(bad_iocs: Path) -> None:
    res = run("watch", "--iocs", str(bad_iocs), "--no-intel")
    assert res.exit_code == 2
    assert "Nothing to watch" in res.output
