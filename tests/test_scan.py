"""End-to-end scans through the engine on real files: EICAR, ClamAV's test files, archives, the cache."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from conftest import EICAR
from quet.indicators.formats.clamav import write_hdb
from quet.indicators.model import Indicator, IndicatorType
from quet.scanner import engine, signatures
from quet.scanner.result import Kind
from quet.scanner.walk import WalkOptions


def run(paths: list[Path], sigs: signatures.SignatureSet | None = None, **kw: object):
    sigs = sigs or signatures.load()
    opts = engine.ScanOptions(paths=[str(p) for p in paths], **kw)  # type: ignore[arg-type]
    return engine.scan(opts, sigs)


def test_starter_set_detects_eicar(tmp_path: Path) -> None:
    (tmp_path / "eicar.com").write_bytes(EICAR)
    (tmp_path / "clean.txt").write_text("hello")
    result = run([tmp_path])
    assert result.files_scanned == 2
    assert result.exit_code() == 1
    names = {(Path(f.path).name, f.name) for f in result.findings}
    assert ("eicar.com", "Quet_Test_EICAR") in names
    assert result.signatures["starter"] is True


def test_clean_folder_exits_zero(tmp_path: Path) -> None:
    for i in range(5):
        (tmp_path / f"f{i}.txt").write_text("nothing here " * i)
    result = run([tmp_path])
    assert result.findings == []
    assert result.exit_code() == 0
    assert result.files_scanned == 5


def test_nested_archives_name_inner_path(tmp_path: Path) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("docs/eicar.com", EICAR)
    tgz = tmp_path / "outer.tar.gz"
    with tarfile.open(tgz, "w:gz") as tf:
        info = tarfile.TarInfo("pack/inner.zip")
        info.size = len(inner.getvalue())
        tf.addfile(info, io.BytesIO(inner.getvalue()))
    result = run([tmp_path])
    paths = {f.path for f in result.findings}
    assert f"{tgz}!pack/inner.zip!docs/eicar.com" in paths
    assert result.objects_scanned >= 3


def test_gzip_member(tmp_path: Path) -> None:
    (tmp_path / "eicar.com.gz").write_bytes(gzip.compress(EICAR))
    result = run([tmp_path])
    assert any(f.path.endswith("eicar.com.gz!eicar.com") for f in result.findings)


def test_too_large_is_listed_not_skipped_silently(tmp_path: Path) -> None:
    (tmp_path / "big.bin").write_bytes(b"\0" * 5000)
    (tmp_path / "small.bin").write_bytes(b"\0" * 10)
    result = run([tmp_path], max_size=1000)
    assert [Path(x["path"]).name for x in result.too_large] == ["big.bin"]
    assert result.files_scanned == 1


def test_symlinks_not_followed_by_default(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "eicar.com").write_bytes(EICAR)
    scan_root = tmp_path / "root"
    scan_root.mkdir()
    (scan_root / "link").symlink_to(target)
    (scan_root / "flink").symlink_to(target / "eicar.com")
    assert run([scan_root]).findings == []
    followed = run([scan_root], walk=WalkOptions(follow_symlinks=True), use_cache=False)
    assert len(followed.findings) >= 1


def test_include_exclude(tmp_path: Path) -> None:
    (tmp_path / "a.com").write_bytes(EICAR)
    (tmp_path / "b.txt").write_bytes(EICAR)
    only_com = run([tmp_path], walk=WalkOptions(include=["*.com"]))
    assert {Path(f.path).name for f in only_com.findings} == {"a.com"}
    no_com = run([tmp_path], walk=WalkOptions(exclude=["*.com"]))
    assert {Path(f.path).name for f in no_com.findings} == {"b.txt"}


def test_cache_skips_unchanged_and_rescans_changed(tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    corpus.mkdir()
    for i in range(20):
        (corpus / f"f{i}.txt").write_text(f"file {i}")
    (corpus / "eicar.com").write_bytes(EICAR)
    first = run([corpus])
    assert first.files_cached == 0
    second = run([corpus])
    assert second.files_cached == 21
    # findings are still reported from cached observations
    assert {f.path for f in second.findings} == {f.path for f in first.findings}
    (corpus / "f3.txt").write_text("changed, and longer than before")
    third = run([corpus])
    assert third.files_cached == 20
    forced = run([corpus], use_cache=False)
    assert forced.files_cached == 0


def test_cache_rereads_when_rules_change(tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "x.txt").write_text("marker-string-42")
    rules1 = tmp_path / "r1.yar"
    rules1.write_text('rule A { strings: $a = "nothing" condition: $a }')
    rules2 = tmp_path / "r2.yar"
    rules2.write_text('rule B { strings: $a = "marker-string-42" condition: $a }')
    run([corpus], signatures.load(rules=[rules1], use_installed=False))
    again = run([corpus], signatures.load(rules=[rules2], use_installed=False))
    assert again.files_cached == 0
    assert [f.name for f in again.findings] == ["B"]


def test_hash_list_change_needs_no_reread(tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    corpus.mkdir()
    payload = corpus / "payload.bin"
    payload.write_bytes(b"some payload bytes")
    starter_rules = signatures.STARTER_DIR / "starter.yar"
    run([corpus], signatures.load(rules=[starter_rules], use_installed=False))
    import hashlib

    hsb = tmp_path / "new.hsb"
    write_hdb(
        [
            Indicator(
                IndicatorType.SHA256,
                hashlib.sha256(payload.read_bytes()).hexdigest(),
                name="Test.New-1",
                size=payload.stat().st_size,
            )
        ],
        hsb,
    )
    result = run([corpus], signatures.load([starter_rules], [hsb], use_installed=False))
    assert result.files_cached == 1
    assert [f.name for f in result.findings] == ["Test.New-1"]


def test_parallel_workers_match_in_process(tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    corpus.mkdir()
    for i in range(300):
        data = EICAR if i % 50 == 0 else os.urandom(200)
        (corpus / f"f{i:03}.bin").write_bytes(data)
    single = run([corpus], jobs=1, use_cache=False)
    multi = run([corpus], jobs=2, use_cache=False)
    assert single.files_scanned == multi.files_scanned == 300
    assert sorted(f.path for f in single.findings) == sorted(f.path for f in multi.findings)
    assert len(single.findings) == 6


def test_unreadable_file_is_an_error_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "ok.txt").write_text("fine")
    fifo = tmp_path / "missing-later.txt"
    fifo.write_text("x")
    result = run([tmp_path, tmp_path / "does-not-exist"])
    assert result.errors_count == 1
    assert "does-not-exist" in result.errors[0]["path"]
    assert result.exit_code() == 2


def test_clamav_testfiles_all_detected_by_hash_db(clam_testfiles: Path, tmp_path: Path) -> None:
    """A hash database made from Debian's clamav-testfiles detects every one of them."""
    import hashlib

    files = sorted(p for p in clam_testfiles.iterdir() if p.is_file())
    hsb = tmp_path / "testfiles.hsb"
    write_hdb(
        [
            Indicator(
                IndicatorType.SHA256,
                hashlib.sha256(p.read_bytes()).hexdigest(),
                name=f"Test.{p.name}",
                size=p.stat().st_size,
            )
            for p in files
        ],
        hsb,
    )
    result = run([clam_testfiles], signatures.load(hashes=[hsb], use_installed=False))
    hit = {Path(f.path).name for f in result.findings if f.kind == Kind.HASH and "!" not in f.path}
    assert hit == {p.name for p in files}


def test_starter_set_detects_clamav_testfiles(clam_testfiles: Path) -> None:
    result = run([clam_testfiles])
    tops = {Path(f.path.split("!")[0]).name for f in result.findings}
    assert {p.name for p in clam_testfiles.iterdir()} <= tops
    # the archives are opened: clam.exe is found inside them by its content too
    inner = {f.path for f in result.findings if f.kind == Kind.YARA and "!" in f.path}
    assert any(p.endswith("clam.zip!clam.exe") for p in inner)
    assert any("clam.7z!" in p for p in inner)
    assert any("clam.tar.gz!" in p for p in inner)


def test_filename_iocs_on_paths(tmp_path: Path) -> None:
    iocs = tmp_path / "filename-iocs.txt"
    iocs.write_text("# test\n\\\\mimikatz\\.exe$;90\n\\\\harmless\\.log$;20\n")
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "mimikatz.exe").write_text("x")
    (corpus / "harmless.log").write_text("x")
    result = run([corpus], signatures.load(iocs=[iocs], use_installed=False))
    assert [(Path(f.path).name, f.kind) for f in result.findings] == [("mimikatz.exe", "filename")]


@pytest.mark.slow
def test_archive_bomb_reported(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("zeros.bin", "w") as fh:
        chunk = b"\0" * 2**20
        for _ in range(300):
            fh.write(chunk)
    result = run([tmp_path])
    assert any(f.name == "Quet.Heuristic.ArchiveBomb" for f in result.findings)


def test_quarantine_during_scan_and_restore(tmp_path: Path) -> None:
    from quet.scanner.quarantine import Vault

    corpus = tmp_path / "c"
    corpus.mkdir()
    bad = corpus / "eicar.com"
    bad.write_bytes(EICAR)
    zipped = corpus / "mail.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("attachment/eicar.txt", EICAR)
    original_zip = zipped.read_bytes()
    (corpus / "clean.txt").write_text("keep me")
    result = run([corpus], quarantine=True)
    assert not bad.exists() and not zipped.exists()
    assert (corpus / "clean.txt").read_text() == "keep me"
    assert {f.action for f in result.findings} == {"quarantined"}
    entries = {e.original_path: e for e in Vault().list()}
    assert set(entries) == {str(bad), str(zipped)}
    ids = {f.quarantine_id for f in result.findings if f.path.startswith(str(zipped))}
    assert ids == {entries[str(zipped)].id}
    Vault().restore(entries[str(zipped)].id)
    assert zipped.read_bytes() == original_zip


def test_quarantine_refuses_a_file_changed_after_the_scan(tmp_path: Path) -> None:
    """The vault checks the scanned SHA256: a file replaced meanwhile is left in place."""
    corpus = tmp_path / "c"
    corpus.mkdir()
    bad = corpus / "eicar.com"
    bad.write_bytes(EICAR)
    sigs = signatures.load()
    scan = engine.Scan(engine.ScanOptions(paths=[str(corpus)], quarantine=True), sigs)
    scan._infected = {str(bad): "0" * 64}  # as if the file had other contents when scanned
    scan.result.findings.append(
        engine.Finding(kind=Kind.YARA, name="X", path=str(bad), sha256="0" * 64)
    )
    scan._quarantine()
    assert bad.read_bytes() == EICAR
    assert scan.result.findings[0].action == "quarantine-failed"


def test_persistence_through_the_engine(tmp_path: Path) -> None:
    """--persistence on a fake root: entries counted, C2 and download-exec lines found."""
    iocs = tmp_path / "c2-iocs.txt"
    iocs.write_text("# C2\nevil-c2.example\n")
    root = Path(__file__).parent / "data" / "persistence" / "root"
    sigs = signatures.load(iocs=[iocs], use_installed=False)
    opts = engine.ScanOptions(paths=[], persistence=True, persistence_root=root)
    result = engine.scan(opts, sigs)
    assert result.persistence_entries >= 10
    names = {f.name for f in result.findings}
    assert "Quet.Heuristic.DownloadExec" in names
    assert any(
        f.kind == Kind.PERSISTENCE and "evil-c2.example" in f.indicator for f in result.findings
    )
    assert result.exit_code() == 1


def test_processes_through_the_engine(tmp_path: Path) -> None:
    """--processes on this machine: every process listed, executables scanned once, a C2 flagged."""
    import socket
    import subprocess
    import sys

    iocs = tmp_path / "c2-iocs.txt"
    iocs.write_text("127.0.0.77\n")
    server = socket.socket()
    server.bind(("127.0.0.77", 0))
    server.listen()
    port = server.getsockname()[1]
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import socket,time; s=socket.create_connection(('127.0.0.77',{port})); time.sleep(30)",
        ]
    )
    try:
        conn, _ = server.accept()
        sigs = signatures.load(
            iocs=[iocs], use_installed=False, rules=[signatures.STARTER_DIR], warninglists=False
        )
        result = engine.scan(engine.ScanOptions(paths=[], processes=True), sigs)
    finally:
        child.kill()
        child.wait()
        server.close()
    assert result.processes_scanned > 3
    assert result.files_scanned >= 1  # the executables of running processes
    c2 = [f for f in result.findings if f.kind == Kind.C2]
    assert any(f.pid == child.pid for f in c2), c2
    conn.close()
    # with the default warninglists, loopback (RFC 5735) is known-benign: never a C2 hit
    benign = signatures.load(iocs=[iocs], use_installed=False, rules=[signatures.STARTER_DIR])
    assert len(benign.c2_ips) == 0
