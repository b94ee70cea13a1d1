"""The per-file work, run in worker processes: one read, three hashes, YARA, archives, recursively.

Workers return ObjectScan records only; verdicts (hash lists, filename IOCs) are made in the parent,
so a worker needs nothing but the compiled rules.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import pwd
import signal
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yara_x

from quet.indicators import yararules
from quet.scanner import archives
from quet.scanner.result import ObjectScan

INLINE_MAX = 2**20  # up to this size a file is read in one read; larger ones are memory-mapped
YARA_TIMEOUT = 60  # seconds per object


@dataclass(frozen=True)
class WorkerConfig:
    rules_blob: str | None  # serialized compiled rules in the cache
    limits: archives.ArchiveLimits
    scan_archives: bool = True
    # SHA256 is always computed (reports, quarantine); MD5 and SHA1 only when a signature needs
    # them: together they cost three times what SHA256 does on CPUs with SHA extensions.
    md5: bool = True
    sha1: bool = True


class Worker:
    """Holds one YARA scanner; used in each worker process, or in-process for small jobs."""

    def __init__(self, config: WorkerConfig, rules: yara_x.Rules | None = None) -> None:
        self.config = config
        if rules is None and config.rules_blob:
            rules = yararules.load_blob(Path(config.rules_blob))
        self.scanner: yara_x.Scanner | None = None
        if rules is not None:
            self.scanner = yara_x.Scanner(rules)
            self.scanner.set_timeout(YARA_TIMEOUT)

    def scan_file(self, path: str, uid: int = -1) -> list[ObjectScan]:
        out: list[ObjectScan] = []
        top = ObjectScan(path=path)
        out.append(top)
        try:
            with open(path, "rb", buffering=0) as fh:
                size = os.fstat(fh.fileno()).st_size
                top.size = size
                if size > INLINE_MAX:
                    with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                        self._hash(top, mm)
                        # yara-x maps the file itself: the same page-cache pages, not a second disk read.
                        self._yara_file(top, path, uid)
                        if self.config.scan_archives:
                            head = mm[:4096]
                            kind = archives.archive_kind(head, path)
                            if kind:
                                self._archive(top, mm[:], kind, path, 0, out)
                    return out
                data = fh.read()
        except OSError as exc:
            top.error = exc.strerror or str(exc)
            return out
        top.size = len(data)
        self._scan_bytes(top, data, path, uid, 0, out, archives.Budget(self.config.limits))
        return out

    def _scan_bytes(
        self,
        obj: ObjectScan,
        data: bytes,
        name: str,
        uid: int,
        depth: int,
        out: list[ObjectScan],
        budget: archives.Budget,
    ) -> None:
        self._hash(obj, data)
        self._yara(obj, data, name, uid)
        if self.config.scan_archives:
            kind = archives.archive_kind(data[:4096], name)
            if kind:
                self._archive(obj, data, kind, name, depth, out, budget)

    def _archive(
        self,
        obj: ObjectScan,
        data: bytes,
        kind: str,
        name: str,
        depth: int,
        out: list[ObjectScan],
        budget: archives.Budget | None = None,
    ) -> None:
        limits = self.config.limits
        budget = budget or archives.Budget(limits)
        if depth >= limits.max_depth:
            obj.problem = f"limit: max-depth {limits.max_depth}"
            return
        outer = os.path.basename(name.rsplit("!", 1)[-1])
        for member in archives.extract(data, kind, limits, budget, outer_name=outer):
            display = f"{obj.path}!{member.name}" if member.name else obj.path
            if not member.name and member.problem:
                obj.problem = member.problem  # the archive as a whole is broken or a bomb
                continue
            child = ObjectScan(path=display, size=member.size, depth=depth + 1)
            out.append(child)
            if member.problem:
                child.problem = member.problem
            if member.data is None:
                continue
            child.size = len(member.data)
            self._scan_bytes(child, member.data, member.name, -1, depth + 1, out, budget)

    def _hash(self, obj: ObjectScan, data: bytes | mmap.mmap) -> None:
        if self.config.md5:
            obj.md5 = hashlib.md5(data).hexdigest()
        if self.config.sha1:
            obj.sha1 = hashlib.sha1(data).hexdigest()
        obj.sha256 = hashlib.sha256(data).hexdigest()

    def _set_externals(self, name: str, uid: int) -> None:
        assert self.scanner is not None
        base = os.path.basename(name)
        ext = os.path.splitext(base)[1].lstrip(".").lower()
        self.scanner.set_global("filename", base)
        self.scanner.set_global("filepath", os.path.dirname(name))
        self.scanner.set_global("extension", ext)
        self.scanner.set_global("owner", _owner(uid))

    def _yara(self, obj: ObjectScan, data: bytes, name: str, uid: int) -> None:
        if self.scanner is None:
            return
        self._set_externals(name, uid)
        self.scanner.set_global("filetype", filetype(data[:8]))
        try:
            results = self.scanner.scan(data)
        except yara_x.TimeoutError:
            obj.error = f"YARA timed out after {YARA_TIMEOUT} s"
            return
        except yara_x.ScanError as exc:
            obj.error = f"YARA: {exc}"
            return
        _collect(obj, results)

    def _yara_file(self, obj: ObjectScan, path: str, uid: int) -> None:
        if self.scanner is None:
            return
        self._set_externals(path, uid)
        with open(path, "rb") as fh:
            self.scanner.set_global("filetype", filetype(fh.read(8)))
        try:
            results = self.scanner.scan_file(path)
        except yara_x.TimeoutError:
            obj.error = f"YARA timed out after {YARA_TIMEOUT} s"
            return
        except (yara_x.ScanError, OSError) as exc:
            obj.error = f"YARA: {exc}"
            return
        _collect(obj, results)


def _collect(obj: ObjectScan, results: yara_x.ScanResults) -> None:
    for rule in results.matching_rules:
        ident = f"{rule.namespace}:{rule.identifier}"
        obj.yara.append(ident)
        for key, value in rule.metadata:
            if key == "score" and isinstance(value, int):
                obj.yara_scores[ident] = max(0, min(100, value))


@lru_cache(maxsize=256)
def _owner(uid: int) -> str:
    if uid < 0:
        return ""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


_MAGIC = (
    (b"MZ", "EXE"),
    (b"\x7fELF", "ELF"),
    (b"PK\x03\x04", "ZIP"),
    (b"%PDF", "PDF"),
    (b"\xd0\xcf\x11\xe0", "OLE"),
    (b"#!", "SCRIPT"),
)


def filetype(head: bytes) -> str:
    """Loki's coarse file types, from magic bytes."""
    return next((kind for magic, kind in _MAGIC if head.startswith(magic)), "")


# -- process-pool plumbing -------------------------------------------------------------------

_WORKER: Worker | None = None


def init_process(config: WorkerConfig) -> None:
    # Ctrl-C is the parent's to handle: it stops the pool and writes the partial report.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    global _WORKER
    _WORKER = Worker(config)


def scan_batch(batch: list[tuple[str, int]]) -> list[list[ObjectScan]]:
    assert _WORKER is not None, "init_process was not called"
    return [_WORKER.scan_file(path, uid) for path, uid in batch]
