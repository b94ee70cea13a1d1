"""The HTML scan report in a real browser (Debian's headless Chromium): it renders, in Vietnamese."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import EICAR, require

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.mark.slow
def test_report_renders_in_chromium(tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    require("chromium (Debian package)", chromium is not None)
    assert chromium is not None
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "eicar.com").write_bytes(EICAR)
    page = tmp_path / "report.html"
    subprocess.run(
        [sys.executable, "-m", "quet", "scan", "--html", str(page), str(corpus)],
        env={**os.environ, "QUET_LANG": "vi"},
        capture_output=True,
        timeout=120,
    )
    profile = tmp_path / "profile"
    dom = subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert "Phát hiện 1 tệp nhiễm mã độc" in dom
    assert "Quet_Test_EICAR" in dom
    shot = tmp_path / "shot.png"
    subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={profile}", f"--screenshot={shot}",
         "--window-size=1200,800", page.as_uri()],
        capture_output=True,
        timeout=120,
    )  # fmt: skip
    png = shot.read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 20_000
