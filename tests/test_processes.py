"""Process listing on the running system, and matching processes against IOCs."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from quet.indicators.filenames import FilenameMatcher
from quet.indicators.model import IndicatorType, make
from quet.indicators.netsets import IPSet
from quet.scanner.processes import (
    Connection,
    ProcessInfo,
    executables,
    list_processes,
    match_processes,
)
from quet.scanner.result import Kind

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc semantics")


def _sleep_copy(folder: Path, name: str) -> Path:
    exe = folder / name
    shutil.copy2(shutil.which("sleep") or "/bin/sleep", exe)
    return exe


@pytest.fixture
def child(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    exe = _sleep_copy(tmp_path, "kdevtmpfsi")  # a Kinsing miner's name
    proc = subprocess.Popen([str(exe), "30"])
    yield proc
    proc.kill()
    proc.wait()


def _find(pid: int) -> ProcessInfo:
    procs, _ = list_processes()
    return next(p for p in procs if p.pid == pid)


def _empty_ips() -> IPSet:
    ips = IPSet()
    ips.freeze()
    return ips


def _names(*patterns: tuple[str, int]) -> FilenameMatcher:
    names = FilenameMatcher()
    for pattern, score in patterns:
        assert names.add(
            make(IndicatorType.FILENAME, pattern, name=f"IOC {pattern}", confidence=score)
        )
    names.freeze()
    return names


def test_list_processes_sees_ourselves() -> None:
    procs, errors = list_processes()
    me = next(p for p in procs if p.pid == os.getpid())
    assert Path(me.exe).resolve() == Path(sys.executable).resolve()
    assert me.cmdline[0] and me.username
    assert me.exe_deleted is False
    assert len({p.pid for p in procs}) == len(procs) > 1
    assert all(isinstance(e, str) for e in errors)


def test_filename_ioc_matches_process(child: subprocess.Popen[bytes]) -> None:
    info = _find(child.pid)
    assert info.cmdline[1:] == ["30"] and info.exe.endswith("/kdevtmpfsi")
    names = _names((r"[/\\]kdevtmpfsi$", 90), (r"kdevtmpfsi 30", 40))
    findings = match_processes([info], names, _empty_ips())
    # The weak (40) IOC is below the default min_score; the exe and cmdline hits of the strong
    # one are reported once.
    assert [(f.kind, f.pid, f.name, f.score, f.path) for f in findings] == [
        (Kind.PROCESS, child.pid, r"IOC [/\\]kdevtmpfsi$", 90, info.exe)
    ]
    user = info.username
    assert findings[0].detail == f"pid {child.pid} user {user}: {info.exe} 30"
    assert len(match_processes([info], names, _empty_ips(), min_score=40)) == 2
    assert info.exe in executables([info, info])


def test_c2_connection(tmp_path: Path) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    code = f"import socket,time; s=socket.create_connection(('127.0.0.1',{port})); time.sleep(30)"
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        listener.settimeout(20)
        conn, _ = listener.accept()
        ips = IPSet()
        ips.add(make(IndicatorType.IPV4, "127.0.0.1", name="Test C2", confidence=85))
        ips.freeze()
        procs, _ = list_processes()
        findings = match_processes(procs, _names(), ips)
        mine = [f for f in findings if f.pid == proc.pid]
        assert len(mine) == 1
        f = mine[0]
        assert (f.kind, f.name, f.indicator, f.score) == (Kind.C2, "Test C2", "127.0.0.1", 85)
        assert f.detail.startswith("tcp 127.0.0.1:") and f.detail.endswith(
            f" -> 127.0.0.1:{port} ESTABLISHED"
        )
        conn.close()
    finally:
        proc.kill()
        proc.wait()
        listener.close()


@linux_only
def test_deleted_executable(tmp_path: Path) -> None:
    exe = _sleep_copy(tmp_path, "dropper")
    proc = subprocess.Popen([str(exe), "30"])
    try:
        deadline = time.monotonic() + 10
        while os.readlink(f"/proc/{proc.pid}/exe") != str(exe) and time.monotonic() < deadline:
            time.sleep(0.05)  # until exec() has replaced the forked python image
        exe.unlink()
        info = _find(proc.pid)
        assert info.exe_deleted is True
        assert info.exe == str(exe)
        findings = match_processes([info], _names(), _empty_ips())
        assert [(f.kind, f.name, f.score, f.pid) for f in findings] == [
            (Kind.HEURISTIC, "Quet.Heuristic.DeletedExecutable", 60, proc.pid)
        ]
        assert executables([info]) == []
    finally:
        proc.kill()
        proc.wait()


def test_match_is_pure_on_built_records() -> None:
    conn = Connection("ipv6", "udp", "::1", 5353, "2001:db8::7", 53, "")
    listen = Connection("ipv4", "tcp", "0.0.0.0", 22, "", 0, "LISTEN")
    info = ProcessInfo(7, "x", "/opt/x", ["/opt/x", "-c", "y" * 400], "nobody", [listen, conn])
    ips = IPSet()
    ips.add(make(IndicatorType.CIDR, "2001:db8::/32", family="Lab"))
    findings = match_processes([info], _names(("yyyy", 70)), ips)
    assert [(f.kind, f.name) for f in findings] == [(Kind.PROCESS, "IOC yyyy"), (Kind.C2, "Lab")]
    assert len(findings[0].detail) == 300
    assert findings[1].detail == "udp [::1]:5353 -> [2001:db8::7]:53"
    assert executables([info]) == []  # /opt/x does not exist
