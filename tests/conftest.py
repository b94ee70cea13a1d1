"""Shared fixtures: every test gets its own QUET_HOME; real sample files are found or required."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytest_plugins = ["server_fixtures"]

DATA = Path(__file__).parent / "data"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CLAM_TESTFILES = Path("/usr/share/clamav-testfiles")
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
IN_CI = os.environ.get("CI") == "true"


@pytest.fixture(autouse=True)
def quet_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("quet-home")
    monkeypatch.setenv("QUET_HOME", str(home))
    monkeypatch.setenv("QUET_LANG", "en")
    return home


def require(thing: str, ok: bool) -> None:
    """Skip on a developer machine without `thing`; in CI a missing `thing` is a failure."""
    if ok:
        return
    if IN_CI:
        pytest.fail(f"{thing} is required in CI (.ci/run installs it)")
    pytest.skip(f"{thing} not installed")


@pytest.fixture
def clam_testfiles() -> Path:
    require("clamav-testfiles", CLAM_TESTFILES.is_dir())
    return CLAM_TESTFILES


@pytest.fixture
def yara_cli() -> str:
    path = shutil.which("yara")
    require("yara (Debian package)", path is not None)
    assert path is not None
    return path
