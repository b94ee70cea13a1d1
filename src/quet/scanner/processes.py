"""Running processes and their network connections (via psutil), and the pure matching of them
against filename IOCs and C2 addresses."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psutil

from quet.scanner.result import Finding, Kind

if TYPE_CHECKING:
    from quet.indicators.filenames import FilenameMatcher
    from quet.indicators.netsets import IPSet

DETAIL_MAX = 300
DELETED_EXE_NAME = "Quet.Heuristic.DeletedExecutable"
DELETED_EXE_SCORE = 60
_DELETED_SUFFIX = " (deleted)"


@dataclass(slots=True)
class Connection:
    """One inet socket of a process; raddr is "" and rport 0 for listening/unconnected sockets."""

    family: str  # "ipv4" / "ipv6"
    type: str  # "tcp" / "udp"
    laddr: str
    lport: int
    raddr: str
    rport: int
    status: str

    def describe(self) -> str:
        local = _hostport(self.laddr, self.lport)
        if not self.raddr:
            return f"{self.type} {local} {self.status}".rstrip()
        return f"{self.type} {local} -> {_hostport(self.raddr, self.rport)} {self.status}".rstrip()


@dataclass(slots=True)
class ProcessInfo:
    """What we could learn about one process; fields we were denied stay empty."""

    pid: int
    name: str
    exe: str
    cmdline: list[str]
    username: str
    connections: list[Connection] = field(default_factory=list)
    exe_deleted: bool = False  # Linux: the executable was removed from disk after start


def _hostport(addr: str, port: int) -> str:
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def _connection(conn: Any) -> Connection | None:
    if conn.family == socket.AF_INET:
        family = "ipv4"
    elif conn.family == socket.AF_INET6:
        family = "ipv6"
    else:
        return None
    kind = "tcp" if conn.type == socket.SOCK_STREAM else "udp"
    laddr, lport = (conn.laddr.ip, conn.laddr.port) if conn.laddr else ("", 0)
    raddr, rport = (conn.raddr.ip, conn.raddr.port) if conn.raddr else ("", 0)
    status = "" if conn.status == psutil.CONN_NONE else str(conn.status)
    return Connection(family, kind, laddr, lport, raddr, rport, status)


def _all_connections() -> dict[int, list[Connection]] | None:
    """Every inet socket by pid, or None when the system view is denied (macOS without root)."""
    by_pid: dict[int, list[Connection]] = {}
    try:
        conns = psutil.net_connections(kind="inet")
    except (psutil.AccessDenied, PermissionError):
        return None
    for conn in conns:
        if conn.pid is None:
            continue
        info = _connection(conn)
        if info is not None:
            by_pid.setdefault(conn.pid, []).append(info)
    return by_pid


def _exe_deleted(pid: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        link = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return False
    # A package upgrade replaces a running daemon's binary: the link says "(deleted)" but a file
    # is back at that path. Only a path with nothing behind it (or a memfd) is suspicious.
    return link.endswith(_DELETED_SUFFIX) and not os.path.exists(link[: -len(_DELETED_SUFFIX)])


def _one_process(
    proc: psutil.Process, conns: dict[int, list[Connection]] | None, errors: list[str]
) -> ProcessInfo:
    pid = proc.pid
    info = ProcessInfo(pid, "", "", [], "")
    denied: list[str] = []
    with proc.oneshot():
        for attr in ("name", "exe", "cmdline", "username"):
            try:
                value = getattr(proc, attr)()
            except psutil.ZombieProcess:
                errors.append(f"pid {pid}: zombie process, {attr} unavailable")
                return info
            except psutil.AccessDenied:
                denied.append(attr)
                continue
            except OSError as exc:  # e.g. a vanished /proc entry read mid-way
                denied.append(f"{attr} ({exc.strerror or exc})")
                continue
            setattr(info, attr, list(value) if attr == "cmdline" else (value or ""))
    if conns is not None:
        info.connections = conns.get(pid, [])
    else:
        try:
            info.connections = [
                c for c in map(_connection, proc.net_connections(kind="inet")) if c is not None
            ]
        except psutil.AccessDenied:
            denied.append("connections")
    if denied:
        errors.append(f"pid {pid} ({info.name or '?'}): access denied: {', '.join(denied)}")
    info.exe_deleted = _exe_deleted(pid)
    return info


def list_processes() -> tuple[list[ProcessInfo], list[str]]:
    """Every process we can see, with its connections; problems per process go to the errors."""
    errors: list[str] = []
    conns = _all_connections()
    if conns is None:
        errors.append("system connection table: access denied; reading connections per process")
    procs: list[ProcessInfo] = []
    for proc in psutil.process_iter():
        try:
            procs.append(_one_process(proc, conns, errors))
        except psutil.NoSuchProcess:  # exited while we looked: nothing left to scan
            errors.append(f"pid {proc.pid}: exited during the scan")
    return procs, errors


def _describe(proc: ProcessInfo) -> str:
    cmd = " ".join(proc.cmdline) or proc.exe or proc.name
    return _truncate(f"pid {proc.pid} user {proc.username or '?'}: {cmd}")


def _truncate(text: str, limit: int = DETAIL_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def match_processes(
    procs: list[ProcessInfo], filenames: FilenameMatcher, c2_ips: IPSet, min_score: int = 60
) -> list[Finding]:
    """Findings for processes whose exe or command line matches a filename IOC (score at least
    min_score), whose connections reach a C2 address, or whose executable was deleted."""
    findings: list[Finding] = []
    for proc in procs:
        seen: set[tuple[str, str]] = set()
        for text in (proc.exe, " ".join(proc.cmdline)):
            if not text:
                continue
            for ind in filenames.match(text):
                if ind.confidence < min_score or ind.key() in seen:
                    continue
                seen.add(ind.key())
                findings.append(
                    Finding(
                        kind=Kind.PROCESS,
                        name=ind.name or ind.family or ind.value,
                        path=proc.exe,
                        indicator=ind.value,
                        source=ind.source,
                        score=ind.confidence,
                        pid=proc.pid,
                        detail=_describe(proc),
                    )
                )
        findings.extend(_c2_findings(proc, c2_ips))
        if proc.exe_deleted:
            findings.append(
                Finding(
                    kind=Kind.HEURISTIC,
                    name=DELETED_EXE_NAME,
                    path=proc.exe,
                    score=DELETED_EXE_SCORE,
                    pid=proc.pid,
                    detail=_describe(proc),
                )
            )
    return findings


def _c2_findings(proc: ProcessInfo, c2_ips: IPSet) -> Iterable[Finding]:
    # Every connection is reported (not just the first per IP): ports and states tell the analyst
    # whether it was a beacon or a listener's peer.
    for conn in proc.connections:
        if not conn.raddr:
            continue
        ind = c2_ips.lookup(conn.raddr)
        if ind is None:
            continue
        yield Finding(
            kind=Kind.C2,
            name=ind.name or ind.family or "C2 connection",
            path=proc.exe,
            indicator=ind.value,
            source=ind.source,
            score=ind.confidence,
            pid=proc.pid,
            detail=_truncate(conn.describe()),
        )


def executables(procs: Iterable[ProcessInfo]) -> list[str]:
    """Unique executable paths still on disk, in first-seen order, for the file scanner."""
    seen: set[str] = set()
    out: list[str] = []
    for proc in procs:
        if not proc.exe or proc.exe_deleted or proc.exe in seen:
            continue
        seen.add(proc.exe)
        if os.path.isfile(proc.exe):
            out.append(proc.exe)
    return out
