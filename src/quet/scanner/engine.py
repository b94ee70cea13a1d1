"""The scan: walk, skip what is unchanged, fan the rest out to worker processes, judge, act.

The engine reports progress through a small sink interface and never prints: the CLI draws the
bar, the agent (later) logs. Ctrl-C (KeyboardInterrupt) stops the workers and returns a partial result.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from quet import paths
from quet.indicators.model import IndicatorType
from quet.scanner import archives, persistence, processes, verdict
from quet.scanner.cache import ScanCache
from quet.scanner.result import Finding, ObjectScan, ScanResult, now_iso
from quet.scanner.signatures import SignatureSet
from quet.scanner.walk import FileEntry, WalkOptions, walk
from quet.scanner.worker import Worker, WorkerConfig, init_process, scan_batch

MAX_ERRORS_LISTED = 1000
BATCH_FILES = 64
BATCH_BYTES = 16 * 2**20


@dataclass
class ScanOptions:
    paths: list[str] = field(default_factory=list)
    walk: WalkOptions = field(default_factory=WalkOptions)
    max_size: int = 100 * 2**20
    jobs: int = 0  # 0 = all cores
    use_cache: bool = True
    cache_path: Path | None = None
    scan_archives: bool = True
    limits: archives.ArchiveLimits = field(default_factory=archives.ArchiveLimits)
    quarantine: bool = False
    processes: bool = False
    persistence: bool = False
    persistence_root: Path = Path("/")


class ProgressSink(Protocol):
    def counted(self, files: int, nbytes: int) -> None: ...
    def start(self, files: int, nbytes: int) -> None: ...
    def advance(self, files: int, nbytes: int) -> None: ...
    def found(self, finding: Finding) -> None: ...
    def phase(self, name: str) -> None: ...


class NullProgress:
    def counted(self, files: int, nbytes: int) -> None:
        pass

    def start(self, files: int, nbytes: int) -> None:
        pass

    def advance(self, files: int, nbytes: int) -> None:
        pass

    def found(self, finding: Finding) -> None:
        pass

    def phase(self, name: str) -> None:
        pass


class Scan:
    def __init__(
        self, options: ScanOptions, sigs: SignatureSet, progress: ProgressSink | None = None
    ) -> None:
        self.options = options
        self.sigs = sigs
        self.progress = progress or NullProgress()
        self.result = ScanResult(paths=list(options.paths), signatures=sigs.summary())
        self._infected: dict[str, str] = {}  # top-level path -> sha256, for quarantine
        self.cache: ScanCache | None = None
        self.executor: cf.ProcessPoolExecutor | None = None
        needed = sigs.hashes.types()
        self.config = WorkerConfig(
            rules_blob=str(sigs.rules.blob_path) if sigs.rules.blob_path else None,
            limits=options.limits,
            scan_archives=options.scan_archives,
            md5=IndicatorType.MD5 in needed,
            sha1=IndicatorType.SHA1 in needed,
        )
        self.hash_fields = tuple(
            name for name, on in (("md5", self.config.md5), ("sha1", self.config.sha1)) if on
        )

    # -- the whole run -------------------------------------------------------------------------
    def run(self) -> ScanResult:
        t0 = time.perf_counter()
        try:
            entries = self._count() if self.options.paths else []
            big = sum(e.size for e in entries)
            if self.options.use_cache:
                path = self.options.cache_path or paths.cache_dir() / "scan-cache.sqlite"
                self.cache = ScanCache(path, self.sigs.rules.identity, self.hash_fields)
            self.progress.start(len(entries), big)
            self._scan_entries(entries)
            if self.options.processes:
                self.progress.phase("processes")
                self._scan_processes()
            if self.options.persistence:
                self.progress.phase("persistence")
                self._scan_persistence()
            if self.options.quarantine and self._infected:
                self.progress.phase("quarantine")
                self._quarantine()
        except KeyboardInterrupt:
            self.result.interrupted = True
            if self.executor is not None:
                _kill_pool(self.executor)
                self.executor = None
        finally:
            if self.executor is not None:
                self.executor.shutdown(wait=True, cancel_futures=True)
            if self.cache is not None:
                self.cache.close()
            self.result.finished = now_iso()
            self.result.elapsed_seconds = round(time.perf_counter() - t0, 3)
        return self.result

    def _pool(self, jobs: int) -> cf.ProcessPoolExecutor:
        # Workers come from a fork server that imported only the worker module: they do not carry
        # the parent's hash lists and caches (memory), and no thread of the parent is forked.
        executor = cf.ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=_context(),
            initializer=init_process,
            initargs=(self.config,),
        )
        for fut in [executor.submit(int) for _ in range(jobs)]:
            fut.result()  # start the workers now, before the progress bar
        return executor

    def _count(self) -> list[FileEntry]:
        entries: list[FileEntry] = []
        nbytes = 0
        for entry in walk(self.options.paths, self.options.walk, self._walk_error):
            if entry.size > self.options.max_size:
                self.result.too_large.append({"path": entry.path, "size": entry.size})
                continue
            entries.append(entry)
            nbytes += entry.size
            if len(entries) % 2000 == 0:
                self.progress.counted(len(entries), nbytes)
        self.progress.counted(len(entries), nbytes)
        return entries

    def _walk_error(self, path: str, why: str) -> None:
        self._error(path, why)

    def _error(self, path: str, why: str) -> None:
        self.result.errors_count += 1
        if len(self.result.errors) < MAX_ERRORS_LISTED:
            self.result.errors.append({"path": path, "error": why})

    # -- files -----------------------------------------------------------------------------------
    def _scan_entries(self, entries: list[FileEntry]) -> None:
        todo: list[FileEntry] = []
        for start in range(0, len(entries), 2000):
            chunk = entries[start : start + 2000]
            cached = self.cache.get_many(chunk) if self.cache else [None] * len(chunk)
            hits = [(e, objs) for e, objs in zip(chunk, cached, strict=True) if objs is not None]
            todo += [e for e, objs in zip(chunk, cached, strict=True) if objs is None]
            self.result.files_cached += len(hits)
            self._accept_many(hits, from_cache=True)
        jobs = self.options.jobs or os.cpu_count() or 1
        if self.executor is None and jobs > 1 and len(todo) > BATCH_FILES:
            # Only now: a rescan of an unchanged disk never starts a worker.
            self.executor = self._pool(jobs)
        executor = self.executor
        if executor is None:
            local = Worker(self.config, self.sigs.rules.rules)
            for batch in _batches(todo):
                self._accept_many([(e, local.scan_file(e.path, e.uid)) for e in batch])
            return
        pending: dict[cf.Future[list[list[ObjectScan]]], list[FileEntry]] = {}
        limit = 4 * (getattr(executor, "_max_workers", 2) or 2)
        for batch in _batches(todo):
            while len(pending) >= limit:
                self._drain(pending, cf.FIRST_COMPLETED)
            fut = executor.submit(scan_batch, [(e.path, e.uid) for e in batch])
            pending[fut] = batch
        while pending:
            self._drain(pending, cf.FIRST_COMPLETED)

    def _drain(
        self, pending: dict[cf.Future[list[list[ObjectScan]]], list[FileEntry]], how: str
    ) -> None:
        done, _ = cf.wait(list(pending), return_when=how)
        for fut in done:
            batch = pending.pop(fut)
            try:
                results = fut.result()
            except Exception as exc:  # a worker died (e.g. killed by the OOM killer)
                for entry in batch:
                    self._error(entry.path, f"worker failed: {exc!r}")
                    self.progress.advance(1, entry.size)
                continue
            self._accept_many(list(zip(batch, results, strict=True)))

    def _accept_many(
        self, batch: list[tuple[FileEntry, list[ObjectScan]]], from_cache: bool = False
    ) -> None:
        if not batch:
            return
        res = self.result
        flat = [obj for _, objects in batch for obj in objects]
        verdicts = iter(verdict.judge_many(flat, self.sigs))
        for entry, objects in batch:
            res.files_scanned += 1
            res.bytes_scanned += entry.size
            res.objects_scanned += len(objects)
            for obj in objects:
                if obj.error:
                    self._error(obj.path, obj.error)
                if obj.problem:
                    res.problems.append({"path": obj.path, "problem": obj.problem})
                for finding in next(verdicts):
                    self._add(finding)
                    self._infected.setdefault(entry.path, objects[0].sha256)
            if self.cache is not None and not from_cache:
                self.cache.put(entry, objects)
        self.progress.advance(len(batch), sum(entry.size for entry, _ in batch))

    def _add(self, finding: Finding) -> None:
        self.result.findings.append(finding)
        self.progress.found(finding)

    # -- processes and persistence ---------------------------------------------------------------
    def _scan_processes(self) -> None:
        procs, errors = processes.list_processes()
        self.result.processes_scanned = len(procs)
        for note in errors[:50]:
            self.result.problems.append({"path": "processes", "problem": note})
        for finding in processes.match_processes(
            procs, self.sigs.filenames, self.sigs.c2_ips, verdict.FILENAME_MIN_SCORE
        ):
            self._add(finding)
        self._scan_extra(processes.executables(procs))

    def _scan_persistence(self) -> None:
        entries, errors = persistence.linux_entries(self.options.persistence_root)
        if os.name == "nt":  # pragma: no cover - exercised on Windows only
            from quet.scanner import persistence_windows

            more, errs = persistence_windows.windows_entries()
            entries += more
            errors += errs
        self.result.persistence_entries = len(entries)
        for note in errors[:50]:
            self.result.problems.append({"path": "persistence", "problem": note})
        for finding in persistence.match_entries(
            entries,
            self.sigs.filenames,
            self.sigs.c2_ips,
            self.sigs.c2_domains,
            verdict.FILENAME_MIN_SCORE,
        ):
            self._add(finding)
        self._scan_extra(persistence.targets(entries))

    def _scan_extra(self, files: list[str]) -> None:
        """Scan executables that processes or persistence entries point at, once each."""
        seen = {f["path"] for f in self.result.too_large}
        entries = []
        for path in files:
            if path in seen:
                continue
            seen.add(path)
            try:
                st = os.stat(path)
            except OSError:
                continue
            if st.st_size > self.options.max_size:
                continue
            entries.append(
                FileEntry(path, st.st_size, st.st_dev, st.st_ino, st.st_mtime_ns,
                          st.st_ctime_ns, st.st_uid)
            )  # fmt: skip
        self._scan_entries(entries)

    # -- quarantine ------------------------------------------------------------------------------
    def _quarantine(self) -> None:
        from quet.errors import QuarantineError
        from quet.scanner.quarantine import Vault

        vault = Vault()
        for path, sha256 in self._infected.items():
            names = sorted({f.name for f in self.result.findings if _top(f.path) == path})
            try:
                entry = vault.quarantine(
                    Path(path), detection=", ".join(names), expected_sha256=sha256 or None
                )
            except (QuarantineError, OSError) as exc:
                for f in self.result.findings:
                    if _top(f.path) == path:
                        f.action = "quarantine-failed"
                        f.detail = (f.detail + "; " if f.detail else "") + str(exc)
                continue
            for f in self.result.findings:
                if _top(f.path) == path:
                    f.action = "quarantined"
                    f.quarantine_id = entry.id


def _context() -> multiprocessing.context.BaseContext:
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")  # pragma: no cover - Windows, macOS
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["quet.scanner.worker"])
    return ctx


def warm_up() -> None:
    """Start the fork server now, so it imports the worker while the parent loads signatures."""
    ctx = _context()
    if ctx.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


def _top(path: str) -> str:
    return path.split("!", 1)[0]


def _batches(entries: list[FileEntry]) -> Iterable[list[FileEntry]]:
    batch: list[FileEntry] = []
    size = 0
    for entry in entries:
        batch.append(entry)
        size += entry.size
        if len(batch) >= BATCH_FILES or size >= BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _kill_pool(executor: cf.ProcessPoolExecutor) -> None:
    procs = list(getattr(executor, "_processes", {}).values())
    executor.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.join(timeout=5)


def scan(
    options: ScanOptions, sigs: SignatureSet, progress: ProgressSink | None = None
) -> ScanResult:
    return Scan(options, sigs, progress).run()
