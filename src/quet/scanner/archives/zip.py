"""Zip archives, read from our own parse of the central directory (or, failing that, the local
headers), with declared-size, overlap and streaming bomb checks."""

from __future__ import annotations

import stat
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from quet.scanner.archives.common import (
    ArchiveLimits,
    Budget,
    Member,
    Stop,
    collect,
    ends_archive,
    fits,
    inflates_too_much,
    ratio_bomb,
)
from quet.scanner.archives.readers import Inflater, Plain

# method -> Inflater codec; 9 (Deflate64) is what Windows Explorer writes for zips over 2 GB
_ZIP_CODECS = {0: "", 8: "deflate", 9: "deflate64", 12: "zip-bzip2", 14: "zip-lzma"}


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


def extract_zip(data: bytes, limits: ArchiveLimits, budget: Budget) -> Iterator[Member]:
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
        if inflates_too_much(e.usize, e.csize, limits):
            yield Member(e.name, None, e.usize, ratio_bomb(e.usize, e.csize) + " declared")
            continue
        blocked = fits(e.name, e.usize, budget)
        if blocked:
            yield blocked
            if ends_archive(blocked.problem):
                return
            continue
        member = _zip_member(data, e, limits, budget)
        yield member
        if ends_archive(member.problem):
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
        reader: Inflater | Plain
        if e.method == 0:
            reader = Plain(view, e.csize if e.csize >= 0 else None)
        else:
            reader = Inflater(view, _ZIP_CODECS[e.method], limits, expected)
        body, problem = collect(reader.read, limits, budget)
    except Stop as stop:
        return Member(e.name, None, e.usize, stop.problem)
    except Exception as exc:
        return Member(e.name, None, e.usize, f"corrupt: {exc}")
    if body is not None and not problem and e.crc is not None and zlib.crc32(body) != e.crc:
        problem = "corrupt: CRC mismatch"  # kept: a scanner still wants to see these bytes
    return Member(e.name, body, e.usize if body is None else len(body), problem)
