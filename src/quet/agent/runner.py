"""What `quet agent run` does each interval: heartbeat with the inventory, content update from
the server, scan, spool, upload — and the inventory itself (IPs, content, anti-malware present)."""

from __future__ import annotations

import platform
import shutil
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from quet import __version__
from quet.agent import config
from quet.agent.client import AgentClient, AgentError, UploadSummary
from quet.agent.spool import Spool
from quet.errors import QuetError

Log = Callable[[str], None]
MIN_BACKOFF = 30.0


@dataclass
class RunOptions:
    paths: list[str] = field(default_factory=list)
    interval: float = 6 * 3600.0
    system: bool = False  # also processes and persistence entries
    update: bool = True
    jobs: int = 0


@dataclass
class CycleResult:
    scan_id: str = ""
    findings: int = 0
    upload: UploadSummary = field(default_factory=UploadSummary)
    messages: list[str] = field(default_factory=list)


# -- inventory ----------------------------------------------------------------------------------
def local_ips() -> list[str]:
    """Addresses of this machine's interfaces, loopback and link-local left out."""
    import ipaddress

    try:
        import psutil

        candidates = [
            a.address.split("%", 1)[0]
            for addrs in psutil.net_if_addrs().values()
            for a in addrs
            if a.family in (socket.AF_INET, socket.AF_INET6)
        ]
    except Exception:  # no psutil, or no permission: fall back to name resolution
        try:
            candidates = [i[4][0] for i in socket.getaddrinfo(socket.gethostname(), None)]
        except OSError:
            candidates = []
    out = []
    for value in dict.fromkeys(str(c) for c in candidates):
        try:
            ip = ipaddress.ip_address(value)
        except ValueError:
            continue
        if not (ip.is_loopback or ip.is_link_local or ip.is_unspecified):
            out.append(value)
    return out[:64]


def _windows_defender() -> bool:
    if sys.platform != "win32":
        return False
    import winreg

    try:
        key = winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, r"SOFTWARE\Microsoft\Windows Defender")
    except OSError:
        return False
    with key:
        try:
            disabled, _ = winreg.QueryValueEx(key, "DisableAntiSpyware")
        except OSError:
            disabled = 0
    return not disabled


def detect_antimalware() -> list[str]:
    """Anti-malware present on this machine: Quét itself, ClamAV, Microsoft Defender."""
    found = ["quet"]
    if (
        any(shutil.which(n) for n in ("clamscan", "clamdscan", "clamd"))
        or Path("/usr/sbin/clamd").exists()
    ):
        found.append("clamav")
    try:
        if _windows_defender():
            found.append("windows-defender")
    except Exception:  # the registry may refuse us; the inventory must still go out
        pass
    return found


def content_info() -> dict[str, Any]:
    """The installed content bundle's version and when it was published (its age is what
    "current signatures" measures), from quet.bundle.install's state."""
    from quet.bundle import install

    version = install.current_version()
    manifest = install.current_manifest()
    when: str | None = None
    if manifest is not None:
        when = manifest.created_at.astimezone(UTC).isoformat()
    elif version is not None:
        when = install.read_state().get("installed_at")
    return {"content_version": version, "content_updated_at": when}


def inventory(kind: str | None = None) -> dict[str, Any]:
    info: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "os": f"{platform.system()} {platform.release()}".strip(),
        "ips": local_ips(),
        "agent_version": __version__,
        "antimalware": detect_antimalware(),
        **content_info(),
    }
    if kind:
        info["kind"] = kind
    last = config.read_state().get("last_scan_at")
    if last:
        info["last_scan_at"] = last
    return info


# -- one cycle ----------------------------------------------------------------------------------
def update_content(cfg: config.AgentConfig, serves_tuf: bool) -> str:
    """Content update through the server's TUF repository, when it has one and this machine
    holds a trusted root (never taken from the server itself)."""
    if not serves_tuf:
        return "update: the server offers no content updates"
    from quet.bundle import update

    if not update.anchor_path().is_file():
        return "update: skipped, no trusted root (run `quet update --init-root root.json`)"
    try:
        outcome = update.update(url=f"{cfg.server_url.rstrip('/')}/api/v1/tuf")
    except QuetError as exc:
        return f"update: refused — {exc}"
    return f"update: content version {outcome.version}" + (" (new)" if outcome.changed else "")


def scan(options: RunOptions) -> dict[str, Any]:
    from quet.scanner import engine, signatures

    engine.warm_up()
    sigs = signatures.load()
    scan_options = engine.ScanOptions(
        paths=list(options.paths),
        jobs=options.jobs,
        processes=options.system,
        persistence=options.system,
    )
    return engine.scan(scan_options, sigs).to_dict()


def upload(cfg: config.AgentConfig, spool: Spool | None = None) -> UploadSummary:
    spool = spool or Spool()
    with AgentClient(cfg.server_url, cfg.credential) as client:
        summary = client.upload_spool(spool)
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    if summary.ok:
        config.update_state(last_upload_at=now, last_error="")
    else:
        config.update_state(last_error=summary.error, last_error_at=now)
    return summary


def cycle(cfg: config.AgentConfig, options: RunOptions, log: Log) -> CycleResult:
    result = CycleResult()
    spool = Spool()
    serves_tuf = False
    try:
        with AgentClient(cfg.server_url, cfg.credential) as client:
            serves_tuf = bool(client.heartbeat(inventory(cfg.kind)).get("tuf"))
        log("heartbeat: ok")
    except AgentError as exc:
        log(f"heartbeat: {exc}")
    if options.update:
        log(update_content(cfg, serves_tuf))
    targets = options.paths or cfg.paths
    if targets or options.system:
        report = scan(RunOptions(targets, options.interval, options.system, options.update,
                                 options.jobs))  # fmt: skip
        spool.put(report)  # on disk before anything is sent
        config.update_state(last_scan_at=report["finished"] or report["started"],
                            last_scan_id=report["id"])  # fmt: skip
        result.scan_id, result.findings = report["id"], len(report["findings"])
        if report.get("interrupted"):
            raise KeyboardInterrupt  # Ctrl-C reached the scanner: the partial report is kept
        log(f"scan: {report['files_scanned']} files, {result.findings} findings ({report['id']})")
    result.upload = upload(cfg, spool)
    up = result.upload
    log(f"upload: {up.stored} sent, {up.duplicates} already there, {up.rejected} rejected"
        + (f", {up.kept} kept ({up.error})" if up.error else ""))  # fmt: skip
    return result


def run(
    options: RunOptions,
    log: Log,
    *,
    once: bool = False,
    stop: threading.Event | None = None,
) -> CycleResult | None:
    """Scan every `options.interval` seconds until stopped (Ctrl-C or `stop`); between scans,
    retry a waiting spool with a growing back-off."""
    cfg = config.load_config()
    stop = stop or threading.Event()
    last: CycleResult | None = None
    try:
        while True:
            try:
                last = cycle(cfg, options, log)
            except QuetError as exc:  # bad signatures, a full disk: try again next interval
                log(f"error: {exc}")
                last = CycleResult(upload=UploadSummary(error=str(exc)))
            if once:
                return last
            next_scan = time.monotonic() + options.interval
            backoff = MIN_BACKOFF
            while not stop.is_set() and time.monotonic() < next_scan:
                if last.upload.ok:
                    stop.wait(max(0.0, next_scan - time.monotonic()))
                    continue
                stop.wait(min(backoff, max(0.0, next_scan - time.monotonic())))
                if stop.is_set() or time.monotonic() >= next_scan:
                    break
                last.upload = upload(cfg)
                backoff = min(backoff * 2, max(MIN_BACKOFF, options.interval))
            if stop.is_set():
                return last
    except KeyboardInterrupt:
        log("stopped")
        return last
