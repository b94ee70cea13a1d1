"""Kill the quarantining process after every step and check recovery never loses the file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import pyzipper

from quet.scanner.quarantine import CRASH_ENV, CRASH_STEPS, PASSWORD, Vault

SRC = Path(__file__).resolve().parents[1] / "src"
CHILD = (
    "import sys; from quet.scanner.quarantine import Vault; "
    "Vault().quarantine(sys.argv[1], 'Crash.Test')"
)
# Where each crash must end up after recovery: before verification the move is undone,
# after it the move is finished.
EXPECTED = {
    "begin": "original",
    "written": "original",
    "renamed": "original",
    "verified": "vault",
    "removed": "vault",
}


def run_child(path: Path, home: Path, crash_at: str | None) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    env["QUET_HOME"] = str(home)
    env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    if crash_at:
        env[CRASH_ENV] = crash_at
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(path)], env=env, capture_output=True, timeout=60
    )


def vault_copies(root: Path) -> list[bytes]:
    """Decrypted payloads of every complete-looking zip (including an unrenamed .part)."""
    out = []
    for zpath in sorted([*root.glob("*.zip"), *root.glob("*.zip.part")]):
        try:
            with pyzipper.AESZipFile(zpath) as zf:
                zf.setpassword(PASSWORD)
                out.append(zf.read("payload"))
        except Exception:
            continue  # a partial zip is not a copy
    return out


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("QUET_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(CRASH_ENV, raising=False)
    return tmp_path / "home"


def test_all_steps_are_covered() -> None:
    assert set(EXPECTED) == set(CRASH_STEPS)


def test_child_without_crash_succeeds(home: Path, tmp_path: Path) -> None:
    victim = tmp_path / "ok.bin"
    victim.write_bytes(b"fine")
    result = run_child(victim, home, None)
    assert result.returncode == 0, result.stderr.decode()
    assert not victim.exists()
    assert [e.original_path for e in Vault().list()] == [str(victim)]


@pytest.mark.slow
@pytest.mark.parametrize("step", CRASH_STEPS)
def test_crash_at_each_step_loses_nothing(step: str, home: Path, tmp_path: Path) -> None:
    data = os.urandom(300_000) + b"EICAR-like tail"
    victim = tmp_path / "victim.bin"
    victim.write_bytes(data)

    result = run_child(victim, home, step)
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()

    root = home / "quarantine"
    # Right after the crash the bytes live somewhere, intact.
    original_ok = victim.exists() and victim.read_bytes() == data
    assert original_ok or data in vault_copies(root)

    actions = Vault().recover()
    assert len(actions) == 1, actions

    entries = Vault().list()
    if EXPECTED[step] == "original":
        assert victim.read_bytes() == data
        assert entries == []
        assert vault_copies(root) == []
    else:
        assert not victim.exists()
        assert [e.original_path for e in entries] == [str(victim)]
        assert vault_copies(root) == [data]
        assert Vault().restore(entries[0].id) == victim
        assert victim.read_bytes() == data
    leftovers = [p.name for p in root.iterdir() if p.suffix in (".part", ".tmp")]
    assert leftovers == []
    assert Vault().recover() == []  # nothing left to repair


@pytest.mark.slow
@pytest.mark.parametrize("step", ["written", "renamed"])
def test_unverified_copy_is_kept_when_original_vanished(
    step: str, home: Path, tmp_path: Path
) -> None:
    data = os.urandom(50_000)
    victim = tmp_path / "gone.bin"
    victim.write_bytes(data)
    assert run_child(victim, home, step).returncode == -signal.SIGKILL
    victim.unlink()  # the user (or the malware) removed it before recovery ran

    Vault().recover()
    [entry] = Vault().list()
    assert entry.original_path == str(victim)
    assert vault_copies(home / "quarantine") == [data]
    Vault().restore(entry.id)
    assert victim.read_bytes() == data


@pytest.mark.slow
def test_verified_copy_is_kept_when_original_changed(home: Path, tmp_path: Path) -> None:
    victim = tmp_path / "changed.bin"
    victim.write_bytes(b"malicious")
    assert run_child(victim, home, "verified").returncode == -signal.SIGKILL
    victim.write_bytes(b"the user's new work")

    Vault().recover()
    assert victim.read_bytes() == b"the user's new work"
    [entry] = Vault().list()
    assert vault_copies(home / "quarantine") == [b"malicious"]
    assert entry.size == len(b"malicious")
