"""`quet scan` as a user runs it: the real console script, exit codes, reports, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from conftest import EICAR

QUET = [sys.executable, "-m", "quet"]


def quet(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*QUET, *args], capture_output=True, text=True, timeout=120, **kw)  # type: ignore[call-overload]


def test_exit_codes_clean_found_error(tmp_path: Path) -> None:
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "a.txt").write_text("fine")
    dirty = tmp_path / "dirty"
    dirty.mkdir()
    (dirty / "eicar.com").write_bytes(EICAR)
    assert quet("scan", str(clean)).returncode == 0
    found = quet("scan", str(dirty))
    assert found.returncode == 1
    assert "Quet_Test_EICAR" in found.stderr
    bad = quet("scan", "--max-size", "lots", str(clean))
    assert bad.returncode == 2
    assert "not a size" in bad.stderr
    missing_rules = quet("scan", "--rules", str(tmp_path / "nope.yar"), str(clean))
    assert missing_rules.returncode == 2
    assert "nope.yar" in missing_rules.stderr


def test_vietnamese_by_default(tmp_path: Path) -> None:
    (tmp_path / "eicar.com").write_bytes(EICAR)
    env = {**os.environ, "QUET_LANG": "vi"}
    out = quet("scan", str(tmp_path), env=env)
    assert "Phát hiện" in out.stderr
    assert "tệp nhiễm" in out.stderr


def test_json_and_html_reports(tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "eicar.com").write_bytes(EICAR)
    (corpus / "big.bin").write_bytes(b"\0" * 4096)
    report, page = tmp_path / "r.json", tmp_path / "r.html"
    proc = quet("scan", "--max-size", "1K", "--json", str(report), "--html", str(page), str(corpus))
    assert proc.returncode == 1, proc.stderr
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["schema_version"] == 1
    assert data["files_scanned"] == 1
    assert data["too_large"] == [{"path": str(corpus / "big.bin"), "size": 4096}]
    (finding,) = data["findings"]
    assert finding["name"] == "Quet_Test_EICAR"
    assert finding["kind"] == "yara"
    assert finding["path"] == str(corpus / "eicar.com")
    assert len(finding["sha256"]) == 64
    assert len(data["id"]) == 36
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>")
    assert "Quet_Test_EICAR" in html
    assert "big.bin" in html
    assert "<script" not in html and "http://" not in html and "https://" not in html


def test_json_to_stdout(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("x")
    proc = quet("scan", "--json", "-", str(tmp_path))
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["files_scanned"] == 1


def test_help_teaches(tmp_path: Path) -> None:
    proc = quet("scan", "--help")
    assert proc.returncode == 0
    for word in ("--rules", "--hashes", "--iocs", "--quarantine", "--json", "--html", "exit"):
        assert word in proc.stdout


@pytest.mark.slow
def test_ctrl_c_writes_partial_report(tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "eicar.com").write_bytes(EICAR)
    report = tmp_path / "partial.json"
    # /usr holds gigabytes: far more than can be scanned before the signal arrives.
    proc = subprocess.Popen(
        [*QUET, "scan", "--no-cache", "-j", "2", "--json", str(report), str(corpus), "/usr"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Wait until the workers run (the walk is over and scanning has begun), then a little more.
    parent = psutil.Process(proc.pid)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and len(parent.children(recursive=True)) < 3:
        time.sleep(0.1)
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["interrupted"] is True
    assert data["files_scanned"] > 0
    assert data["finished"]
    assert "Traceback" not in err
    # the file found before the stop is in the partial report, and decides the exit code
    assert [f["name"] for f in data["findings"] if f["path"].endswith("eicar.com")] == [
        "Quet_Test_EICAR"
    ]
    assert proc.returncode == 1
