"""Archive extraction for the scanner: zip, tar (plain or compressed), single gzip/bzip2/xz
streams and 7z, with ClamAV-like limits and bomb checks enforced while decompressing."""

from __future__ import annotations

import bz2
import io
import lzma
import stat
import struct
import tarfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import py7zr
import py7zr.io
from py7zr.helpers import get_sanitized_output_path

CHUNK = 64 * 1024  # output produced per decompression step: bounds memory per step
_PEEK_INPUT = 1 << 20  # bzip2 emits nothing before a whole block: feed at most this much to peek

_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08PK\x03\x04")
_7Z_MAGIC = b"7z\xbc\xaf\x27\x1c"
_XZ_MAGIC = b"\xfd7zXZ\x00"
_SUFFIXES = {"gzip": (".gz", ".gzip", ".z"), "bzip2": (".bz2", ".bz", ".bzip2"), "xz": (".xz",)}
_TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tbz", ".tar.xz", ".txz")
_ZIP_CODECS = {0: "", 8: "deflate", 12: "zip-bzip2", 14: "zip-lzma"}


@dataclass(frozen=True)
class ArchiveLimits:
    """Defaults follow clamscan: --max-recursion 17, --max-files 10000, --max-scansize 400M,
    --max-filesize 100M; a member over ratio_min_size inflating more than max_ratio:1 is a bomb."""

    max_depth: int = 17
    max_files: int = 10_000
    max_total_bytes: int = 400 * 2**20
    max_member_bytes: int = 100 * 2**20
    max_ratio: float = 100.0
    ratio_min_size: int = 1 * 2**20


class Budget:
    """What one top-level file's whole recursion has consumed (shared across all depths)."""

    __slots__ = ("files", "limits", "total_bytes")

    def __init__(self, limits: ArchiveLimits) -> None:
        self.limits = limits
        self.files = 0
        self.total_bytes = 0


@dataclass(slots=True)
class Member:
    """One regular file inside an archive; `data` is None when it was not extracted."""

    name: str
    data: bytes | None
    size: int
    problem: str = ""


class _Stop(Exception):
    """A limit or bomb check fired; `problem` is the Member.problem text."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def _human(n: int) -> str:
    for unit, div in (("GB", 2**30), ("MB", 2**20), ("kB", 2**10)):
        if n >= div:
            return f"{n / div:.0f} {unit}"
    return f"{n} B"


def _failed(e: Exception) -> str:
    if isinstance(e, py7zr.UnsupportedCompressionMethodError):
        return f"unsupported: {e.args[-1] if e.args else e}"
    return f"corrupt: {type(e).__name__}: {e}"


def _too_large(size: int, limits: ArchiveLimits) -> str:
    return f"too-large: {_human(size)} > {_human(limits.max_member_bytes)}"


def _ratio_bomb(out: int, packed: int) -> str:
    return f"bomb: ratio {out // max(packed, 1)}:1 ({_human(out)}+ from {_human(packed)})"


# --- streaming decompression ------------------------------------------------------------------


class _Inflater:
    """Decompresses `src` step by step, never more than `n` bytes per read, and raises _Stop as
    soon as the output outgrows the input by more than the bomb ratio."""

    def __init__(
        self, src: memoryview, codec: str, limits: ArchiveLimits, expected: int | None = None
    ) -> None:
        self.src = src
        self.codec = codec  # gzip, bzip2, xz (multi-stream) or deflate, zip-bzip2, zip-lzma
        self.limits = limits
        self.expected = expected
        self.pos = 0
        self.out = 0
        self.done = False
        self.dec: Any = self._new()

    def _new(self) -> Any:
        codec = self.codec
        if codec == "deflate":
            return zlib.decompressobj(-15)
        if codec == "gzip":
            return zlib.decompressobj(31)
        if codec in ("bzip2", "zip-bzip2"):
            return bz2.BZ2Decompressor()
        if codec == "xz":
            return lzma.LZMADecompressor(lzma.FORMAT_XZ)
        if codec == "zip-lzma":
            # zip's LZMA: 2-byte version, 2-byte props length, 5 props bytes, then raw LZMA1
            head = bytes(self.src[:9])
            if len(head) < 9 or struct.unpack_from("<H", head, 2)[0] != 5:
                raise ValueError("bad LZMA properties header")
            d = head[4]
            if d >= 9 * 5 * 5:
                raise ValueError("bad LZMA properties")
            dict_size = struct.unpack_from("<I", head, 5)[0]
            filt = {"id": lzma.FILTER_LZMA1, "dict_size": dict_size}
            filt.update(lc=d % 9, lp=(d // 9) % 5, pb=d // 45)
            self.pos = 9
            return lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[filt])
        raise ValueError(f"unknown codec {codec}")

    def _feed(self) -> bytes:
        chunk = bytes(self.src[self.pos : self.pos + CHUNK])
        self.pos += len(chunk)
        return chunk

    def read(self, n: int = CHUNK) -> bytes:
        n = max(1, min(n, CHUNK))
        while not self.done:
            dec = self.dec
            if isinstance(dec, type(zlib.decompressobj())):
                data = dec.unconsumed_tail or self._feed()
                starved = not data
                out = dec.decompress(data, n)
            else:
                data = self._feed() if dec.needs_input else b""
                starved = dec.needs_input and not data
                out = dec.decompress(data, n)
            if dec.eof:
                # input after the end of the stream; zlib also leaves it in unconsumed_tail
                self._next_stream(len(dec.unused_data))
            elif starved and not out:
                self.done = True
                if self.expected is None or self.out < self.expected:
                    raise EOFError(f"truncated {self.codec} data after {self.out} bytes")
            if out:
                self.out += len(out)
                self._check_ratio()
                return out
        return b""

    def _next_stream(self, leftover: int) -> None:
        # gzip, bzip2 and xz files may hold several concatenated streams; anything else after the
        # first stream (trailing garbage, zero padding) is ignored as the command-line tools do
        self.pos -= leftover
        rest = bytes(self.src[self.pos : self.pos + 6])
        magic = {"gzip": b"\x1f\x8b", "bzip2": b"BZh", "xz": _XZ_MAGIC}.get(self.codec)
        if magic and rest.startswith(magic):
            self.dec = self._new()
        else:
            self.done = True

    def _check_ratio(self) -> None:
        packed = len(self.src)
        lim = self.limits
        if self.out > lim.ratio_min_size and self.out > lim.max_ratio * packed:
            raise _Stop(_ratio_bomb(self.out, packed))


class _Plain:
    """Same read() interface over stored (uncompressed) bytes."""

    def __init__(self, src: memoryview, expected: int | None = None) -> None:
        self.src = src
        self.pos = 0
        self.out = 0
        self.expected = expected

    def read(self, n: int = CHUNK) -> bytes:
        chunk = bytes(self.src[self.pos : self.pos + max(1, min(n, CHUNK))])
        self.pos += len(chunk)
        self.out += len(chunk)
        if not chunk and self.expected is not None and self.out < self.expected:
            self.expected = None
            raise EOFError(f"truncated data after {self.out} bytes")
        return chunk


class _RawIO(io.RawIOBase):
    """A readable file object over a _Inflater/_Plain, for tarfile's stream mode."""

    def __init__(self, reader: _Inflater | _Plain) -> None:
        self.reader = reader

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        chunk = self.reader.read(len(b))
        b[: len(chunk)] = chunk
        return len(chunk)


def _collect(
    read: Callable[[int], bytes], limits: ArchiveLimits, budget: Budget
) -> tuple[bytes | None, str]:
    """Read a member to its end under the member and total limits. Returns (data, problem): a
    decompression error keeps what was read before it (a scanner still wants to look at it)."""
    buf = bytearray()
    problem = ""
    while True:
        try:
            chunk = read(CHUNK)
        except _Stop:
            raise
        except Exception as e:  # every decoder has its own error types; all mean a bad archive
            problem = f"corrupt: {type(e).__name__}: {e}"
            break
        if not chunk:
            break
        if len(buf) + len(chunk) > limits.max_member_bytes:
            raise _Stop(_too_large(len(buf) + len(chunk), limits))
        if budget.total_bytes + len(chunk) > limits.max_total_bytes:
            raise _Stop("limit: max-total-bytes")
        budget.total_bytes += len(chunk)
        buf += chunk
    if problem and not buf:
        return None, problem
    return bytes(buf), problem


def _admit(name: str, size: int, limits: ArchiveLimits, budget: Budget) -> Member | None:
    """Count one member against the budget; a Member to yield instead of extracting, or None."""
    if budget.files >= limits.max_files:
        return Member(name, None, size, "limit: max-files")
    budget.files += 1
    return _fits(name, size, limits, budget)


def _fits(name: str, size: int, limits: ArchiveLimits, budget: Budget) -> Member | None:
    if size > limits.max_member_bytes:
        return Member(name, None, size, _too_large(size, limits))
    if budget.total_bytes + size > limits.max_total_bytes:
        return Member(name, None, size, "limit: max-total-bytes")
    return None


def _ends_archive(problem: str) -> bool:
    return problem.startswith("limit:")


# --- detection --------------------------------------------------------------------------------


def _is_tar_header(block: bytes) -> bool:
    if len(block) < 512 or not block[:100].strip(b"\0"):
        return False
    if block[257:262] == b"ustar":
        return True
    # pre-POSIX (v7) tar has no magic: trust a valid header checksum
    try:
        stored = int(block[148:156].replace(b"\0", b" ").strip() or b"-1", 8)
    except ValueError:
        return False
    return stored == sum(block[:148]) + 8 * 32 + sum(block[156:512])


def _codec(head: bytes) -> str | None:
    if head.startswith(b"\x1f\x8b\x08"):
        return "gzip"
    if (
        len(head) >= 10
        and head.startswith(b"BZh")
        and 0x31 <= head[3] <= 0x39
        and head[4:10] in (b"1AY&SY", b"\x17rE8P\x90")
    ):
        return "bzip2"
    if head.startswith(_XZ_MAGIC):
        return "xz"
    return None


def _peek(data: bytes, codec: str, n: int = 512) -> bytes:
    """The first `n` decompressed bytes, or fewer if the input is too short or broken."""
    inf = _Inflater(memoryview(data)[:_PEEK_INPUT], codec, ArchiveLimits(ratio_min_size=2**62))
    out = bytearray()
    try:
        while len(out) < n:
            chunk = inf.read(n - len(out))
            if not chunk:
                break
            out += chunk
    except Exception:  # a broken stream simply is not a tar: the caller reports the error later
        pass
    return bytes(out)


def archive_kind(head: bytes, name: str = "") -> str | None:
    """The archive kind of a file by its first bytes (512+; the whole file is best for bzip2):
    zip, tar (also compressed), gzip, bzip2, xz, 7z, or None."""
    if head.startswith(_ZIP_MAGICS):
        return "zip"
    if head.startswith(_7Z_MAGIC):
        return "7z"
    if _is_tar_header(head[:512]):
        return "tar"
    codec = _codec(head)
    if codec is None:
        return None
    inner = _peek(head, codec)
    if _is_tar_header(inner):
        return "tar"
    if len(inner) < 512 and name.lower().endswith(_TAR_SUFFIXES):
        return "tar"  # head too short to see the tar header; extract() peeks again on all data
    return codec


# --- single streams and tar -------------------------------------------------------------------


def _gzip_fname(data: bytes) -> str:
    try:
        flags = data[3]
        pos = 10
        if flags & 4:
            pos += 2 + struct.unpack_from("<H", data, pos)[0]
        if flags & 8:
            end = data.index(b"\0", pos, pos + 1024)
            return data[pos:end].decode("latin-1").replace("\\", "/").rsplit("/", 1)[-1]
    except (IndexError, ValueError, struct.error):
        pass
    return ""


def _stream_name(data: bytes, codec: str, outer_name: str) -> str:
    if codec == "gzip" and (fname := _gzip_fname(data)):
        return fname
    base = outer_name.replace("\\", "/").rsplit("/", 1)[-1]
    lower = base.lower()
    for suffix in _SUFFIXES.get(codec, ()):
        if lower.endswith(suffix) and len(base) > len(suffix):
            return base[: -len(suffix)]
    return base


def _extract_single(
    data: bytes, codec: str, limits: ArchiveLimits, budget: Budget, outer_name: str
) -> Iterator[Member]:
    name = _stream_name(data, codec, outer_name)
    blocked = _admit(name, 0, limits, budget)
    if blocked:
        yield blocked
        return
    inf = _Inflater(memoryview(data), codec, limits)
    try:
        body, problem = _collect(inf.read, limits, budget)
    except _Stop as stop:
        yield Member(name, None, inf.out, stop.problem)
        return
    yield Member(name, body, inf.out, problem)


def _extract_tar(data: bytes, limits: ArchiveLimits, budget: Budget) -> Iterator[Member]:
    codec = _codec(data[:16])
    view = memoryview(data)
    reader: _Inflater | _Plain = _Inflater(view, codec, limits) if codec else _Plain(view)
    try:
        # stream mode ("r|") never seeks, so skipped members are decompressed (and ratio-checked)
        # in CHUNK steps rather than rewound through
        tf = tarfile.open(fileobj=io.BufferedReader(_RawIO(reader), CHUNK), mode="r|")  # noqa: SIM115
    except _Stop as stop:
        yield Member("", None, 0, stop.problem)
        return
    except Exception as e:
        yield Member("", None, 0, f"corrupt: not a readable tar: {e}")
        return
    while True:
        try:
            ti = tf.next()
        except _Stop as stop:
            yield Member("", None, 0, stop.problem)
            return
        except Exception as e:
            yield Member("", None, 0, f"corrupt: {type(e).__name__}: {e}")
            return
        if ti is None:
            return
        # keep no TarInfo per entry: a flood of headers must not grow memory
        tf.members.clear()  # type: ignore[attr-defined]
        if not ti.isreg():
            continue
        blocked = _admit(ti.name, ti.size, limits, budget)
        if blocked:
            yield blocked
            if _ends_archive(blocked.problem):
                return
            continue
        fobj = tf.extractfile(ti)
        if fobj is None:
            continue
        try:
            body, problem = _collect(fobj.read, limits, budget)
        except _Stop as stop:  # the shared stream is now unusable: nothing after can be read
            yield Member(ti.name, None, ti.size, stop.problem)
            return
        yield Member(ti.name, body, ti.size, problem)
        if problem:
            return


# --- zip --------------------------------------------------------------------------------------


@dataclass(slots=True)
class _ZipEntry:
    name: str
    offset: int  # of the local header
    method: int
    flags: int
    csize: int  # -1: unknown (local header walk with a data descriptor)
    usize: int
    crc: int | None
    regular: bool = True
    data_start: int = -1
    overlaps: str = ""  # name of an earlier entry whose data this one shares


def _central_entries(data: bytes, cap: int) -> list[_ZipEntry]:
    """Parse the central directory ourselves (not zipfile) so that at most `cap` entries are
    ever held: a small zip can list millions of empty entries."""
    eocd = data.rfind(b"PK\x05\x06", max(0, len(data) - 65557))
    if eocd < 0 or eocd + 22 > len(data):
        raise ValueError("no end-of-central-directory record")
    count, cd_size, cd_offset = struct.unpack_from("<HII", data, eocd + 10)
    end = eocd
    loc = eocd - 20
    if loc >= 0 and data[loc : loc + 4] == b"PK\x06\x07":  # zip64
        end = struct.unpack_from("<Q", data, loc + 8)[0]
        if data[end : end + 4] != b"PK\x06\x06" or end + 56 > len(data):
            raise ValueError("bad zip64 end-of-central-directory record")
        count, cd_size, cd_offset = struct.unpack_from("<QQQ", data, end + 32)
    shift = end - cd_size - cd_offset  # bytes prepended to the zip (self-extractors)
    pos = cd_offset + shift
    entries: list[_ZipEntry] = []
    while len(entries) < min(count, cap):
        if pos < 0 or data[pos : pos + 4] != b"PK\x01\x02" or pos + 46 > len(data):
            raise ValueError(f"bad central directory entry {len(entries)}")
        (system, flags, method, crc, csize, usize, nlen, xlen, clen, attr, offset) = (
            struct.unpack_from("<5xBxxHH4xIIIHHH4xII", data, pos)
        )
        raw = data[pos + 46 : pos + 46 + nlen]
        name = raw.decode("utf-8" if flags & 0x800 else "cp437", "replace")
        extra = data[pos + 46 + nlen : pos + 46 + nlen + xlen]
        usize, csize, offset = _zip64_sizes(extra, usize, csize, offset)
        mode = attr >> 16
        special = system == 3 and stat.S_IFMT(mode) and not stat.S_ISREG(mode)
        regular = not name.endswith("/") and not special
        entries.append(_ZipEntry(name, offset + shift, method, flags, csize, usize, crc, regular))
        pos += 46 + nlen + xlen + clen
    return entries


def _zip64_sizes(extra: bytes, usize: int, csize: int, offset: int) -> tuple[int, int, int]:
    pos = 0
    while pos + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, pos)
        if tag == 1:
            values = [usize, csize, offset]
            field = pos + 4
            for i, v in enumerate(values):
                if v == 0xFFFFFFFF and field + 8 <= pos + 4 + size:
                    values[i] = struct.unpack_from("<Q", extra, field)[0]
                    field += 8
            return values[0], values[1], values[2]
        pos += 4 + size
    return usize, csize, offset


def _local_entries(data: bytes, cap: int) -> list[_ZipEntry]:
    """Fallback when there is no readable central directory (truncated download, carved file):
    walk local headers; a member without sizes runs to the next local header."""
    entries: list[_ZipEntry] = []
    pos = data.find(b"PK\x03\x04")
    while pos >= 0 and pos + 30 <= len(data) and len(entries) < cap:
        flags, method, crc, csize, usize, nlen, xlen = struct.unpack_from("<6xHH4xIIIHH", data, pos)
        start = pos + 30 + nlen + xlen
        raw = data[pos + 30 : pos + 30 + nlen]
        name = raw.decode("utf-8" if flags & 0x800 else "cp437", "replace")
        known = not (flags & 8) or csize
        end = start + csize if known else data.find(b"PK\x03\x04", start)
        if not known:
            csize, usize = -1, 0
        entries.append(_ZipEntry(name, pos, method, flags, csize, usize, crc if known else None))
        entries[-1].regular = not name.endswith("/")
        pos = data.find(b"PK\x03\x04", max(end, pos + 4)) if end >= 0 else -1
    return entries


def _locate(data: bytes, entries: list[_ZipEntry]) -> None:
    """Find each entry's data via its local header and flag entries whose bytes overlap an
    earlier entry's: the trick behind non-recursive zip bombs (many entries, one kernel)."""
    found: list[_ZipEntry] = []
    for e in entries:
        if (
            e.offset >= 0
            and e.offset + 30 <= len(data)
            and data[e.offset : e.offset + 4] == b"PK\x03\x04"
        ):
            nlen, xlen = struct.unpack_from("<HH", data, e.offset + 26)
            e.data_start = e.offset + 30 + nlen + xlen
            found.append(e)
    reach, owner = -1, ""
    for e in sorted(found, key=lambda x: x.offset):
        if e.offset < reach:
            e.overlaps = owner
        end = e.data_start + max(e.csize, 0)
        if end > reach:
            reach, owner = end, e.name


def _extract_zip(data: bytes, limits: ArchiveLimits, budget: Budget) -> Iterator[Member]:
    cap = max(0, limits.max_files - budget.files) + 1  # one more, to report the limit
    try:
        entries = _central_entries(data, cap)
    except Exception as exc:
        entries = _local_entries(data, cap)
        yield Member(
            "", None, 0, f"corrupt: no usable central directory ({exc}); read local headers"
        )
    _locate(data, entries)
    for e in entries:
        if not e.regular:
            continue
        if budget.files >= limits.max_files:
            yield Member(e.name, None, e.usize, "limit: max-files")
            return
        budget.files += 1
        if e.overlaps:
            problem = f"bomb: overlapping entries (shares data with {e.overlaps!r})"
            yield Member(e.name, None, e.usize, problem)
            continue
        if e.usize > limits.ratio_min_size and e.usize > limits.max_ratio * max(e.csize, 1):
            yield Member(e.name, None, e.usize, _ratio_bomb(e.usize, e.csize) + " declared")
            continue
        blocked = _fits(e.name, e.usize, limits, budget)
        if blocked:
            yield blocked
            if _ends_archive(blocked.problem):
                return
            continue
        member = _zip_member(data, e, limits, budget)
        yield member
        if _ends_archive(member.problem):
            return


def _zip_member(data: bytes, e: _ZipEntry, limits: ArchiveLimits, budget: Budget) -> Member:
    if e.flags & 0x41:  # bit 0: encrypted (ZipCrypto, AES: method 99); bit 6: strong encryption
        return Member(e.name, None, e.usize, "encrypted")
    if e.data_start < 0:
        return Member(e.name, None, e.usize, "corrupt: local header missing")
    if e.method not in _ZIP_CODECS:
        return Member(e.name, None, e.usize, f"unsupported: zip compression method {e.method}")
    end = e.data_start + e.csize if e.csize >= 0 else len(data)
    view = memoryview(data)[e.data_start : end]
    expected = e.usize if e.csize >= 0 else None
    try:
        reader: _Inflater | _Plain
        if e.method == 0:
            reader = _Plain(view, e.csize if e.csize >= 0 else None)
        else:
            reader = _Inflater(view, _ZIP_CODECS[e.method], limits, expected)
        body, problem = _collect(reader.read, limits, budget)
    except _Stop as stop:
        return Member(e.name, None, e.usize, stop.problem)
    except Exception as exc:
        return Member(e.name, None, e.usize, f"corrupt: {exc}")
    if body is not None and not problem and e.crc is not None and zlib.crc32(body) != e.crc:
        problem = "corrupt: CRC mismatch"  # kept: a scanner still wants to see these bytes
    return Member(e.name, body, e.usize if body is None else len(body), problem)


# --- 7z ---------------------------------------------------------------------------------------


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
        lim = self.limits
        self.out += n
        if self.out > lim.ratio_min_size and self.out > lim.max_ratio * self.packed:
            raise _Stop(_ratio_bomb(self.out, self.packed))
        if len(writer.buf) + n > lim.max_member_bytes:
            raise _Stop(_too_large(len(writer.buf) + n, lim))
        if self.budget.total_bytes + n > lim.max_total_bytes:
            raise _Stop("limit: max-total-bytes")
        self.budget.total_bytes += n


def _extract_7z(data: bytes, limits: ArchiveLimits, budget: Budget) -> Iterator[Member]:
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
            blocked = _admit(info.filename, size, limits, budget)
            try:
                # py7zr refuses to extract anything if one name escapes its folder
                out = get_sanitized_output_path(info.filename, None).as_posix()
            except Exception:
                blocked = blocked or Member(info.filename, None, size, "unsupported: unsafe path")
            if blocked:
                yield blocked
                if _ends_archive(blocked.problem):
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
        except _Stop as stop:
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


# --- public entry points ----------------------------------------------------------------------


def extract(
    data: bytes, kind: str, limits: ArchiveLimits, budget: Budget, *, outer_name: str = ""
) -> Iterator[Member]:
    """Yield every regular-file member of an archive of `kind` (from archive_kind), enforcing
    the limits as it decompresses. Never raises for bad archive content: problems are Members."""
    if kind == "zip":
        inner = _extract_zip(data, limits, budget)
    elif kind == "7z":
        inner = _extract_7z(data, limits, budget)
    elif kind == "tar":
        inner = _extract_tar(data, limits, budget)
    elif kind in ("gzip", "bzip2", "xz"):
        codec = _codec(data[:16]) or kind
        if _is_tar_header(_peek(data, codec)):
            inner = _extract_tar(data, limits, budget)  # a compressed tar is one level
        else:
            inner = _extract_single(data, codec, limits, budget, outer_name)
    else:
        raise ValueError(f"unknown archive kind {kind!r}")
    try:
        yield from inner
    except Exception as e:  # last line of defence: a hostile archive must not stop a scan
        yield Member("", None, 0, f"corrupt: {type(e).__name__}: {e}")


def walk(
    data: bytes,
    name: str,
    limits: ArchiveLimits,
    budget: Budget | None = None,
    depth: int = 0,
) -> Iterator[tuple[str, int, Member]]:
    """Yield ("outer.zip!a/b.zip!c.txt", depth, member) for every member, recursing into
    members that are archives. An archive whose members would lie deeper than max_depth is
    yielded itself (its own path and depth) with problem "limit: max-depth"."""
    if budget is None:
        budget = Budget(limits)
    kind = archive_kind(data, name)
    if kind is None:
        return
    if depth >= limits.max_depth:
        yield name, depth, Member("", None, len(data), "limit: max-depth")
        return
    outer = name.rsplit("!", 1)[-1]
    for member in extract(data, kind, limits, budget, outer_name=outer):
        path = f"{name}!{member.name}"
        yield path, depth + 1, member
        if member.data is not None:
            yield from walk(member.data, path, limits, budget, depth + 1)
