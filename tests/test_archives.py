"""Tests for quet.scanner.archives: formats, nesting, limits, bombs, encryption and hostile input."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import struct
import tarfile
import time
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import inflate64
import py7zr
import pytest
import pyzipper
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quet.scanner.archives import (
    ArchiveLimits,
    Budget,
    Member,
    archive_kind,
    extract,
    walk,
)

DATA = Path(__file__).parent / "data" / "archives"
CLAM_DIR = Path("/usr/share/clamav-testfiles")
MB = 2**20


# --- builders ---------------------------------------------------------------------------------


def make_zip(files: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, body in files.items():
            zf.writestr(name, body)
    return buf.getvalue()


def make_tar(files: dict[str, bytes], mode: str = "w:gz") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:  # type: ignore[call-overload]
        for name, body in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tf.addfile(info, io.BytesIO(body))
    return buf.getvalue()


def make_7z(
    files: dict[str, bytes], password: str | None = None, header_encryption: bool = False
) -> bytes:
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w", password=password, header_encryption=header_encryption) as z:
        for name, body in files.items():
            z.writestr(body, name)
    return buf.getvalue()


def raw_zip(entries: list[dict[str, Any]], aliases: tuple[tuple[str, int], ...] = ()) -> bytes:
    """A zip written by hand: each entry gives name, payload (already compressed), method, crc,
    usize (declared) and flags; each alias is an extra central-directory entry (name, index)
    pointing at an existing entry's local header."""
    out = bytearray()
    central = bytearray()
    offsets = []
    for e in entries:
        name = str(e["name"]).encode()
        payload = bytes(e["payload"])
        fields = (e.get("flags", 0), e.get("method", 8), 0, 0, e["crc"], len(payload), e["usize"])
        offsets.append((len(out), name, fields))
        out += struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, *fields, len(name), 0)
        out += name + payload
    rows = [(offset, name, fields) for offset, name, fields in offsets]
    rows += [(offsets[i][0], alias.encode(), offsets[i][2]) for alias, i in aliases]
    for offset, name, fields in rows:
        central += struct.pack(
            "<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, *fields, len(name), 0, 0, 0, 0, 0, offset
        )
        central += name
    eocd = struct.pack(
        "<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(rows), len(rows), len(central), len(out), 0
    )
    return bytes(out + central + eocd)


def deflated_zeros(megabytes: int) -> tuple[bytes, int]:
    """Raw deflate of `megabytes` MB of zeros, built from one compressed MB: after a full flush
    the compressor starts afresh, so every MB compresses to the same bytes."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = c.compress(bytes(MB)) + c.flush(zlib.Z_FULL_FLUSH)
    assert piece == c.compress(bytes(MB)) + c.flush(zlib.Z_FULL_FLUSH)
    payload = piece * megabytes + c.flush()
    zero = bytes(MB)
    crc = 0
    for _ in range(megabytes):
        crc = zlib.crc32(zero, crc)
    return payload, crc


def members(data: bytes, kind: str, limits: ArchiveLimits | None = None, **kw: str) -> list[Member]:
    limits = limits or ArchiveLimits()
    return list(extract(data, kind, limits, Budget(limits), **kw))


# --- detection --------------------------------------------------------------------------------


def test_archive_kind_by_magic_not_extension() -> None:
    body = {"a.txt": b"hello " * 50}
    assert archive_kind(make_zip(body), "x.txt") == "zip"
    assert archive_kind(make_tar(body, "w"), "x") == "tar"
    for mode in ("w:gz", "w:bz2", "w:xz"):
        assert archive_kind(make_tar(body, mode), "noext") == "tar"
    assert archive_kind(gzip.compress(b"x" * 600), "a.tar.gz") == "gzip"
    assert archive_kind(bz2.compress(b"x" * 600), "") == "bzip2"
    assert archive_kind(lzma.compress(b"x" * 600), "") == "xz"
    assert archive_kind(make_7z(body), "") == "7z"
    assert archive_kind(b"MZ" + bytes(600), "evil.zip") is None
    assert archive_kind(b"", "a.zip") is None
    assert archive_kind(bytes(1024), "a.tar") is None


def test_archive_kind_v7_tar_without_magic() -> None:
    info = tarfile.TarInfo("old.txt")
    info.size = 3
    header = info.tobuf(format=tarfile.USTAR_FORMAT)
    v7 = bytearray(header)
    v7[257:265] = bytes(8)  # drop the ustar magic and version, then fix the checksum
    v7[148:156] = b" " * 8
    v7[148:156] = b"%06o\0 " % sum(v7)
    data = bytes(v7) + b"abc".ljust(512, b"\0") + bytes(1024)
    assert archive_kind(data, "") == "tar"
    assert [(m.name, m.data) for m in members(data, "tar")] == [("old.txt", b"abc")]


# --- formats and nesting ----------------------------------------------------------------------


def test_nested_zip_in_tar_gz_in_7z_names_and_depths() -> None:
    inner = make_zip({"c.txt": b"deep content", "d/e.bin": b"\x00\x01"})
    tgz = make_tar({"dir/inner.zip": inner, "note.txt": b"n"})
    outer = make_7z({"pkg.tar.gz": tgz})
    got = {
        path: (depth, m.data, m.problem)
        for path, depth, m in walk(outer, "outer.7z", ArchiveLimits())
    }
    assert got["outer.7z!pkg.tar.gz"] == (1, tgz, "")
    assert got["outer.7z!pkg.tar.gz!dir/inner.zip"] == (2, inner, "")
    assert got["outer.7z!pkg.tar.gz!note.txt"] == (2, b"n", "")
    assert got["outer.7z!pkg.tar.gz!dir/inner.zip!c.txt"] == (3, b"deep content", "")
    assert got["outer.7z!pkg.tar.gz!dir/inner.zip!d/e.bin"] == (3, b"\x00\x01", "")
    assert len(got) == 5


def test_single_streams_named_after_outer_file() -> None:
    body = b"MZ payload" * 20
    for kind, packed in (
        ("gzip", gzip.compress(body)),
        ("bzip2", bz2.compress(body)),
        ("xz", lzma.compress(body)),
    ):
        suffix = {"gzip": ".gz", "bzip2": ".bz2", "xz": ".xz"}[kind]
        got = members(packed, kind, outer_name=f"dir/clam.exe{suffix}")
        assert [(m.name, m.data, m.problem) for m in got] == [("clam.exe", body, "")]
    named = io.BytesIO()
    with gzip.GzipFile(filename="orig.exe", mode="wb", fileobj=named) as g:
        g.write(body)
    assert members(named.getvalue(), "gzip", outer_name="x.gz")[0].name == "orig.exe"
    # concatenated streams are one file, as gunzip/bunzip2/unxz see them
    assert members(gzip.compress(b"ab") + gzip.compress(b"cd"), "gzip")[0].data == b"abcd"
    assert members(bz2.compress(b"ab") + bz2.compress(b"cd"), "bzip2")[0].data == b"abcd"
    assert members(lzma.compress(b"ab") + lzma.compress(b"cd"), "xz")[0].data == b"abcd"


def test_compressed_tar_is_one_level_even_when_called_as_gzip() -> None:
    tgz = make_tar({"a.txt": b"A", "b.txt": b"B"})
    for kind in ("tar", "gzip"):
        assert [(m.name, m.data) for m in members(tgz, kind)] == [("a.txt", b"A"), ("b.txt", b"B")]


def test_only_regular_files_are_members() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, kind in (("d", tarfile.DIRTYPE), ("l", tarfile.SYMTYPE), ("f", tarfile.FIFOTYPE)):
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = "x" if kind == tarfile.SYMTYPE else ""
            tf.addfile(info)
        info = tarfile.TarInfo("real.txt")
        info.size = 2
        tf.addfile(info, io.BytesIO(b"ok"))
    assert [m.name for m in members(buf.getvalue(), "tar")] == ["real.txt"]
    # Info-ZIP output with two directories and a stored symlink
    zipped = (DATA / "infozip.zip").read_bytes()
    got = {m.name: m.data for m in members(zipped, "zip")}
    assert got == {
        "docs/sub/readme.txt": b"hello from info-zip\n",
        "docs/numbers.txt": "".join(f"{i}\n" for i in range(1, 3001)).encode(),
    }


def test_real_p7zip_archives() -> None:
    got = {m.name: m.data for m in members((DATA / "p7zip_solid.7z").read_bytes(), "7z")}
    assert got == {
        "docs/sub/readme.txt": b"hello from info-zip\n",
        "docs/numbers.txt": "".join(f"{i}\n" for i in range(1, 3001)).encode(),
    }
    bcj2 = members((DATA / "p7zip_bcj2.7z").read_bytes(), "7z")
    assert bcj2 and all(m.data is None and m.problem.startswith("unsupported:") for m in bcj2)


def test_zip_bzip2_and_lzma_members_and_crc_mismatch() -> None:
    body = os.urandom(3000) + bytes(3000)
    for method in (zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA, zipfile.ZIP_STORED):
        got = members(make_zip({"m.bin": body}, method), "zip")
        assert [(m.name, m.data, m.problem) for m in got] == [("m.bin", body, "")]
    stored = make_zip({"m.bin": b"exact"}, zipfile.ZIP_STORED)
    tampered = stored.replace(b"exact", b"EXACT")
    [m] = members(tampered, "zip")
    assert m.data == b"EXACT" and m.problem == "corrupt: CRC mismatch"


def deflate64(body: bytes) -> bytes:
    d = inflate64.Deflater()
    return bytes(d.deflate(body) + d.flush())


def test_zip_deflate64_members_truncation_and_implode() -> None:
    body = b"".join(os.urandom(3000) + bytes(40_000) for _ in range(20))  # many CHUNKs out
    packed = deflate64(body)
    entry = {"name": "d64.bin", "payload": packed, "crc": zlib.crc32(body), "usize": len(body)}
    got = members(raw_zip([{**entry, "method": 9}]), "zip")
    assert [(m.name, m.data == body, m.problem) for m in got] == [("d64.bin", True, "")]
    [cut] = members(raw_zip([{**entry, "method": 9, "payload": packed[: len(packed) // 2]}]), "zip")
    assert cut.problem.startswith("corrupt: ") and cut.data and body.startswith(cut.data)
    [imploded] = members(raw_zip([{**entry, "method": 6}]), "zip")
    assert (imploded.data, imploded.problem) == (None, "unsupported: zip compression method 6")


@pytest.mark.parametrize("declared", [64 * MB, 1000])
def test_deflate64_zip_bomb_detected_with_little_memory(declared: int) -> None:
    payload = deflate64(bytes(64 * MB))  # one Deflate64 byte can expand to ~29 kB
    zeros = {"name": "zeros.bin", "payload": payload, "crc": 0, "usize": declared, "method": 9}
    fine = {"name": "after.txt", "payload": b"fine", "crc": zlib.crc32(b"fine"), "usize": 4}
    bomb = raw_zip([zeros, {**fine, "method": 0}])
    assert len(bomb) < 64 * 1024
    tracemalloc.start()
    start = time.perf_counter()
    try:
        got = members(bomb, "zip")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 5
    assert peak < 50 * MB
    assert got[0].data is None and got[0].problem.startswith("bomb: ratio "), got[0].problem
    assert got[0].problem.endswith(" declared") == (declared > MB)
    assert (got[1].name, got[1].data) == ("after.txt", b"fine")


def test_zip64_and_self_extractor_prefix() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("big.txt", "w", force_zip64=True) as f:
            f.write(b"zip64 body")
        zf.writestr("small.txt", b"s")
    data = buf.getvalue()
    expected = [("big.txt", b"zip64 body"), ("small.txt", b"s")]
    assert [(m.name, m.data) for m in members(data, "zip")] == expected
    sfx = b"MZ" + bytes(3000) + data  # a stub before the zip shifts every offset
    assert [(m.name, m.data, m.problem) for m in members(sfx, "zip")][-2:] == [
        (name, body, "") for name, body in expected
    ]


def test_7z_member_with_escaping_path_does_not_hide_the_others() -> None:
    buf = io.BytesIO()
    z = py7zr.SevenZipFile(buf, "w", filters=[{"id": py7zr.FILTER_COPY}])
    z.encoded_header_mode = False  # a plain header, so the name can be patched below
    z.writestr(b"evil", "xx/evil.exe")
    z.writestr(b"ok", "ok.txt")
    z.close()
    data = bytearray(buf.getvalue())
    at = data.index("xx/".encode("utf-16-le"))
    data[at : at + 6] = "../".encode("utf-16-le")
    offset, size = struct.unpack_from("<QQ", data, 12)
    struct.pack_into("<I", data, 28, zlib.crc32(data[32 + offset : 32 + offset + size]))
    struct.pack_into("<I", data, 8, zlib.crc32(data[12:32]))
    got = [(m.name, m.data, m.problem) for m in members(bytes(data), "7z")]
    assert got == [("../evil.exe", None, "unsupported: unsafe path"), ("ok.txt", b"ok", "")]


# --- limits -----------------------------------------------------------------------------------


def test_max_files_limit_stops_the_archive() -> None:
    zipped = make_zip({f"f{i}.txt": b"x" for i in range(5)})
    got = members(zipped, "zip", ArchiveLimits(max_files=3))
    assert [m.problem for m in got] == ["", "", "", "limit: max-files"]
    assert got[3].name == "f3.txt" and got[3].data is None


def test_zip_listing_millions_of_entries_is_not_parsed_whole() -> None:
    empty = {"payload": b"", "crc": 0, "usize": 0, "method": 0}
    data = raw_zip([{"name": f"e{i}", **empty} for i in range(50_000)])
    tracemalloc.start()
    try:
        got = members(data, "zip", ArchiveLimits(max_files=10))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [m.problem for m in got] == [""] * 10 + ["limit: max-files"]
    assert peak < 2 * MB


def test_max_files_budget_is_shared_across_depths() -> None:
    inner = make_zip({"a": b"1", "b": b"2"})
    outer = make_tar({"one.zip": inner, "two.zip": inner})
    limits = ArchiveLimits(max_files=4)
    budget = Budget(limits)
    got = [(p, m.problem) for p, _, m in walk(outer, "o.tgz", limits, budget)]
    assert got == [
        ("o.tgz!one.zip", ""),
        ("o.tgz!one.zip!a", ""),
        ("o.tgz!one.zip!b", ""),
        ("o.tgz!two.zip", ""),
        ("o.tgz!two.zip!a", "limit: max-files"),
    ]
    assert budget.files == 4


def test_max_total_bytes_declared_and_streaming() -> None:
    blobs = {f"m{i}": os.urandom(1000) for i in range(3)}
    for data, kind in ((make_zip(blobs), "zip"), (make_tar(blobs), "tar"), (make_7z(blobs), "7z")):
        limits = ArchiveLimits(max_total_bytes=2500)
        budget = Budget(limits)
        got = list(extract(data, kind, limits, budget))
        assert [m.problem for m in got] == ["", "", "limit: max-total-bytes"], kind
        assert budget.total_bytes == 2000
    # a gzip stream declares nothing: the limit fires while decompressing
    limits = ArchiveLimits(max_total_bytes=2000)
    budget = Budget(limits)
    budget.total_bytes = 500
    [m] = extract(gzip.compress(os.urandom(3000)), "gzip", limits, budget)
    assert m.problem == "limit: max-total-bytes" and m.data is None
    assert budget.total_bytes <= 2000


def test_max_member_bytes_skips_only_that_member() -> None:
    files = {"big": os.urandom(3 * 1024), "small": b"ok"}
    limits = ArchiveLimits(max_member_bytes=2 * 1024)
    for data, kind in ((make_zip(files), "zip"), (make_tar(files), "tar"), (make_7z(files), "7z")):
        got = [(m.name, m.data, m.problem) for m in members(data, kind, limits)]
        assert got == [("big", None, "too-large: 3 kB > 2 kB"), ("small", b"ok", "")], kind
    [m] = members(lzma.compress(os.urandom(3 * 1024)), "xz", limits)
    assert m.problem.startswith("too-large: ") and m.data is None


def test_max_depth() -> None:
    data = b"bottom"
    for level in range(5):
        data = make_zip({f"l{level}": data})
    got = [(p, d, m.problem) for p, d, m in walk(data, "top.zip", ArchiveLimits(max_depth=3))]
    assert got == [
        ("top.zip!l4", 1, ""),
        ("top.zip!l4!l3", 2, ""),
        ("top.zip!l4!l3!l2", 3, ""),
        ("top.zip!l4!l3!l2", 3, "limit: max-depth"),
    ]
    deep = [(d, m.data) for _, d, m in walk(data, "top.zip", ArchiveLimits(max_depth=5))]
    assert deep[-1] == (5, b"bottom")


def test_walk_ignores_non_archives() -> None:
    assert list(walk(b"MZ\x90\x00" + bytes(600), "a.exe", ArchiveLimits())) == []


# --- bombs ------------------------------------------------------------------------------------


def test_deflated_zeros_builder_is_a_valid_zip() -> None:
    payload, crc = deflated_zeros(3)
    data = raw_zip([{"name": "z", "payload": payload, "crc": crc, "usize": 3 * MB}])
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.read("z") == bytes(3 * MB)


@pytest.mark.parametrize("declared", [200 * MB, 1000])
def test_200mb_zip_bomb_detected_with_little_memory(declared: int) -> None:
    payload, crc = deflated_zeros(200)
    bomb = raw_zip(
        [
            {"name": "zeros.bin", "payload": payload, "crc": crc, "usize": declared},
            {
                "name": "after.txt",
                "payload": b"fine",
                "crc": zlib.crc32(b"fine"),
                "usize": 4,
                "method": 0,
            },
        ]
    )
    assert len(bomb) < MB
    tracemalloc.start()
    start = time.perf_counter()
    try:
        got = members(bomb, "zip")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 5
    assert peak < 50 * MB
    assert got[0].data is None and got[0].problem.startswith("bomb: ratio ")
    assert (got[1].name, got[1].data) == ("after.txt", b"fine")  # the rest is still scanned


@pytest.mark.parametrize("kind", ["gzip", "bzip2", "xz", "tar"])
def test_stream_bombs_detected_while_decompressing(kind: str) -> None:
    one: dict[str, Callable[[bytes], bytes]] = {
        "gzip": gzip.compress,
        "bzip2": bz2.compress,
        "xz": lzma.compress,
        "tar": gzip.compress,
    }
    pack = one[kind]
    chunk = pack(bytes(MB))  # concatenated streams make a big bomb from one compressed MB
    data = chunk * 60
    if kind == "tar":
        info = tarfile.TarInfo("zeros.img")
        info.size = 60 * MB  # declared under max_member_bytes: only the ratio can catch it
        data = pack(info.tobuf()) + data + pack(bytes(1024))
    tracemalloc.start()
    try:
        got = members(data, kind)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50 * MB
    assert len(got) == 1 and got[0].data is None
    assert got[0].problem.startswith("bomb: ratio "), got[0].problem


def test_overlapping_entries_zip_bomb() -> None:
    body = b"kernel " * 100
    packed = zlib.compress(body)[2:-4]
    entry = {"name": "a.txt", "payload": packed, "crc": zlib.crc32(body), "usize": len(body)}
    bomb = raw_zip([entry], aliases=(("b.txt", 0), ("c.txt", 0)))
    got = [(m.name, m.data, m.problem) for m in members(bomb, "zip")]
    assert got[0] == ("a.txt", body, "")
    for _, data, problem in got[1:]:
        assert data is None and problem == "bomb: overlapping entries (shares data with 'a.txt')"
    assert [g[0] for g in got] == ["a.txt", "b.txt", "c.txt"]


# --- encryption -------------------------------------------------------------------------------


def test_encrypted_zip_aes() -> None:
    buf = io.BytesIO()
    with pyzipper.AESZipFile(buf, "w", compression=pyzipper.ZIP_DEFLATED) as zf:
        zf.setpassword(b"infected")
        zf.setencryption(pyzipper.WZ_AES, nbits=256)
        zf.writestr("secret.exe", b"MZ" * 100)
    got = members(buf.getvalue(), "zip")
    assert [(m.name, m.data, m.problem) for m in got] == [("secret.exe", None, "encrypted")]


def test_encrypted_7z_content_and_header() -> None:
    got = members(make_7z({"s.exe": b"MZ" * 100}, password="pw"), "7z")
    assert [(m.name, m.data, m.problem) for m in got] == [("s.exe", None, "encrypted")]
    hidden = make_7z({"s.exe": b"MZ" * 100}, password="pw", header_encryption=True)
    assert [(m.name, m.problem) for m in members(hidden, "7z")] == [("", "encrypted")]


# --- corrupt and hostile input ----------------------------------------------------------------

BODY = {"a.txt": b"alpha " * 200, "b/c.bin": bytes(range(256)) * 8}
SAMPLES = {
    "zip": make_zip(BODY),
    "tar": make_tar(BODY, "w"),
    "tgz": make_tar(BODY, "w:gz"),
    "tbz": make_tar(BODY, "w:bz2"),
    "txz": make_tar(BODY, "w:xz"),
    "gzip": gzip.compress(BODY["a.txt"]),
    "bzip2": bz2.compress(BODY["a.txt"]),
    "xz": lzma.compress(BODY["a.txt"]),
    "7z": make_7z(BODY),
}
KIND = {"tgz": "tar", "tbz": "tar", "txz": "tar"}


@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_truncated_archives_never_raise(sample: str) -> None:
    data = SAMPLES[sample]
    kind = KIND.get(sample, sample)
    complete = members(data, kind)
    assert all(not m.problem for m in complete) and complete
    cuts = {1, 10, 100, len(data) // 3, len(data) // 2, len(data) - 30, len(data) - 1}
    for cut in sorted(c for c in cuts if 0 < c < len(data)):
        got = members(data[:cut], kind)
        assert all(isinstance(m, Member) for m in got)
        if kind == "tar":
            continue  # a cut in the zero padding after the last member loses nothing
        full = [m for m in got if m.data is not None and not m.problem]
        assert len(full) < len(complete) or any(m.problem for m in got)


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_tar_cut_inside_a_member_is_corrupt(mode: str) -> None:
    body = os.urandom(20_000)
    data = make_tar({"ok.txt": b"fine", "cut.bin": body}, mode)
    got = members(data[: len(data) // 2], "tar")
    if mode != "w:bz2":  # bzip2 yields nothing of a block until the whole block is there
        assert (got[0].name, got[0].data, got[0].problem) == ("ok.txt", b"fine", "")
    assert got[-1].problem.startswith("corrupt: ")
    if got[-1].data is not None:
        assert body.startswith(got[-1].data)


def test_truncated_zip_still_yields_members_from_local_headers() -> None:
    data = make_zip({"first.txt": b"one" * 100, "second.txt": b"two" * 100})
    cut = data[: data.index(b"PK\x01\x02")]  # the central directory is gone
    got = members(cut, "zip")
    assert got[0].name == "" and got[0].problem.startswith("corrupt: no usable central directory")
    assert [(m.name, m.data) for m in got[1:]] == [
        ("first.txt", b"one" * 100),
        ("second.txt", b"two" * 100),
    ]


def test_truncated_gzip_keeps_the_bytes_read() -> None:
    body = os.urandom(5000)
    [m] = members(gzip.compress(body)[:3000], "gzip", outer_name="x.gz")
    assert m.problem.startswith("corrupt: ") and m.data and body.startswith(m.data)


def test_unknown_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        list(extract(b"", "rar", ArchiveLimits(), Budget(ArchiveLimits())))


MAGIC = {
    "zip": b"PK\x03\x04",
    "tar": b"",
    "gzip": b"\x1f\x8b\x08",
    "bzip2": b"BZh91AY&SY",
    "xz": b"\xfd7zXZ\x00",
    "7z": b"7z\xbc\xaf\x27\x1c",
}
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SMALL = ArchiveLimits(max_files=50, max_total_bytes=4 * MB, max_member_bytes=MB, max_depth=4)


@FUZZ
@given(kind=st.sampled_from(sorted(MAGIC)), body=st.binary(max_size=3000))
def test_fuzz_arbitrary_bytes_never_raise(kind: str, body: bytes) -> None:
    data = MAGIC[kind] + body
    for m in extract(data, kind, SMALL, Budget(SMALL)):
        assert isinstance(m, Member)
    for _ in walk(data, "f", SMALL):
        pass


@FUZZ
@given(
    sample=st.sampled_from(sorted(SAMPLES)),
    edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=8),
)
def test_fuzz_mutated_archives_never_raise(sample: str, edits: list[tuple[float, int]]) -> None:
    data = bytearray(SAMPLES[sample])
    for where, value in edits:
        data[int(where * len(data))] = value
    for m in extract(bytes(data), KIND.get(sample, sample), SMALL, Budget(SMALL)):
        assert isinstance(m, Member)


# --- the ClamAV project's test archives -------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "clam.zip",
        "clam.tar.gz",
        "clam.7z",
        "clam.exe.bz2",
        "clam.bz2.zip",
        "clam_cache_emax.tgz",
        "clam.d64.zip",  # Deflate64 (zip method 9)
    ],
)
def test_clamav_testfiles_yield_clam_exe(name: str) -> None:
    if not CLAM_DIR.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CLAM_DIR} is missing: install the clamav-testfiles package")
        pytest.skip(f"{CLAM_DIR} is missing (apt-get install clamav-testfiles)")
    clam = (CLAM_DIR / "clam.exe").read_bytes()
    data = (CLAM_DIR / name).read_bytes()
    assert archive_kind(data[:1024], name) is not None
    found = [(path, m) for path, _, m in walk(data, name, ArchiveLimits()) if m.data == clam]
    assert found, name
    assert all(path.endswith("!clam.exe") and not m.problem for path, m in found)
