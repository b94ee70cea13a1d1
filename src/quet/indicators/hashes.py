"""A compact store of file-hash signatures (MD5/SHA1/SHA256) and of an allow-list, as sorted
numpy arrays of raw digests searched with np.searchsorted: about 50 bytes per SHA256 signature."""

from __future__ import annotations

import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

from quet.indicators.model import HASH_TYPES, Indicator, IndicatorType

_WIDTH = {IndicatorType.MD5: 16, IndicatorType.SHA1: 20, IndicatorType.SHA256: 32}
ANY_SIZE = -1


@dataclass(frozen=True, slots=True)
class HashHit:
    """One signature that matched a file's hash (and size, where the signature names one)."""

    type: IndicatorType
    value: str
    name: str
    source: str
    confidence: int


class _Interner:
    """Names and sources repeat a lot (one .hdb file, one family name): keep each string once."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.strings: list[str] = []

    def intern(self, text: str) -> int:
        i = self.index.get(text)
        if i is None:
            i = len(self.strings)
            self.index[text] = i
            self.strings.append(text)
        return i

    def nbytes(self) -> int:
        # The strings are shared by the list and the dict; count them once, plus both containers.
        return (
            sum(sys.getsizeof(s) for s in self.strings)
            + sys.getsizeof(self.strings)
            + sys.getsizeof(self.index)
        )


class _Table:
    """The entries of one hash type: pending rows in compact buffers, then sorted numpy arrays."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.dtype = np.dtype(f"S{width}")
        self.digests: npt.NDArray[np.bytes_] = np.empty(0, dtype=self.dtype)
        self.sizes: npt.NDArray[np.int64] = np.empty(0, dtype=np.int64)
        self.names: npt.NDArray[np.int32] = np.empty(0, dtype=np.int32)
        self.sources: npt.NDArray[np.int32] = np.empty(0, dtype=np.int32)
        self.conf: npt.NDArray[np.uint8] = np.empty(0, dtype=np.uint8)
        self._clear_pending()

    def _clear_pending(self) -> None:
        # Raw bytes and typed arrays, not Python objects: a million pending rows stay ~60 MB.
        self.p_digests = bytearray()
        self.p_sizes = array("q")
        self.p_names = array("i")
        self.p_sources = array("i")
        self.p_conf = array("B")

    @property
    def pending(self) -> int:
        return len(self.p_sizes)

    def append(self, digest: bytes, size: int, name: int, source: int, conf: int) -> None:
        self.p_digests += digest
        self.p_sizes.append(size)
        self.p_names.append(name)
        self.p_sources.append(source)
        self.p_conf.append(conf)

    def freeze(self) -> None:
        if not self.pending:
            return
        digests = np.concatenate(
            [self.digests, np.frombuffer(bytes(self.p_digests), dtype=self.dtype)]
        )
        sizes = np.concatenate([self.sizes, np.frombuffer(self.p_sizes, dtype=np.int64)])
        names = np.concatenate([self.names, np.frombuffer(self.p_names, dtype=np.int32)])
        sources = np.concatenate([self.sources, np.frombuffer(self.p_sources, dtype=np.int32)])
        conf = np.concatenate([self.conf, np.frombuffer(self.p_conf, dtype=np.uint8)])
        self._clear_pending()
        # Sort by digest, then size, then name; a stable sort keeps the first-added of duplicates.
        order = np.lexsort((names, sizes, digests))
        digests, sizes, names = digests[order], sizes[order], names[order]
        sources, conf = sources[order], conf[order]
        if len(digests) > 1:
            same = (
                (digests[1:] == digests[:-1])
                & (sizes[1:] == sizes[:-1])
                & (names[1:] == names[:-1])
            )
            keep = np.concatenate([np.array([True]), ~same])
            if not keep.all():
                digests, sizes, names = digests[keep], sizes[keep], names[keep]
                sources, conf = sources[keep], conf[keep]
        self.digests, self.sizes, self.names = digests, sizes, names
        self.sources, self.conf = sources, conf

    def span(self, digest: bytes) -> tuple[int, int]:
        key = np.bytes_(digest)
        lo = int(np.searchsorted(self.digests, key, side="left"))
        if lo >= len(self.digests):
            return lo, lo
        hi = int(np.searchsorted(self.digests, key, side="right"))
        return lo, hi

    def __len__(self) -> int:
        return len(self.digests)

    def nbytes(self) -> int:
        return int(
            self.digests.nbytes
            + self.sizes.nbytes
            + self.names.nbytes
            + self.sources.nbytes
            + self.conf.nbytes
        )


def _digest(kind: IndicatorType, hexvalue: str) -> bytes | None:
    """Raw digest of a hex string of the right length for `kind`; None for empty or bad input."""
    if len(hexvalue) != 2 * _WIDTH[kind]:
        return None
    try:
        return bytes.fromhex(hexvalue)
    except ValueError:
        return None


class HashSet:
    """Hash signatures of all three types plus an allow-list, built by add() then freeze().

    A signature with a size only matches files of that size (ClamAV semantics); one without a
    size matches any file. add() after freeze() is allowed: the next lookup rebuilds.
    """

    def __init__(self) -> None:
        self._names = _Interner()
        self._sources = _Interner()
        self._sigs = {kind: _Table(_WIDTH[kind]) for kind in HASH_TYPES}
        self._allow = {kind: _Table(_WIDTH[kind]) for kind in HASH_TYPES}
        self._dirty = False

    def _check(self, ind: Indicator) -> bytes:
        if ind.type not in _WIDTH:
            raise ValueError(f"not a hash indicator: {ind.type.value} {ind.value[:80]!r}")
        digest = _digest(ind.type, ind.value.strip().lower())
        if digest is None:
            raise ValueError(f"not a {ind.type.value} hex digest: {ind.value[:80]!r}")
        return digest

    def add(self, ind: Indicator) -> None:
        digest = self._check(ind)
        size = ANY_SIZE if ind.size is None or ind.size < 0 else ind.size
        conf = min(max(ind.confidence, 0), 100)
        self._sigs[ind.type].append(
            digest, size, self._names.intern(ind.name), self._sources.intern(ind.source), conf
        )
        self._dirty = True

    def add_allow(self, ind: Indicator) -> None:
        digest = self._check(ind)
        self._allow[ind.type].append(digest, ANY_SIZE, 0, 0, 0)
        self._dirty = True

    def freeze(self) -> None:
        for table in (*self._sigs.values(), *self._allow.values()):
            table.freeze()
        self._dirty = False

    def _ready(self) -> None:
        if self._dirty:
            self.freeze()

    def __len__(self) -> int:
        self._ready()
        return sum(len(t) for t in self._sigs.values())

    def counts(self) -> dict[str, int]:
        self._ready()
        return {kind.value: len(t) for kind, t in self._sigs.items()}

    def allow_count(self) -> int:
        self._ready()
        return sum(len(t) for t in self._allow.values())

    def nbytes(self) -> int:
        self._ready()
        tables = sum(t.nbytes() for t in (*self._sigs.values(), *self._allow.values()))
        return tables + self._names.nbytes() + self._sources.nbytes()

    def lookup(self, md5: str, sha1: str, sha256: str, size: int) -> list[HashHit]:
        """Signatures matching any of the given hex digests ("" = not computed) and the size.

        A negative size means unknown: then size-bound signatures match too.
        """
        self._ready()
        hits: list[HashHit] = []
        for kind, hexvalue in (
            (IndicatorType.MD5, md5),
            (IndicatorType.SHA1, sha1),
            (IndicatorType.SHA256, sha256),
        ):
            table = self._sigs[kind]
            if not hexvalue or not len(table):
                continue
            value = hexvalue.strip().lower()
            digest = _digest(kind, value)
            if digest is None:
                continue
            lo, hi = table.span(digest)
            for i in range(lo, hi):
                bound = int(table.sizes[i])
                if bound != ANY_SIZE and size >= 0 and bound != size:
                    continue
                hits.append(
                    HashHit(
                        kind,
                        value,
                        self._names.strings[int(table.names[i])],
                        self._sources.strings[int(table.sources[i])],
                        int(table.conf[i]),
                    )
                )
        return hits

    def types(self) -> set[IndicatorType]:
        """Hash types that signatures or the allow-list hold: the only ones worth computing."""
        self._ready()
        return {kind for kind in HASH_TYPES if len(self._sigs[kind]) or len(self._allow[kind])}

    def candidates(
        self, md5s: Sequence[str], sha1s: Sequence[str], sha256s: Sequence[str]
    ) -> npt.NDArray[np.bool_]:
        """For a batch of objects: which may match a signature or the allow-list.

        One vectorised search per table instead of several numpy calls per object; callers run
        lookup()/is_allowed() only where this is True.
        """
        self._ready()
        n = len(sha256s)
        out = np.zeros(n, dtype=np.bool_)
        for kind, hexes in (
            (IndicatorType.MD5, md5s),
            (IndicatorType.SHA1, sha1s),
            (IndicatorType.SHA256, sha256s),
        ):
            tables = [t for t in (self._sigs[kind], self._allow[kind]) if len(t)]
            if not tables:
                continue
            raw = [_digest(kind, h) or b"" for h in hexes]
            keys = np.array(raw, dtype=tables[0].dtype)
            for table in tables:
                idx = np.searchsorted(table.digests, keys)
                idx = np.minimum(idx, len(table.digests) - 1)
                out |= table.digests[idx] == keys
        return out

    def is_allowed(self, md5: str, sha1: str, sha256: str) -> bool:
        """True when any given digest is on the allow-list (ClamAV .fp/.sfp)."""
        self._ready()
        for kind, hexvalue in (
            (IndicatorType.MD5, md5),
            (IndicatorType.SHA1, sha1),
            (IndicatorType.SHA256, sha256),
        ):
            table = self._allow[kind]
            if not hexvalue or not len(table):
                continue
            digest = _digest(kind, hexvalue.strip().lower())
            if digest is None:
                continue
            lo, hi = table.span(digest)
            if hi > lo:
                return True
        return False
