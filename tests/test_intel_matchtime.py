"""Warninglists suppress hits at match time too: `quet intel lookup` of a known-benign value."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def quet(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "quet", *args], capture_output=True, text=True, timeout=120
    )


def test_benign_value_is_not_a_hit_even_when_stored(tmp_path: Path) -> None:
    feed = tmp_path / "feed.csv"
    feed.write_text("value,type,name\n10.1.2.3,ipv4,private\n185.220.101.4,ipv4,c2\n")
    assert quet("intel", "import", "--no-warninglists", str(feed)).returncode == 0
    benign = quet("intel", "lookup", "10.1.2.3")
    assert benign.returncode == 1
    assert "RFC 1918" in benign.stderr
    shown = quet("intel", "lookup", "--no-warninglists", "10.1.2.3")
    assert shown.returncode == 0
    assert "private" in shown.stdout + shown.stderr
    assert quet("intel", "lookup", "185.220.101.4").returncode == 0
