"""7z archives through py7zr, with its output collected per member and cut off (by raising
from the writer) as soon as a limit or the bomb ratio is reached."""

from __future__ import annotations

import io
from collections.abc import Iterator

import py7zr
import py7zr.io
from py7zr.helpers import get_sanitized_output_path

from quet.scanner.archives.common import (
    ArchiveLimits,
    Budget,
    Member,
    Stop,
    admit,
    check_ratio,
    ends_archive,
)


def _failed(e: Exception) -> str:
    if isinstance(e, py7zr.UnsupportedCompressionMethodError):
        return f"unsupported: {e.args[-1] if e.args else e}"
    return f"corrupt: {type(e).__name__}: {e}"


class _SevenWriter(py7zr.io.Py7zIO):
    def __init__(self, sink: _SevenSink) -> None:
        self.sink = sink
        self.buf = bytearray()

    def write(self, s: bytes | bytearray) -> int:
        self.sink.account(self, len(s))
        self.buf += s
        return len(s)

    def read(self, size: int | None = None) -> bytes:
        return b""

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def flush(self) -> None:
        return None

    def size(self) -> int:
        return len(self.buf)


class _SevenSink(py7zr.io.WriterFactory):
    """Collects py7zr's output per member and stops it (by raising from write) at a limit."""

    def __init__(self, packed: int, limits: ArchiveLimits, budget: Budget) -> None:
        self.packed = packed
        self.limits = limits
        self.budget = budget
        self.out = 0
        self.writers: list[tuple[str, _SevenWriter]] = []

    def create(self, filename: str) -> py7zr.io.Py7zIO:
        writer = _SevenWriter(self)
        self.writers.append((filename, writer))
        return writer

    def account(self, writer: _SevenWriter, n: int) -> None:
        self.out += n
        check_ratio(self.out, self.packed, self.limits)
        self.budget.take(len(writer.buf), n)


def extract_7z(data: bytes, limits: ArchiveLimits, budget: Budget) -> Iterator[Member]:
    # py7zr stops each member at its declared size and counts all it decompresses (including
    # members it only skips over) against max_extract_size, which bounds its work
    room = max(0, limits.max_total_bytes - budget.total_bytes)
    try:
        archive = py7zr.SevenZipFile(io.BytesIO(data), mode="r", max_extract_size=room)
    except py7zr.PasswordRequired:
        yield Member("", None, 0, "encrypted")
        return
    except Exception as e:
        yield Member("", None, 0, _failed(e))
        return
    with archive:
        try:
            infos = [i for i in archive.list() if not i.is_directory and not i.is_symlink]
            encrypted = archive.needs_password()
        except Exception as e:
            yield Member("", None, 0, f"corrupt: {type(e).__name__}: {e}")
            return
        targets: list[str] = []
        declared: dict[str, tuple[str, int]] = {}  # py7zr's output name -> (name, size)
        for info in infos:
            size = int(info.uncompressed or 0)
            blocked = admit(info.filename, size, limits, budget)
            try:
                # py7zr refuses to extract anything if one name escapes its folder
                out = get_sanitized_output_path(info.filename, None).as_posix()
            except Exception:
                blocked = blocked or Member(info.filename, None, size, "unsupported: unsafe path")
            if blocked:
                yield blocked
                if ends_archive(blocked.problem):
                    return
            elif encrypted:
                yield Member(info.filename, None, size, "encrypted")
            else:
                declared[out] = (info.filename, size)
                targets.append(info.filename)
        if not targets:
            return
        sink = _SevenSink(len(data), limits, budget)
        stopped = ""
        try:
            archive.extract(targets=targets, factory=sink)
        except Stop as stop:
            stopped = stop.problem
        except py7zr.DecompressionBombError:
            stopped = "limit: max-total-bytes"
        except Exception as e:
            stopped = _failed(e)
    finished = sink.writers[:-1] if stopped else sink.writers
    for out, writer in finished:
        name, size = declared.get(out, (out, len(writer.buf)))
        yield Member(name, bytes(writer.buf), size)
    if stopped:
        out = sink.writers[-1][0] if sink.writers else ""
        name, size = declared.get(out, (out, 0))
        yield Member(name, None, size, stopped)
