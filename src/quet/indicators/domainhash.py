"""Domain name hashing for indicator sets: the key form of a name, its 64-bit hash, the hashes of
every label suffix (one name or a whole batch at once) and a search index over stored hashes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]

# The domain hash: a polynomial hash over the name's bytes read backwards (the top label
# first), h = h * P + byte mod 2^64, then a final mix. Read backwards, every label suffix of a
# name is a prefix, so one pass yields all of them; and the polynomial form is a cumulative sum
# (sum of byte * P^-k, rescaled by P^i), which numpy computes for a whole batch at once.
_M64 = (1 << 64) - 1
_P = 0x9E3779B97F4A7C15  # odd, so invertible mod 2^64
_P_INV = pow(_P, -1, 1 << 64)
_MIX = 0xBF58476D1CE4E5B9
_CHUNK = 1 << 19  # bytes of names hashed at a time: the arrays stay in the CPU caches
_powers: list[Array] = [np.ones(1, dtype=np.uint64), np.ones(1, dtype=np.uint64)]


def domain_key(name: str) -> str:
    """The form of a domain name that is hashed: lower case, no trailing dot, IDNA."""
    v = name.strip().rstrip(".").lower().removeprefix("*.")
    if not v.isascii():
        try:
            v = v.encode("idna").decode("ascii")
        except UnicodeError:
            return ""
    return v


def _mix(h: int) -> int:
    h ^= h >> 31
    h = (h * _MIX) & _M64
    return h ^ (h >> 29)


def _mix_array(h: Array) -> Array:
    h ^= h >> np.uint64(31)
    h *= np.uint64(_MIX)
    h ^= h >> np.uint64(29)
    return h


def domain_hash(key: str) -> int:
    """The stored hash of a domain key (see domain_key)."""
    h, p, m = 0, _P, _M64
    for byte in key.encode("utf-8", "surrogatepass")[::-1]:
        h = (h * p + byte) & m
    return _mix(h)


def suffix_hashes(key: str) -> list[int]:
    """domain_hash of every label suffix of two labels or more, most specific first (Python:
    about 0.1 µs a byte, where the batch path costs a few ns)."""
    labels = key.encode("utf-8", "surrogatepass")[::-1].split(b".")
    if len(labels) < 2:
        return []
    h, p, m = 0, _P, _M64
    for byte in labels[0]:
        h = (h * p + byte) & m
    out: list[int] = []
    for label in labels[1:]:
        h = (h * p + 46) & m
        for byte in label:
            h = (h * p + byte) & m
        out.append(_mix(h))
    return out[::-1]


def _power_tables(n: int) -> tuple[Array, Array]:
    """P^k and P^-k mod 2^64 for k < n (at least); kept for the sizes batches use."""
    if len(_powers[0]) >= n:
        return _powers[0], _powers[1]
    size = max(n, _CHUNK + 1024)  # a chunk runs past _CHUNK by its last name
    tables = []
    for base in (_P, _P_INV):
        table = np.full(size, base, dtype=np.uint64)
        table[0] = 1
        tables.append(np.multiply.accumulate(table))  # wraps mod 2^64, as wanted
    if size <= _CHUNK * 2:  # not for one freak long name
        _powers[:] = tables
    return tables[0], tables[1]


def _fold(rev: bytes | memoryview) -> tuple[Array, Array, Array, Array, Array]:
    """For "\n"-joined names read backwards: the bytes, the separator positions, the start of
    each name, the running sum S[i] = sum of byte_k * P^-k, and P^k: the hash of bytes s..i is
    P^i * (S[i] - S[s-1])."""
    buf = np.frombuffer(rev, dtype=np.uint8)
    seps = np.flatnonzero(buf == 10)
    starts = np.empty(len(seps) + 1, dtype=np.int64)
    starts[0] = 0
    starts[1:] = seps + 1
    pw, inv = _power_tables(len(buf))
    total = buf.astype(np.uint64)
    total *= inv[: len(buf)]
    np.cumsum(total, out=total)
    return buf, seps, starts, total, pw


def name_hashes(keys: list[str]) -> Array:
    """domain_hash of every key, for a whole list at once."""
    if not keys:
        return np.empty(0, dtype=np.uint64)
    rev = "\n".join(keys).encode("utf-8", "surrogatepass")[::-1]
    view = memoryview(rev)
    out: list[Array] = []
    for lo, hi in chunks(rev):
        buf, seps, starts, total, pw = _fold(view[lo:hi])
        if not len(buf):
            out.append(np.zeros(1, dtype=np.uint64))  # one empty key: the hash of no bytes
            continue
        ends = np.empty(len(starts), dtype=np.int64)
        ends[:-1] = seps - 1
        ends[-1] = len(buf) - 1
        base = np.zeros(len(ends), dtype=np.uint64)
        base[1:] = total[seps]
        last = np.maximum(ends, 0)
        h = total[last] - base
        h *= pw[last]
        h[ends < starts] = 0  # an empty key: the hash of no bytes
        out.append(_mix_array(h))
    return np.concatenate(out)[::-1].copy()


def batch_suffixes(rev: bytes | memoryview) -> tuple[Array, Array, int]:
    """For "\n"-joined domain keys read backwards: the hash of every label suffix of two labels
    or more, the name (counted in `rev`'s order) each came from, and the number of names.
    Within a name the hashes run from the least to the most specific suffix."""
    buf, seps, starts, total, pw = _fold(rev)
    n = len(starts)
    # A suffix ends (read backwards) where the next byte is a dot or the name's end.
    at_end = np.empty(len(buf), dtype=bool)
    if len(buf):
        np.logical_or(buf[1:] == 46, buf[1:] == 10, out=at_end[:-1])
        at_end[-1] = True
        at_end &= buf != 10
    pos = np.flatnonzero(at_end)
    firsts = np.searchsorted(pos, starts)
    counts = np.diff(firsts, append=len(pos))
    name = np.repeat(np.arange(n, dtype=np.int64), counts)
    # Each name's first suffix is its top label alone ("com"): never listed, so not looked up.
    keep = np.ones(len(pos), dtype=bool)
    keep[firsts[counts > 0]] = False
    pos, name = pos[keep], name[keep]
    base = np.zeros(n, dtype=np.uint64)
    base[1:] = total[seps]
    h = total[pos]
    h -= base[name]
    h *= pw[pos]
    return _mix_array(h), name, n


class HashIndex:
    """A search structure over sorted 64-bit hashes for big batches: a bit per value of their
    top bits (about 64 bits per hash), so that most unlisted suffixes are refused by one memory
    access; then a bucket table on the top bits, so that the rest are found in a round or two
    of gathers rather than a 20-step binary search through cache misses."""

    def __init__(self, keys: Array) -> None:
        self.keys = np.asarray(keys, dtype=np.uint64)
        bits = max(10, min(32, len(keys).bit_length() + 6))
        self.shift = np.uint64(64 - bits)
        top = self.keys >> self.shift
        self.bits = np.zeros(1 << (bits - 3), dtype=np.uint8)
        np.bitwise_or.at(
            self.bits, top >> np.uint64(3), (1 << (top & np.uint64(7))).astype(np.uint8)
        )
        buckets = max(4, min(30, len(keys).bit_length()))
        self.bucket_shift = np.uint64(64 - buckets)
        edges = np.arange(1 << buckets, dtype=np.uint64) << self.bucket_shift
        self.bounds = np.append(np.searchsorted(self.keys, edges), len(keys)).astype(np.int64)

    def nbytes(self) -> int:
        return int(self.bits.nbytes + self.bounds.nbytes)

    def find(self, hashes: Array) -> tuple[Array, Array]:
        """(positions in `hashes` that are stored, the first stored row equal to each)."""
        top = hashes >> self.shift
        found = self.bits[top >> np.uint64(3)] >> (top & np.uint64(7)).astype(np.uint8)
        where = np.flatnonzero(found & np.uint8(1))
        q = hashes[where]
        bucket = q >> self.bucket_shift
        row, end = self.bounds[bucket], self.bounds[bucket + np.uint64(1)]
        hit_where: list[Array] = []
        hit_rows: list[Array] = []
        while len(where):
            live = row < end
            where, q, row, end = where[live], q[live], row[live], end[live]
            key = self.keys[row]
            eq = key == q
            hit_where.append(where[eq])
            hit_rows.append(row[eq])
            # Keys in a bucket are sorted: past the query's value it is not there.
            more = key < q
            where, q, row, end = where[more], q[more], row[more] + 1, end[more]
        if not hit_where:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        at, rows = np.concatenate(hit_where), np.concatenate(hit_rows)
        order = np.argsort(at)
        return at[order], rows[order]


def domain_blob(values: Sequence[str]) -> bytes:
    """The domain_key of every name, joined by newlines (a name holding one counts as empty)."""
    joined = "\n".join(values)
    if joined.isascii():
        blob = joined.lower().encode()
        buf = np.frombuffer(blob, dtype=np.uint8)
        newline = buf == 10
        lines = int(np.count_nonzero(newline))
        if (
            lines == len(values) - 1
            and int(np.count_nonzero(buf <= 32)) == lines  # no whitespace nor control bytes
            and not (buf == 42).any()  # no "*."
            and not (len(buf) and buf[-1] == 46)
            and not ((buf[:-1] == 46) & newline[1:]).any()
        ):
            return blob  # lower case was all domain_key had to do: a few C calls in all
    keys = [domain_key(name) for name in values]
    return "\n".join(k if "\n" not in k else "" for k in keys).encode("utf-8", "surrogatepass")


def chunks(rev: bytes, size: int = _CHUNK) -> Iterable[tuple[int, int]]:
    """(start, end) of pieces of about `size` bytes, cut at newlines: the arrays of a piece
    stay in the CPU caches."""
    lo = 0
    while lo <= len(rev):
        hi = rev.find(b"\n", lo + size)
        if hi == -1:
            hi = len(rev)
        yield lo, hi
        lo = hi + 1
