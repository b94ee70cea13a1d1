"""Which kind of archive a file is (by its first bytes), extract() by kind, and walk() through
archives nested in archives under one shared budget."""

from __future__ import annotations

from collections.abc import Iterator

from quet.scanner.archives.common import ArchiveLimits, Budget, Member
from quet.scanner.archives.readers import codec_of, peek
from quet.scanner.archives.tar import extract_single, extract_tar, is_tar_header
from quet.scanner.archives.zip import extract_zip

_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08PK\x03\x04")
_7Z_MAGIC = b"7z\xbc\xaf\x27\x1c"
_TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tbz", ".tar.xz", ".txz")


def archive_kind(head: bytes, name: str = "") -> str | None:
    """The archive kind of a file by its first bytes (512+; the whole file is best for bzip2):
    zip, tar (also compressed), gzip, bzip2, xz, 7z, or None."""
    if head.startswith(_ZIP_MAGICS):
        return "zip"
    if head.startswith(_7Z_MAGIC):
        return "7z"
    if is_tar_header(head[:512]):
        return "tar"
    codec = codec_of(head)
    if codec is None:
        return None
    inner = peek(head, codec)
    if is_tar_header(inner):
        return "tar"
    if len(inner) < 512 and name.lower().endswith(_TAR_SUFFIXES):
        return "tar"  # head too short to see the tar header; extract() peeks again on all data
    return codec


def extract(
    data: bytes, kind: str, limits: ArchiveLimits, budget: Budget, *, outer_name: str = ""
) -> Iterator[Member]:
    """Yield every regular-file member of an archive of `kind` (from archive_kind), enforcing
    the limits as it decompresses. Never raises for bad archive content: problems are Members."""
    if kind == "zip":
        inner = extract_zip(data, limits, budget)
    elif kind == "7z":
        from quet.scanner.archives.sevenzip import extract_7z  # py7zr is slow to import

        inner = extract_7z(data, limits, budget)
    elif kind == "tar":
        inner = extract_tar(data, limits, budget)
    elif kind in ("gzip", "bzip2", "xz"):
        codec = codec_of(data[:16]) or kind
        if is_tar_header(peek(data, codec)):
            inner = extract_tar(data, limits, budget)  # a compressed tar is one level
        else:
            inner = extract_single(data, codec, limits, budget, outer_name)
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
