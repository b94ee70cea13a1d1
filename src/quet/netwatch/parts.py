"""A large plain log read in parts side by side. DuckDB's CSV reader runs on one thread when it
must number the rows (the alerts need line numbers), so a log is cut at line ends into one part
per thread and each part is fed through its own named pipe to its own query."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

PART_MIN = 32 << 20  # bytes: a smaller log is read in one part (threads and pipes cost)
_FEED = 1 << 20  # bytes handed to the pipe per system call
_PIPE_SIZE = 1 << 20


def cut(path: Path, skip: int, parts: int, part_min: int | None = None) -> list[tuple[int, int]]:
    """Byte ranges (start, end) of the rows of `path` after its `skip` header lines, cut at line
    ends into at most `parts` pieces of at least `part_min` bytes; [] when the log is better
    read whole (small, not a regular file, or no named pipes on this system)."""
    part_min = PART_MIN if part_min is None else part_min
    if parts < 2 or not hasattr(os, "mkfifo"):
        return []
    try:
        if not path.is_file():
            return []
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(1 << 20)
            pos = 0
            for _ in range(skip):
                pos = head.find(b"\n", pos) + 1
                if pos == 0:
                    return []
            body = size - pos
            n = min(parts, body // max(1, part_min))
            if n < 2:
                return []
            cuts = [pos]
            for k in range(1, n):
                fh.seek(pos + body * k // n)
                fh.readline()
                at = fh.tell()
                if cuts[-1] < at < size:
                    cuts.append(at)
    except OSError:
        return []
    cuts.append(size)
    return list(itertools.pairwise(cuts)) if len(cuts) > 2 else []


def _feed(pipe: str, path: Path, start: int, end: int, stop: threading.Event) -> None:
    """Write bytes start..end of `path` into the named pipe (kernel to kernel where it can)."""
    out = os.open(pipe, os.O_WRONLY)  # waits for the reader
    try:
        with contextlib.suppress(ImportError, OSError, AttributeError):
            import fcntl  # a larger pipe: fewer wake-ups (Linux)

            fcntl.fcntl(out, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
        with path.open("rb") as src:
            fd, at = src.fileno(), start
            copy = True
            while at < end and not stop.is_set():
                want = min(end - at, _FEED)
                if copy:
                    try:
                        sent = os.sendfile(out, fd, at, want)
                    except BrokenPipeError:
                        return
                    except OSError:
                        if at != start:
                            raise
                        copy = False  # sendfile cannot write to a pipe here: copy through us
                        continue
                else:
                    data = os.pread(fd, want, at)
                    try:
                        sent = os.write(out, data) if data else 0
                    except BrokenPipeError:
                        return
                if sent == 0:
                    return
                at += sent
    finally:
        os.close(out)


def read_side_by_side(
    path: Path, ranges: Sequence[tuple[int, int]], work: Callable[[int, str], None]
) -> None:
    """Calls `work(i, pipe)` for every range at once, each in its own thread, `pipe` the name of
    a named pipe that gives the range's bytes and then ends. The first error is raised once
    every part has stopped."""
    tmp = tempfile.mkdtemp(prefix="quet-parts-")
    errors: list[BaseException] = []
    threads: list[threading.Thread] = []

    def feed(pipe: str, start: int, end: int, stop: threading.Event) -> None:
        try:
            _feed(pipe, path, start, end, stop)
        except BaseException as exc:  # the reader saw a short part: its answer must not count
            errors.append(exc)

    def run(i: int, pipe: str, writer: threading.Thread, stop: threading.Event) -> None:
        try:
            work(i, pipe)
        except BaseException as exc:  # handed to the caller below
            errors.append(exc)
        finally:
            stop.set()
            # A reader that failed before opening (or reading to the end of) its pipe leaves
            # the writer blocked: open the other end, and drain it, until the writer stops.
            while writer.is_alive():
                with contextlib.suppress(OSError):
                    fd = os.open(pipe, os.O_RDONLY | os.O_NONBLOCK)
                    try:
                        with contextlib.suppress(OSError):
                            os.read(fd, _FEED)
                    finally:
                        os.close(fd)
                writer.join(0.05)

    try:
        for i, (start, end) in enumerate(ranges):
            pipe = os.path.join(tmp, f"part{i}")
            os.mkfifo(pipe, 0o600)
            stop = threading.Event()
            writer = threading.Thread(target=feed, args=(pipe, start, end, stop), daemon=True)
            reader = threading.Thread(target=run, args=(i, pipe, writer, stop), daemon=True)
            threads += [writer, reader]
            writer.start()
            reader.start()
        for th in threads:
            th.join()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if errors:
        raise errors[0]
