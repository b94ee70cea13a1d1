"""What a scan produces: objects scanned, findings, and the ScanResult that is uploaded."""

from __future__ import annotations

import platform
import socket
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

SCHEMA_VERSION = 1


class Kind:
    """Finding kinds (what matched)."""

    HASH = "hash"
    YARA = "yara"
    FILENAME = "filename"
    C2 = "c2"
    HEURISTIC = "heuristic"  # e.g. an archive bomb
    PROCESS = "process"  # a process command line matched a filename IOC
    PERSISTENCE = "persistence"  # a persistence entry matched an indicator


@dataclass(slots=True)
class Finding:
    """One thing that matched: what, where, and what was done about it."""

    kind: str
    name: str  # detection name, e.g. "Win.Test.EICAR_HDB-1" or a YARA rule identifier
    path: str = ""  # "outer.zip!inner/path" for archive members
    indicator: str = ""  # the matched value: hash, regex, IP, "namespace:rule"
    source: str = ""  # the signature file that held it
    score: int = 100
    sha256: str = ""
    pid: int | None = None
    detail: str = ""
    action: str = "reported"  # or "quarantined", "quarantine-failed"
    quarantine_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, "")}


@dataclass(slots=True)
class ObjectScan:
    """One scanned object (a file or an archive member) as a worker saw it; no verdict yet."""

    path: str
    size: int = 0
    md5: str = ""
    sha1: str = ""
    sha256: str = ""
    yara: list[str] = field(default_factory=list)  # "namespace:rule"
    yara_scores: dict[str, int] = field(default_factory=dict)  # from a rule's `score` metadata
    error: str = ""  # could not be read or scanned
    problem: str = ""  # archive limit reached / bomb / encrypted member
    depth: int = 0  # 0 for files on disk, 1+ inside archives


@dataclass
class ScanResult:
    """One scan of one device. Its `id` makes uploads idempotent."""

    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    schema_version: int = SCHEMA_VERSION
    started: str = field(default_factory=lambda: now_iso())
    finished: str = ""
    hostname: str = field(default_factory=socket.gethostname)
    os: str = field(default_factory=lambda: f"{platform.system()} {platform.release()}")
    paths: list[str] = field(default_factory=list)
    signatures: dict[str, Any] = field(default_factory=dict)  # identity, counts by kind
    files_scanned: int = 0
    bytes_scanned: int = 0
    objects_scanned: int = 0  # files plus archive members
    files_cached: int = 0  # unchanged since the last scan: contents not read
    processes_scanned: int = 0
    persistence_entries: int = 0
    too_large: list[dict[str, Any]] = field(default_factory=list)  # {path, size}
    errors: list[dict[str, str]] = field(default_factory=list)  # {path, error}
    errors_count: int = 0
    problems: list[dict[str, str]] = field(default_factory=list)  # archive limits, bombs
    findings: list[Finding] = field(default_factory=list)
    interrupted: bool = False
    elapsed_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["findings"] = [f.to_dict() for f in self.findings]
        return data

    @property
    def infected_files(self) -> int:
        return len({f.path.split("!", 1)[0] for f in self.findings if f.path})

    def exit_code(self) -> int:
        """As clamscan: 1 when something was found, else 2 when the scan was incomplete, else 0."""
        if self.findings:
            return 1
        if self.interrupted or self.errors_count:
            return 2
        return 0


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
