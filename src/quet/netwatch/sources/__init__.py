"""The registry of log sources: one module per format, each a name, a sniff and a reader; plus
the helpers every reader shares (gzip-transparent numbered lines, IP/name/time normalising)."""

from __future__ import annotations

import contextlib
import functools
import gc
import gzip
import ipaddress
import json
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from quet.errors import InputError
from quet.indicators.model import IssueLog
from quet.netwatch.records import NetEvent

ParseLines = Callable[[list[str], list[str], IssueLog, str, int], list[NetEvent]]


@dataclass(frozen=True)
class Source:
    name: str  # "zeek-dns", "suricata-eve", "bind", ...
    description: str
    # (first lines of the file decoded as text (up to ~30, gzip already undone), file name)
    sniff: Callable[[list[str], str], bool]
    read: Callable[[Path, IssueLog], Iterator[NetEvent]]  # gzip-transparent; bad lines -> IssueLog
    # Optional: lines already in memory (follow mode) -> their events, without a file. Arguments:
    # (the file's leading header lines, the new lines (no line ends), issues, the file's name or
    # label (events' `source`), the number of the first new line).
    parse_lines: ParseLines | None = None


SOURCES: dict[str, Source] = {}


def register(src: Source) -> Source:
    if src.name in SOURCES:
        raise ValueError(f"log source {src.name!r} is already registered")
    SOURCES[src.name] = src
    return src


GZIP_MAGIC = b"\x1f\x8b"
# A truncated or corrupt .gz (a log rotated while being copied) ends the file, not the run.
_GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)


def open_text(path: Path, issues: IssueLog | None = None) -> Iterator[tuple[int, str]]:
    """Numbered lines (from 1) of a log, gunzipped when it starts with the gzip magic bytes,
    decoded as UTF-8 with replacement, without the line end. A missing or unreadable file is an
    InputError; a corrupt gzip stream ends the file (an IssueLog entry when `issues` is given)."""
    path = Path(path)
    try:
        raw = path.open("rb")
    except FileNotFoundError as exc:
        raise InputError("no such file", path=str(path)) from exc
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=str(path)) from exc
    lineno = 0
    with raw:
        magic = raw.read(2)
        raw.seek(0)
        fh = gzip.GzipFile(fileobj=raw) if magic == GZIP_MAGIC else raw
        try:
            for lineno, data in enumerate(fh, start=1):
                text = data.decode("utf-8", errors="replace").rstrip("\r\n")
                yield lineno, text.lstrip("\ufeff") if lineno == 1 else text
        except _GZIP_ERRORS as exc:
            if issues is None:
                raise InputError(
                    f"corrupt gzip data after line {lineno}: {exc}", str(path)
                ) from exc
            issues.add(str(path), lineno + 1, f"corrupt gzip data, rest of file skipped: {exc}")
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror}", str(path)) from exc


def open_blocks(
    path: Path, issues: IssueLog | None = None, size: int = 1 << 22, lines: int = 4096
) -> Iterator[tuple[int, list[str]]]:
    """The lines of `open_text` in blocks: (number of the block's first line, its lines). A
    plain file is read `size` bytes at a time and each block decoded at once (a newline byte is
    never inside a UTF-8 sequence, so that equals decoding line by line); a gzip stream goes
    through `open_text`, `lines` lines a block, so a corrupt stream ends where it did."""
    path = Path(path)
    try:
        raw = path.open("rb")
    except FileNotFoundError as exc:
        raise InputError("no such file", path=str(path)) from exc
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=str(path)) from exc
    with raw:
        gzipped = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
        if gzipped:
            block: list[str] = []
            first = 1
            for lineno, text in open_text(path, issues):
                if not block:
                    first = lineno
                block.append(text)
                if len(block) >= lines:
                    yield first, block
                    block = []
            if block:
                yield first, block
            return
        first, rest = 1, b""
        while True:
            try:
                data = raw.read(size)
            except OSError as exc:
                raise InputError(f"cannot read: {exc.strerror}", str(path)) from exc
            buf = rest + data if rest else data
            if not buf:
                return
            # Whole lines only; at the end of the file, the last line without its line end.
            cut = buf.rfind(b"\n") + 1 if data else len(buf)
            rest = buf[cut:]
            if cut:
                text = buf[:cut].decode("utf-8", errors="replace")
                block = text.split("\n")
                if block[-1] == "":
                    block.pop()
                if "\r" in text:
                    block = [line.rstrip("\r") for line in block]
                if first == 1 and block:
                    block[0] = block[0].lstrip("\ufeff")
                yield first, block
                first += len(block)
            if not data:
                return


def head(path: Path, n: int = 30) -> list[str]:
    """The first `n` lines of a log as text (gzip undone); fewer when the file is short or its
    gzip stream breaks early. A missing file is an InputError."""
    lines: list[str] = []
    if n <= 0:
        return lines
    scratch = IssueLog()
    for _, text in open_text(Path(path), scratch):
        lines.append(text)
        if len(lines) >= n:
            break
    return lines


def detect(path: Path) -> Source | None:
    """The first registered source whose sniff accepts the file's head and name; None if none."""
    path = Path(path)
    try:
        lines = head(path)
    except InputError:
        return None
    for src in SOURCES.values():
        try:
            if src.sniff(lines, path.name):
                return src
        except Exception:
            continue  # one source's faulty sniff must not hide the others
    return None


def read_path(
    path: Path, issues: IssueLog, source: Source | str | None = None
) -> Iterator[NetEvent]:
    """Events from a log file, or from every log in a folder (recursively, hidden files skipped);
    a file no source recognises is an IssueLog entry at line 0. `source` (a Source or its name)
    forces the reader. A missing path or an unknown source name raises InputError."""
    path = Path(path)
    chosen: Source | None
    if isinstance(source, str):
        chosen = SOURCES.get(source)
        if chosen is None:
            raise InputError(f"unknown log source {source!r}; known: {', '.join(sorted(SOURCES))}")
    else:
        chosen = source
    if not path.exists():
        raise InputError("no such file or folder", path=str(path))
    if not path.is_dir():
        yield from _read_file(path, issues, chosen, strict=True)
        return
    for child in sorted(p for p in path.rglob("*") if p.is_file()):
        if any(part.startswith(".") for part in child.relative_to(path).parts):
            continue  # .git, editor and partial-download files
        yield from _read_file(child, issues, chosen, strict=False)


def _read_file(
    path: Path, issues: IssueLog, chosen: Source | None, *, strict: bool
) -> Iterator[NetEvent]:
    src = chosen or detect(path)
    if src is None:
        issues.add(str(path), 0, "unknown log format; skipped")
        return
    try:
        yield from src.read(path, issues)
    except InputError as exc:
        if strict:
            raise
        # In a folder one unreadable file (permissions, vanished) is reported, not fatal.
        issues.add(str(path), 0, str(exc))


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector held off for a block of parsing. A block of lines makes
    several container objects per line (events, their lists, split fields) and none of them
    cycles; left on, the collector runs hundreds of times per block, each time over every
    long-lived object too (an indicator set, the caches): that tripled the cost of reading."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


# --- helpers shared by the readers ------------------------------------------------------------

EMPTY_VALUES = frozenset({"", "-", "(empty)"})


_CACHE_MAX = 1 << 16
# Logs repeat the same few thousand addresses: each distinct text is parsed once (bounded: a
# full cache is dropped, cheaper than LRU bookkeeping on every hit).
_IP_CACHE: dict[str, str] = {}
# Exactly the dotted quads ipaddress accepts (no leading zeros, each <= 255); such a text is
# already its own compressed form, so no IPv4Address object is needed.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_DOTTED_QUAD = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


def norm_ip(value: object) -> str:
    """An IP address in compressed form ('' for empty, '-', '(empty)', None); ValueError if the
    value is something else. Brackets ("[::1]") and an IPv6 zone ("fe80::1%eth0") are dropped."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    hit = _IP_CACHE.get(text)
    if hit is not None:
        return hit
    compressed = _compressed(text)
    if compressed is None:
        raise ValueError(f"not an IP address: {text[:80]!r}")
    if len(_IP_CACHE) >= _CACHE_MAX:
        _IP_CACHE.clear()
    _IP_CACHE[text] = compressed
    return compressed


def _compressed(value: str) -> str | None:
    text = value.strip()
    if text in EMPTY_VALUES:
        return ""
    if _DOTTED_QUAD.fullmatch(text):
        return text
    return _compressed_slow(text.strip("[]").split("%", 1)[0])


@functools.lru_cache(maxsize=4096)
def _compressed_slow(text: str) -> str | None:
    # IPv6 and odd forms; a miss (a name, garbage) is cached too: answer lists repeat names.
    try:
        return ipaddress.ip_address(text).compressed
    except ValueError:
        return None


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def norm_name(value: object) -> str:
    """A DNS name as we compare them: lower case, no trailing dot; '' for empty values."""
    if value is None:
        return ""
    text = str(value).strip()
    if text in EMPTY_VALUES:
        return ""
    return text.rstrip(".").lower()


def norm_host(value: object) -> str:
    """An HTTP Host / SNI value as a bare name or IP: the port and IPv6 brackets dropped."""
    text = norm_name(value)
    if text.startswith("["):
        return norm_name(text[1:].split("]", 1)[0])
    if text.count(":") == 1:
        name, port = text.split(":")
        if port.isdigit():
            return norm_name(name)
    return text


def answer_values(values: Iterable[object]) -> list[str]:
    """DNS answer data worth matching: IPs (compressed) and host names (normalised), in order,
    without duplicates; TXT strings, SOA records and other non-names are left out."""
    out: list[str] = []
    cache = _ANSWER_CACHE
    for value in values:
        if not isinstance(value, str):
            continue
        item = cache.get(value)
        if item is None:
            item = _answer_item(value)
            if len(cache) >= _CACHE_MAX:
                cache.clear()
            cache[value] = item
        if item and item not in out:
            out.append(item)
    return out


# One answer's text -> its matchable form, '' when it has none (empty, TXT, SOA...).
_ANSWER_CACHE: dict[str, str] = {}


def _answer_item(value: str) -> str:
    text = value.strip()
    if text in EMPTY_VALUES:
        return ""
    ip = _compressed(text)
    if ip is not None:
        return ip
    name = norm_name(text)
    if not name or "." not in name or any(c.isspace() for c in name):
        return ""
    return name


def norm_port(value: object) -> int:
    """A port number; 0 when absent; ValueError when not a port."""
    if value is None or isinstance(value, bool):
        return 0
    if isinstance(value, int):
        port = value
    else:
        text = str(value).strip()
        if text in EMPTY_VALUES:
            return 0
        port = int(text.split("/", 1)[0])  # Zeek can write "53/udp"
    if not 0 <= port <= 65535:
        raise ValueError(f"not a port: {value!r}")
    return port


_PROTO_NUMBERS = {"1": "icmp", "6": "tcp", "17": "udp", "58": "ipv6-icmp", "132": "sctp"}


def norm_proto(value: object) -> str:
    if value is None:
        return ""
    text = str(value).strip().lower()
    if text in EMPTY_VALUES:
        return ""
    if text.isdigit():
        return _PROTO_NUMBERS.get(text.lstrip("0") or "0", text.lstrip("0") or "0")
    return text


def make_url(host: str, target: str, port: int = 0) -> str:
    """The full http:// URL of a request from its Host (or server IP) and request target; the
    target as is when it is already absolute (proxy requests); '' when the target is not a path
    (`*`, empty, CONNECT's host:port)."""
    target = target.strip()
    head = target[:16].lower()
    if head.startswith(("http://", "https://", "ftp://")):
        return target
    host = host.strip().lower()
    if not target.startswith("/") or not host or host in EMPTY_VALUES:
        return ""
    if ":" in host and is_ip(host):
        host = f"[{host}]"  # a bare IPv6 address needs brackets in a URL
    if port and port != 80 and not re.search(r":\d+$", host):
        host = f"{host}:{port}"
    return f"http://{host}{target}"


def load_json_object(line: str) -> dict[str, object]:
    """One JSON-lines record as a dict; ValueError for anything else (bad JSON, an array, a
    nesting deep enough to exhaust the parser)."""
    try:
        value = json.loads(line)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    except ValueError as exc:
        raise ValueError(f"not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError(f"a JSON {type(value).__name__}, not an object")
    return value


# btest and other test harnesses replace real times with X's.
_CANONIFIED = re.compile(r"^X+(\.X+)?$")


def parse_ts(value: object) -> datetime | None:
    """A timezone-aware UTC time from epoch seconds (number or text) or ISO 8601 text (naive
    means UTC); None when missing or canonified (`XXXXXXXXXX.XXXXXX`); ValueError otherwise."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _from_epoch(float(value), value)
    if isinstance(value, str):
        # Epoch seconds are the common case; no empty or canonified text parses as a float.
        try:
            seconds = float(value)
        except ValueError:
            pass
        else:
            return _from_epoch(seconds, value)
    text = str(value).strip()
    if text in EMPTY_VALUES or _CANONIFIED.match(text):
        return None
    try:
        return _from_epoch(float(text), value)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a time: {text[:40]!r}") from None
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def _from_epoch(seconds: float, original: object) -> datetime:
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"not a time: {str(original)[:40]!r}") from None


# Imported last so that each module can register itself with the functions above.
from quet.netwatch.sources import (  # noqa: E402, F401, I001
    zeek,
    suricata,
    bind,
    dnsmasq,
    unbound,
    windns,
    squid,
    firewall,
    pcap,
)

__all__ = [
    "SOURCES",
    "ParseLines",
    "Source",
    "answer_values",
    "detect",
    "gc_paused",
    "head",
    "is_ip",
    "load_json_object",
    "make_url",
    "norm_host",
    "norm_ip",
    "norm_name",
    "norm_port",
    "norm_proto",
    "open_text",
    "parse_ts",
    "read_path",
    "register",
]
