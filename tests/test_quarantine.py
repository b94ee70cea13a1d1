"""The quarantine vault on real files: round trips, refusals, encryption, ids and the CLI."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import threading
from pathlib import Path

import pytest
import pyzipper
from typer.testing import CliRunner

from quet.cli.quarantine import app
from quet.errors import QuarantineError
from quet.scanner.quarantine import CRASH_ENV, PASSWORD, Vault

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
ATIME_NS = 1_600_000_000_123_456_789
MTIME_NS = 1_500_000_000_987_654_321


@pytest.fixture
def vault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Vault:
    monkeypatch.setenv("QUET_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(CRASH_ENV, raising=False)
    return Vault()


def make_file(path: Path, data: bytes, mode: int = 0o640) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.chmod(path, mode)
    os.utime(path, ns=(ATIME_NS, MTIME_NS))
    return path


def vault_files(vault: Vault) -> list[str]:
    return sorted(p.name for p in vault.root.iterdir() if p.name not in ("journal.log", ".lock"))


def payload_of(zip_path: Path) -> bytes:
    with pyzipper.AESZipFile(zip_path) as zf:
        zf.setpassword(PASSWORD)
        return bytes(zf.read("payload"))


def test_vault_root_defaults_to_quet_home(vault: Vault, tmp_path: Path) -> None:
    assert vault.root == tmp_path / "home" / "quarantine"
    assert stat.S_IMODE(vault.root.stat().st_mode) == 0o700


def test_round_trip_restores_bytes_mode_and_times(vault: Vault, tmp_path: Path) -> None:
    data = bytes(range(256)) * 1000 + os.urandom(5000)
    original = make_file(tmp_path / "dir" / "evil.exe", data, 0o751)
    entry = vault.quarantine(original, "Win.Trojan.Test")

    assert not original.exists()
    assert entry.size == len(data)
    assert entry.detections == ("Win.Trojan.Test",)
    assert entry.original_path == str(original)
    assert (entry.atime_ns, entry.mtime_ns) == (ATIME_NS, MTIME_NS)
    assert vault_files(vault) == [f"{entry.id}.json", f"{entry.id}.zip"]
    assert [e.id for e in vault.list()] == [entry.id]
    assert vault.verify(entry.id)

    restored = vault.restore(entry.id)
    assert restored == original
    st = original.stat()  # before reading: a read may bump atime
    assert stat.S_IMODE(st.st_mode) == 0o751
    assert (st.st_atime_ns, st.st_mtime_ns) == (ATIME_NS, MTIME_NS)
    assert original.read_bytes() == data
    assert vault.list() == []
    assert vault_files(vault) == []
    assert not list(original.parent.glob(".quet-restore-*"))


def test_meta_inside_zip_and_sidecar_agree(vault: Vault, tmp_path: Path) -> None:
    entry = vault.quarantine(make_file(tmp_path / "a.bin", b"abc"), ["Sig.One", "Sig.Two"])
    with pyzipper.AESZipFile(vault.zip_path(entry.id)) as zf:
        zf.setpassword(PASSWORD)
        inner = json.loads(zf.read("meta.json"))
    sidecar = json.loads((vault.root / f"{entry.id}.json").read_text())
    assert inner == sidecar == entry.to_dict()
    assert inner["detections"] == ["Sig.One", "Sig.Two"]
    assert inner["sha256"] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert inner["owner"] == "root" or os.geteuid() != 0
    assert inner["quarantined"].endswith("+00:00")


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_root_restores_uid_and_gid(vault: Vault, tmp_path: Path) -> None:
    original = make_file(tmp_path / "owned.bin", b"owned by someone else")
    os.chown(original, 1234, 1234)
    entry = vault.quarantine(original, "Test")
    assert (entry.uid, entry.gid) == (1234, 1234)
    vault.restore(entry.id)
    st = original.stat()
    assert (st.st_uid, st.st_gid) == (1234, 1234)
    assert original.read_bytes() == b"owned by someone else"


def test_ids_never_collide_sequentially(vault: Vault, tmp_path: Path) -> None:
    ids = [vault.quarantine(make_file(tmp_path / f"f{i}", b"x"), "T").id for i in range(200)]
    assert len(set(ids)) == 200
    assert len(list(vault.root.glob("*.zip"))) == 200
    listed = vault.list()
    assert sorted(e.id for e in listed) == sorted(ids)
    assert [e.quarantined for e in listed] == sorted(e.quarantined for e in listed)
    assert all(i[:8].isdigit() and i[8] == "T" and len(i) == 24 for i in ids)


def test_ids_never_collide_across_threads(vault: Vault, tmp_path: Path) -> None:
    ids: list[str] = []
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        own = Vault()  # separate instances, like separate scanner processes
        try:
            for i in range(50):
                ids.append(own.quarantine(make_file(tmp_path / f"t{n}-{i}", b"y"), "T").id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert len(ids) == len(set(ids)) == 200
    assert len(vault.list()) == 200
    assert not list(tmp_path.glob("t*-*"))


def test_refuses_symlink_and_leaves_both_alone(vault: Vault, tmp_path: Path) -> None:
    target = make_file(tmp_path / "real.bin", b"real")
    link = tmp_path / "link.bin"
    link.symlink_to(target)
    with pytest.raises(QuarantineError, match="symbolic link"):
        vault.quarantine(link, "T")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_bytes() == b"real"
    assert vault_files(vault) == []


def test_refuses_directory_and_missing_file(vault: Vault, tmp_path: Path) -> None:
    (tmp_path / "adir").mkdir()
    with pytest.raises(QuarantineError, match="not a regular file"):
        vault.quarantine(tmp_path / "adir", "T")
    assert (tmp_path / "adir").is_dir()
    with pytest.raises(QuarantineError, match="nope"):
        vault.quarantine(tmp_path / "nope", "T")
    assert vault_files(vault) == []


def test_refuses_file_changed_since_scan(vault: Vault, tmp_path: Path) -> None:
    original = make_file(tmp_path / "c.bin", b"new content")
    stale = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    with pytest.raises(QuarantineError, match="changed since"):
        vault.quarantine(original, "T", expected_sha256=stale)
    assert original.read_bytes() == b"new content"
    assert original.stat().st_mtime_ns == MTIME_NS
    assert vault_files(vault) == []
    # The matching hash goes through.
    import hashlib

    ok = hashlib.sha256(b"new content").hexdigest().upper()
    assert vault.quarantine(original, "T", expected_sha256=ok).sha256 == ok.lower()


def test_refuses_files_inside_the_vault(vault: Vault) -> None:
    inside = make_file(vault.root / "planted.bin", b"p")
    with pytest.raises(QuarantineError, match="inside the quarantine vault"):
        vault.quarantine(inside, "T")
    assert inside.exists()


def test_restore_refuses_to_overwrite_unless_forced(vault: Vault, tmp_path: Path) -> None:
    original = make_file(tmp_path / "o.bin", b"malware bytes")
    entry = vault.quarantine(original, "T")
    original.write_bytes(b"the user's new file")
    with pytest.raises(QuarantineError, match="already exists"):
        vault.restore(entry.id)
    assert original.read_bytes() == b"the user's new file"
    assert [e.id for e in vault.list()] == [entry.id]
    assert not list(tmp_path.glob(".quet-restore-*"))
    vault.restore(entry.id, force=True)
    assert original.read_bytes() == b"malware bytes"
    assert vault.list() == []


def test_restore_to_other_path_and_into_directory(vault: Vault, tmp_path: Path) -> None:
    first = vault.quarantine(make_file(tmp_path / "one.bin", b"1"), "T")
    second = vault.quarantine(make_file(tmp_path / "two.bin", b"2"), "T")
    dest = vault.restore(first.id, to=tmp_path / "new" / "deep" / "renamed.bin")
    assert dest == tmp_path / "new" / "deep" / "renamed.bin" and dest.read_bytes() == b"1"
    (tmp_path / "box").mkdir()
    dest2 = vault.restore(second.id, to=tmp_path / "box")
    assert dest2 == tmp_path / "box" / "two.bin" and dest2.read_bytes() == b"2"
    assert not (tmp_path / "one.bin").exists()


def test_vault_copy_is_really_encrypted(vault: Vault, tmp_path: Path) -> None:
    noise = os.urandom(64 * 1024)  # incompressible: only encryption can hide it
    eicar = vault.quarantine(make_file(tmp_path / "eicar.com", EICAR), "Eicar-Test-Signature")
    rnd = vault.quarantine(make_file(tmp_path / "noise.bin", noise), "T")
    eicar_zip = vault.zip_path(eicar.id).read_bytes()
    rnd_zip = vault.zip_path(rnd.id).read_bytes()
    assert b"EICAR" not in eicar_zip and EICAR[:20] not in eicar_zip
    assert noise[1000:1032] not in rnd_zip and noise[50000:50032] not in rnd_zip
    with pyzipper.AESZipFile(vault.zip_path(rnd.id)) as zf:
        info = zf.getinfo("payload")
        assert info.flag_bits & 0x1  # encrypted
        with pytest.raises(RuntimeError):
            zf.read("payload")  # no password
        zf.setpassword(b"wrong")
        with pytest.raises(RuntimeError):
            zf.read("payload")
    assert payload_of(vault.zip_path(eicar.id)) == EICAR
    assert payload_of(vault.zip_path(rnd.id)) == noise


@pytest.mark.skipif(shutil.which("7z") is None, reason="7z not installed")
def test_other_tools_open_the_vault_with_the_conventional_password(
    vault: Vault, tmp_path: Path
) -> None:
    entry = vault.quarantine(make_file(tmp_path / "eicar.com", EICAR), "Eicar")
    out = subprocess.run(
        ["7z", "x", "-pinfected", "-so", str(vault.zip_path(entry.id)), "payload"],
        capture_output=True,
        check=True,
    )
    assert out.stdout == EICAR


def test_delete_removes_entry_for_good(vault: Vault, tmp_path: Path) -> None:
    entry = vault.quarantine(make_file(tmp_path / "d.bin", b"d"), "T")
    vault.delete(entry.id)
    assert vault.list() == [] and vault_files(vault) == []
    with pytest.raises(QuarantineError, match="no such quarantine entry"):
        vault.delete(entry.id)
    with pytest.raises(QuarantineError, match="not a quarantine id"):
        vault.restore("../../etc/passwd")
    journal = [json.loads(x) for x in vault.journal_path.read_text().splitlines()]
    assert [r["step"] for r in journal if r["id"] == entry.id][-2:] == ["delete-begin", "deleted"]


def test_listing_survives_lost_or_damaged_sidecars(vault: Vault, tmp_path: Path) -> None:
    a = vault.quarantine(make_file(tmp_path / "a", b"a"), "T")
    b = vault.quarantine(make_file(tmp_path / "b", b"b"), "T")
    (vault.root / f"{a.id}.json").unlink()
    (vault.root / f"{b.id}.json").write_text("{not json")
    assert {e.id: e for e in vault.list()} == {a.id: a, b.id: b}
    assert json.loads((vault.root / f"{a.id}.json").read_text())["id"] == a.id  # rebuilt


def test_damaged_vault_copy_is_never_restored(vault: Vault, tmp_path: Path) -> None:
    original = make_file(tmp_path / "x.bin", os.urandom(20000))
    entry = vault.quarantine(original, "T")
    zpath = vault.zip_path(entry.id)
    raw = bytearray(zpath.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    zpath.write_bytes(bytes(raw))
    assert not vault.verify(entry.id)
    with pytest.raises(QuarantineError):
        vault.restore(entry.id)
    assert not original.exists()
    assert not list(tmp_path.glob(".quet-restore-*"))
    assert [e.id for e in vault.list()] == [entry.id]


def _journal_append(vault: Vault, **record: object) -> None:
    with open(vault.journal_path, "a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\n")


def test_recover_finishes_a_restore_whose_file_is_in_place(vault: Vault, tmp_path: Path) -> None:
    data = os.urandom(1000)
    entry = vault.quarantine(make_file(tmp_path / "r.bin", data), "T")
    # As if killed after the file was linked into place but before the entry was dropped.
    target = make_file(tmp_path / "back.bin", data)
    tmp = tmp_path / f".quet-restore-{entry.id}.tmp"
    tmp.write_bytes(data[:10])
    _journal_append(
        vault,
        id=entry.id,
        step="restore-begin",
        target=str(target),
        tmp=str(tmp),
        sha256=entry.sha256,
    )
    assert vault.recover() == [(entry.id, "restored")]
    assert vault.list() == [] and target.read_bytes() == data and not tmp.exists()


def test_recover_keeps_entry_when_restore_did_not_land(vault: Vault, tmp_path: Path) -> None:
    entry = vault.quarantine(make_file(tmp_path / "k.bin", b"keep me"), "T")
    target = make_file(tmp_path / "k.bin", b"something else")
    tmp = tmp_path / f".quet-restore-{entry.id}.tmp"
    tmp.write_bytes(b"keep")
    _journal_append(
        vault,
        id=entry.id,
        step="restore-begin",
        target=str(target),
        tmp=str(tmp),
        sha256=entry.sha256,
    )
    _journal_append(vault, id=entry.id, step="from-the-future")  # ignored
    _journal_append(vault, id="20200101T000000-00000000", step="begin")  # fields missing
    with open(vault.journal_path, "a") as out:
        out.write('{"id": "x", "st')  # torn by the crash
    actions = dict(vault.recover())
    assert actions[entry.id] == "restore-abandoned"
    assert actions["20200101T000000-00000000"].startswith("error:")
    assert [e.id for e in vault.list()] == [entry.id]
    assert target.read_bytes() == b"something else" and not tmp.exists()
    assert vault.restore(entry.id, to=tmp_path / "elsewhere").read_bytes() == b"keep me"


# ----- CLI -------------------------------------------------------------------------------
runner = CliRunner()


def test_cli_add_list_restore(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUET_LANG", "vi")
    original = make_file(tmp_path / "cli.bin", EICAR)
    result = runner.invoke(app, ["add", str(original), "--detection", "Eicar"])
    assert result.exit_code == 0, result.output
    assert "Đã cách ly" in result.output and not original.exists()
    [entry] = vault.list()

    listed = runner.invoke(app, ["list", "--json"])
    assert listed.exit_code == 0
    data = json.loads(listed.stdout)
    assert [d["id"] for d in data] == [entry.id]
    assert data[0]["detections"] == ["Eicar"] and data[0]["size"] == len(EICAR)

    table = runner.invoke(app, ["list"], env={"COLUMNS": "200"})
    assert table.exit_code == 0
    assert entry.id in table.output and "Eicar" in table.output and "Kho cách ly" in table.output

    restored = runner.invoke(app, ["restore", entry.id])
    assert restored.exit_code == 0, restored.output
    assert original.read_bytes() == EICAR
    assert "Kho cách ly trống" in runner.invoke(app, ["list"]).output
    assert json.loads(runner.invoke(app, ["list", "--json"]).stdout) == []


def test_cli_restore_to_and_force(vault: Vault, tmp_path: Path) -> None:
    entry = vault.quarantine(make_file(tmp_path / "r.bin", b"r"), "T")
    dest = make_file(tmp_path / "dest.bin", b"occupied")
    refused = runner.invoke(app, ["restore", entry.id, "--to", str(dest)])
    assert refused.exit_code == 2 and dest.read_bytes() == b"occupied"
    forced = runner.invoke(app, ["restore", entry.id, "--to", str(dest), "--force"])
    assert forced.exit_code == 0 and dest.read_bytes() == b"r"


def test_cli_delete_asks_first(vault: Vault, tmp_path: Path) -> None:
    entry = vault.quarantine(make_file(tmp_path / "del.bin", b"d"), "T")
    declined = runner.invoke(app, ["delete", entry.id], input="n\n")
    assert declined.exit_code == 1
    assert [e.id for e in vault.list()] == [entry.id]
    accepted = runner.invoke(app, ["delete", entry.id], input="y\n")
    assert accepted.exit_code == 0 and vault.list() == []
    other = vault.quarantine(make_file(tmp_path / "del2.bin", b"d"), "T")
    assert runner.invoke(app, ["delete", other.id, "--yes"]).exit_code == 0
    assert vault.list() == []


def test_cli_errors_are_one_line_and_exit_2(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUET_LANG", "vi")
    result = runner.invoke(app, ["restore", "20200101T000000-deadbeef"])
    assert result.exit_code == 2
    assert result.output.strip().startswith("Lỗi:")
    assert len(result.output.strip().splitlines()) == 1
    (tmp_path / "d").mkdir()
    en = runner.invoke(app, ["add", str(tmp_path / "d"), "-d", "T"], env={"QUET_LANG": "en"})
    assert en.exit_code == 2 and en.output.startswith("Error:")
    assert runner.invoke(app, ["delete", "bogus", "--yes"]).exit_code == 2


def test_cli_help_is_bilingual() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for word in ("list", "restore", "delete", "add", "Quarantine", "cách ly"):
        assert word in result.output
