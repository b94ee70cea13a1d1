"""`quet signatures add|list`, and scans picking installed signatures up."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import DATA, EICAR

QUET = [sys.executable, "-m", "quet"]


def quet(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*QUET, *args], capture_output=True, text=True, timeout=120)


def test_install_then_scan_uses_installed(tmp_path: Path, quet_home: Path) -> None:
    listing = quet("signatures", "list")
    assert listing.returncode == 0
    assert "starter" in listing.stderr
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copy(DATA / "yara" / "signature-base" / "gen_mimikatz.yar", mixed)
    shutil.copy(DATA / "loki" / "filename-iocs.first500.txt", mixed / "filename-iocs.txt")
    (mixed / "README.md").write_text("notes for people")
    (mixed / "mine.hsb").write_text(
        "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f:68:Test.EICAR.Hash\n"
    )
    added = quet("signatures", "add", str(mixed))
    assert added.returncode == 0, added.stderr
    assert (quet_home / "signatures" / "mixed" / "gen_mimikatz.yar").exists()
    listing = quet("signatures", "list")
    assert listing.returncode == 0, listing.stderr
    assert "No bad lines" in listing.stderr
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "eicar.com").write_bytes(EICAR)
    scan = quet("scan", "--json", "-", str(corpus))
    assert scan.returncode == 1
    assert "Test.EICAR.Hash" in scan.stdout
    assert (
        "Quet_Test_EICAR" not in scan.stdout
    )  # the starter set is not used once something is installed


def test_bad_lines_are_listed_with_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.hsb"
    bad.write_text(
        "# header\n"
        "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f:68:Good\n"
        "nothex:12:Broken\n"
    )
    listing = quet("signatures", "list", "--hashes", str(bad))
    assert listing.returncode == 1
    assert f"{bad}:3" in listing.stderr.replace("\n", "")
