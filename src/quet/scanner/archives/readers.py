"""Chunked readers over compressed or stored bytes: each read() yields at most CHUNK bytes and
raises Stop as soon as the output outgrows the input by more than the bomb ratio."""

from __future__ import annotations

import bz2
import io
import lzma
import struct
import zlib
from typing import Any

import inflate64

from quet.scanner.archives.common import CHUNK, ArchiveLimits, check_ratio

try:  # ISA-L inflates ~2.5x faster than zlib (x86-64, arm64), with the same API
    from isal import isal_zlib as _inflate
except ImportError:  # pragma: no cover - optional speed-up
    _inflate = zlib  # type: ignore[misc]

_ZLIB_TYPES = (type(zlib.decompressobj()), type(_inflate.decompressobj()))

XZ_MAGIC = b"\xfd7zXZ\x00"
_STREAM_MAGICS = {"gzip": b"\x1f\x8b", "bzip2": b"BZh", "xz": XZ_MAGIC}
_PEEK_INPUT = 1 << 20  # bzip2 emits nothing before a whole block: feed at most this much to peek
# inflate64 has no output cap and one Deflate64 byte can expand to ~29 kB (a 65538-byte match in
# 18 bits), so it is fed this much at a time: at most ~2 MB of output per step
_DEFLATE64_STEP = 64


def codec_of(head: bytes) -> str | None:
    """The single-stream compression (gzip, bzip2, xz) whose magic `head` starts with."""
    if head.startswith(b"\x1f\x8b\x08"):
        return "gzip"
    if (
        len(head) >= 10
        and head.startswith(b"BZh")
        and 0x31 <= head[3] <= 0x39
        and head[4:10] in (b"1AY&SY", b"\x17rE8P\x90")
    ):
        return "bzip2"
    if head.startswith(XZ_MAGIC):
        return "xz"
    return None


class _Deflate64:
    """inflate64's Inflater behind the interface of bz2/lzma decompressors (max_length,
    needs_input, eof, unused_data), so Inflater drives it like them."""

    def __init__(self) -> None:
        self._dec = inflate64.Inflater()
        self._in = bytearray()
        self._out = bytearray()
        self.unused_data = b""

    @property
    def eof(self) -> bool:
        return bool(self._dec.eof) and not self._out

    @property
    def needs_input(self) -> bool:
        return not self._in and not self._out and not self._dec.eof

    def decompress(self, data: bytes, max_length: int) -> bytes:
        self._in += data
        while len(self._out) < max_length and self._in and not self._dec.eof:
            step = bytes(self._in[:_DEFLATE64_STEP])
            del self._in[:_DEFLATE64_STEP]
            self._out += self._dec.inflate(step)
        if self._dec.eof and self._in:
            self.unused_data = bytes(self._in)
            self._in.clear()
        out = bytes(self._out[:max_length])
        del self._out[:max_length]
        return out


class Inflater:
    """Decompresses `src` step by step, never more than `n` bytes per read, and raises Stop as
    soon as the output outgrows the input by more than the bomb ratio."""

    def __init__(
        self, src: memoryview, codec: str, limits: ArchiveLimits, expected: int | None = None
    ) -> None:
        self.src = src
        # gzip, bzip2, xz (multi-stream) or deflate, deflate64, zip-bzip2, zip-lzma
        self.codec = codec
        self.limits = limits
        self.expected = expected
        self.pos = 0
        self.out = 0
        self.done = False
        self.dec: Any = self._new()

    def _new(self) -> Any:
        codec = self.codec
        if codec == "deflate":
            return _inflate.decompressobj(-15)
        if codec == "deflate64":
            return _Deflate64()
        if codec == "gzip":
            return _inflate.decompressobj(31)
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
            if isinstance(dec, _ZLIB_TYPES):
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
                check_ratio(self.out, len(self.src), self.limits)
                return out
        return b""

    def _next_stream(self, leftover: int) -> None:
        # gzip, bzip2 and xz files may hold several concatenated streams; anything else after the
        # first stream (trailing garbage, zero padding) is ignored as the command-line tools do
        self.pos -= leftover
        rest = bytes(self.src[self.pos : self.pos + 6])
        magic = _STREAM_MAGICS.get(self.codec)
        if magic and rest.startswith(magic):
            self.dec = self._new()
        else:
            self.done = True


class Plain:
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


class RawIO(io.RawIOBase):
    """A readable file object over an Inflater/Plain, for tarfile's stream mode."""

    def __init__(self, reader: Inflater | Plain) -> None:
        self.reader = reader

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        chunk = self.reader.read(len(b))
        b[: len(chunk)] = chunk
        return len(chunk)


def peek(data: bytes, codec: str, n: int = 512) -> bytes:
    """The first `n` decompressed bytes, or fewer if the input is too short or broken."""
    inf = Inflater(memoryview(data)[:_PEEK_INPUT], codec, ArchiveLimits(ratio_min_size=2**62))
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
