"""Tar archives (plain or gzip/bzip2/xz-compressed), read as one stream, and single compressed
streams (gzip, bzip2, xz) holding one file."""

from __future__ import annotations

import io
import struct
import tarfile
from collections.abc import Iterator

from quet.scanner.archives.common import (
    CHUNK,
    ArchiveLimits,
    Budget,
    Member,
    Stop,
    admit,
    collect,
    ends_archive,
)
from quet.scanner.archives.readers import Inflater, Plain, RawIO, codec_of

_SUFFIXES = {"gzip": (".gz", ".gzip", ".z"), "bzip2": (".bz2", ".bz", ".bzip2"), "xz": (".xz",)}


def is_tar_header(block: bytes) -> bool:
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


def extract_single(
    data: bytes, codec: str, limits: ArchiveLimits, budget: Budget, outer_name: str
) -> Iterator[Member]:
    name = _stream_name(data, codec, outer_name)
    blocked = admit(name, 0, limits, budget)
    if blocked:
        yield blocked
        return
    inf = Inflater(memoryview(data), codec, limits)
    try:
        body, problem = collect(inf.read, limits, budget)
    except Stop as stop:
        yield Member(name, None, inf.out, stop.problem)
        return
    yield Member(name, body, inf.out, problem)


def extract_tar(data: bytes, limits: ArchiveLimits, budget: Budget) -> Iterator[Member]:
    codec = codec_of(data[:16])
    view = memoryview(data)
    reader: Inflater | Plain = Inflater(view, codec, limits) if codec else Plain(view)
    try:
        # stream mode ("r|") never seeks, so skipped members are decompressed (and ratio-checked)
        # in CHUNK steps rather than rewound through
        tf = tarfile.open(fileobj=io.BufferedReader(RawIO(reader), CHUNK), mode="r|")  # noqa: SIM115
    except Stop as stop:
        yield Member("", None, 0, stop.problem)
        return
    except Exception as e:
        yield Member("", None, 0, f"corrupt: not a readable tar: {e}")
        return
    while True:
        try:
            ti = tf.next()
        except Stop as stop:
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
        blocked = admit(ti.name, ti.size, limits, budget)
        if blocked:
            yield blocked
            if ends_archive(blocked.problem):
                return
            continue
        fobj = tf.extractfile(ti)
        if fobj is None:
            continue
        try:
            body, problem = collect(fobj.read, limits, budget)
        except Stop as stop:  # the shared stream is now unusable: nothing after can be read
            yield Member(ti.name, None, ti.size, stop.problem)
            return
        yield Member(ti.name, body, ti.size, problem)
        if problem:
            return
