"""Live input for `quet net watch`: files followed like `tail -F` (through rotation by rename and
by truncation) and a syslog listener (RFC 3164/5424 over UDP and TCP), parsed by the log sources
and matched as lines arrive."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shutil
import socketserver
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from quet.errors import InputError
from quet.indicators.model import IssueLog
from quet.netwatch import sources
from quet.netwatch.alerts import Aggregator, Alert
from quet.netwatch.matcher import Matcher
from quet.netwatch.records import NetEvent
from quet.netwatch.sources import Source, gc_paused

READ_LIMIT = 8 << 20  # bytes read from one file per round: bounds memory on a large backlog
MAX_LINE = 1 << 20  # a "line" longer than this without a newline is cut


@dataclass(slots=True)
class Chunk:
    """Complete lines (each ending in a newline) read from one input."""

    label: str  # the file, or "syslog:udp:127.0.0.1"
    first_line: int  # number of the first line in its file or stream
    data: bytes


class FileFollower:
    """One file followed by name: new complete lines as they are written; when the name points
    to a new file (rotated by rename) the old one is read to its end first; a file that shrank
    (truncated) is read again from its start."""

    def __init__(self, path: Path, from_start: bool = True) -> None:
        self.path = Path(path)
        self.from_start = from_start
        self.fh: BinaryIO | None = None
        self.ident: tuple[int, int] = (0, 0)
        self.lineno = 0  # lines handed out from the current file
        self.partial = b""
        self.header = b""  # the file's leading comment lines (Zeek's #fields) or its first line
        self.header_done = False
        self.rotations = 0
        self.truncations = 0
        # A file that appears later is new: read it all.
        self._start_at_end = not from_start and self.path.exists()

    def _open(self, at_start: bool) -> bool:
        try:
            fh = self.path.open("rb")
        except FileNotFoundError:
            return False
        st = os.fstat(fh.fileno())
        self.fh = fh
        self.ident = (st.st_dev, st.st_ino)
        self._reset()
        if not at_start:
            self._skip_to_end()
        return True

    def _reset(self) -> None:
        self.lineno = 0
        self.partial = b""
        self.header = b""
        self.header_done = False

    def _skip_to_end(self) -> None:
        """Start at the end, yet keep true line numbers and the header the parser needs."""
        assert self.fh is not None
        head = self.fh.read(1 << 16)
        self._take_header(head[: head.rfind(b"\n") + 1])
        self.lineno = head.count(b"\n")
        while block := self.fh.read(1 << 22):
            self.lineno += block.count(b"\n")
            head = block
        tail = head[head.rfind(b"\n") + 1 :] if self.lineno else head
        self.fh.seek(self.fh.tell() - len(tail))

    def _take_header(self, data: bytes) -> None:
        if self.header_done:
            return
        pos = 0
        while pos < len(data):
            end = data.find(b"\n", pos) + 1 or len(data)
            line = data[pos:end]
            if not line.startswith(b"#"):
                if not self.header:
                    self.header = line  # a CSV header row, or one line the parser drops again
                self.header_done = True
                return
            self.header += line
            pos = end

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None

    def poll(self, limit: int = READ_LIMIT) -> Chunk | None:
        """The next complete lines, or None when there is nothing new yet."""
        if self.fh is None:
            if not self._open(at_start=not self._start_at_end):
                return None
            self._start_at_end = False
        assert self.fh is not None
        data = self.fh.read(limit)
        if data:
            return self._lines(data)
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None  # renamed away; the writer has not made the new one yet
        if (st.st_dev, st.st_ino) != self.ident:
            last = self._lines(b"\n") if self.partial else None
            self.close()
            self.rotations += 1
            self._open(at_start=True)
            return last or self.poll(limit)
        if st.st_size < self.fh.tell():
            self.truncations += 1
            self.fh.seek(0)
            self._reset()
            return self.poll(limit)
        return None

    def _lines(self, data: bytes) -> Chunk | None:
        buf = self.partial + data if self.partial else data  # no copy of a whole read
        cut = buf.rfind(b"\n") + 1
        if cut == 0:
            if len(buf) < MAX_LINE:
                self.partial = buf
                return None
            buf, cut = buf + b"\n", len(buf) + 1
        self.partial = buf[cut:]
        block = buf[:cut]
        if not self.header_done and self.header.count(b"\n") == self.lineno:
            self._take_header(block)
        chunk = Chunk(str(self.path), self.lineno + 1, block)
        self.lineno += block.count(b"\n")
        return chunk


class ChunkParser:
    """Parses chunks with a log source: in memory when the source has `parse_lines` (Zeek);
    otherwise the chunk is written to a scratch file (after the file's header, which a format
    may need to name its columns) and read back. Events and issues carry their true file and
    line either way."""

    def __init__(self) -> None:
        self._dir: Path | None = None
        self._n = 0
        self._header: tuple[bytes, list[str]] = (b"", [])

    @property
    def dir(self) -> Path:
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="quet-follow-"))
        return self._dir

    def close(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def parse(
        self, src: Source, chunk: Chunk, header: bytes, issues: IssueLog, name: str = ""
    ) -> list[NetEvent]:
        if src.parse_lines is not None and not name:
            head = self._header_lines(header) if chunk.first_line > 1 else []
            lines = _text_lines(chunk.data, chunk.first_line == 1)
            return src.parse_lines(head, lines, issues, chunk.label, chunk.first_line)
        return self._parse_file(src, chunk, header, issues, name)

    def _header_lines(self, header: bytes) -> list[str]:
        if self._header[0] != header:  # the same few header bytes come with every chunk
            self._header = (header, _text_lines(header, True))
        return self._header[1]

    def _parse_file(
        self, src: Source, chunk: Chunk, header: bytes, issues: IssueLog, name: str
    ) -> list[NetEvent]:
        prefix = header if chunk.first_line > 1 else b""
        skip = prefix.count(b"\n")
        self._n += 1
        scratch = self.dir / str(self._n % 4)
        scratch.mkdir(exist_ok=True)
        tmp = scratch / (name or Path(chunk.label).name or "log")
        with tmp.open("wb") as fh:
            fh.write(prefix)
            fh.write(chunk.data)
        local = IssueLog()
        offset = chunk.first_line - 1 - skip
        try:
            events = [ev for ev in src.read(tmp, local) if ev.line > skip]
        finally:
            tmp.unlink(missing_ok=True)
        for ev in events:
            ev.source = chunk.label
            ev.line += offset
        for issue in local.issues:
            if issue.line > skip or issue.line == 0:
                issues.add(chunk.label, issue.line + offset if issue.line else 0, issue.message)
        issues.count += max(0, local.count - len(local.issues))
        return events


def _text_lines(data: bytes, at_start: bool) -> list[str]:
    """Lines as `sources.open_text` gives them: UTF-8 with replacement, no line ends, no BOM on
    a file's first line. (A newline byte is never inside a UTF-8 sequence, so decoding the
    whole block equals decoding line by line.)"""
    text = data.decode("utf-8", errors="replace")
    lines = text.split("\n")
    if lines and not lines[-1]:
        lines.pop()
    if "\r" in text:
        lines = [line.rstrip("\r") for line in lines]
    if at_start and lines:
        lines[0] = lines[0].lstrip("\ufeff")
    return lines


# -- syslog ------------------------------------------------------------------------------------

_RFC5424 = re.compile(
    r"^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) (-|(?:\[(?:[^\]\\]|\\.)*\])+)(?: (.*))?$", re.S
)
_RFC3164 = re.compile(
    r"^(?:<(\d{1,3})>)?([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) (\S+) ([^:\[\s]+)(?:\[(\w+)\])?: ?(.*)$",
    re.S,
)
_PRI = re.compile(r"^<(\d{1,3})>")


@dataclass(slots=True)
class SyslogMessage:
    pri: int
    timestamp: str  # as sent, in the traditional "Mmm dd hh:mm:ss" form
    host: str
    app: str
    pid: str
    body: str

    def traditional(self) -> str:
        """As a local syslog daemon would write it to a file (what file-oriented sources read)."""
        tag = f"{self.app}[{self.pid}]" if self.pid else self.app
        if not self.timestamp:
            return self.body
        return f"{self.timestamp} {self.host} {tag}: {self.body}"


def _nil(v: str) -> str:
    return "" if v == "-" else v


def parse_syslog(line: str) -> SyslogMessage:
    """An RFC 5424 or RFC 3164 line; anything else is kept whole as the body."""
    line = line.rstrip("\r\n")
    m = _RFC5424.match(line)
    if m:
        stamp = ""
        with contextlib.suppress(ValueError):
            stamp = datetime.fromisoformat(m.group(2).replace("Z", "+00:00")).strftime(
                "%b %e %H:%M:%S"
            )
        body = (m.group(8) or "").removeprefix("\ufeff")
        host, app, pid = (_nil(m.group(i)) for i in (3, 4, 5))
        return SyslogMessage(int(m.group(1)), stamp, host, app, pid, body)
    m = _RFC3164.match(line)
    if m:
        pri = int(m.group(1)) if m.group(1) else 13
        return SyslogMessage(pri, m.group(2), m.group(3), m.group(4), m.group(5) or "", m.group(6))
    m = _PRI.match(line)
    pri = int(m.group(1)) if m else 13
    return SyslogMessage(pri, "", "", "", "", line[m.end() :] if m else line)


class _UDPHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data = self.request[0]
        server = self.server
        assert isinstance(server, _UDPServer)
        for line in data.decode("utf-8", "replace").splitlines():
            if line.strip():
                server.inbox.put((f"syslog:udp:{self.client_address[0]}", line))


class _TCPHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        server = self.server
        assert isinstance(server, _TCPServer)
        label = f"syslog:tcp:{self.client_address[0]}"
        while True:
            first = self.rfile.peek(1)[:1]  # type: ignore[attr-defined]
            if not first:
                return
            if first.isdigit():  # RFC 6587 octet counting: "LEN SP MSG"
                digits = b""
                while (ch := self.rfile.read(1)).isdigit():
                    digits += ch
                raw = self.rfile.read(int(digits))
            else:  # non-transparent framing: one message a line
                raw = self.rfile.readline(MAX_LINE)
            if not raw:
                return
            text = raw.decode("utf-8", "replace").strip("\r\n")
            if text.strip():
                server.inbox.put((label, text))


class _UDPServer(socketserver.ThreadingUDPServer):
    daemon_threads = True
    allow_reuse_address = True
    inbox: queue.Queue[tuple[str, str]]


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    inbox: queue.Queue[tuple[str, str]]


class SyslogListener:
    """Syslog over UDP and/or TCP; received lines wait in `inbox` as (label, line)."""

    def __init__(
        self, host: str = "127.0.0.1", udp_port: int | None = None, tcp_port: int | None = None
    ) -> None:
        self.inbox: queue.Queue[tuple[str, str]] = queue.Queue()
        self._servers: list[socketserver.BaseServer] = []
        self._threads: list[threading.Thread] = []
        self.udp_address: tuple[str, int] | None = None
        self.tcp_address: tuple[str, int] | None = None
        try:
            if udp_port is not None:
                udp = _UDPServer((host, udp_port), _UDPHandler)
                udp.inbox = self.inbox
                self._servers.append(udp)
                self.udp_address = udp.server_address[:2]  # type: ignore[assignment]
            if tcp_port is not None:
                tcp = _TCPServer((host, tcp_port), _TCPHandler)
                tcp.inbox = self.inbox
                self._servers.append(tcp)
                self.tcp_address = tcp.server_address[:2]  # type: ignore[assignment]
        except OSError as exc:
            self.close()
            raise InputError(f"cannot listen for syslog on {host}: {exc}") from exc

    def start(self) -> SyslogListener:
        for srv in self._servers:
            th = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1})
            th.daemon = True
            th.start()
            self._threads.append(th)
        return self

    def close(self) -> None:
        for srv in self._servers:
            if self._threads:
                srv.shutdown()
            srv.server_close()
        self._servers = []
        self._threads = []

    def drain(self, limit: int = 100_000) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        with contextlib.suppress(queue.Empty):
            while len(out) < limit:
                out.append(self.inbox.get_nowait())
        return out


class SyslogRouter:
    """Chooses the source that reads each message: the configured one, or the first whose sniff
    accepts it (remembered per program name); and the form it reads — the line as a syslog
    file holds it, or the bare message."""

    def __init__(self, fmt: str | None = None) -> None:
        if fmt is not None and fmt not in sources.SOURCES:
            known = ", ".join(sorted(sources.SOURCES))
            raise InputError(f"unknown log source {fmt!r}; known: {known}")
        self.fmt = fmt
        self._by_app: dict[str, tuple[Source, bool]] = {}

    @staticmethod
    def _sniffs(src: Source, line: str) -> bool:
        try:
            return bool(src.sniff([line], "syslog"))
        except Exception:  # a sniff that trips over a foreign line simply says no
            return False

    def route(self, msg: SyslogMessage) -> tuple[Source, str] | None:
        trad = msg.traditional()
        if self.fmt is not None:
            src = sources.SOURCES[self.fmt]
            return src, (trad if self._sniffs(src, trad) else msg.body)
        known = self._by_app.get(msg.app) if msg.app else None
        if known is not None:
            return known[0], trad if known[1] else msg.body
        for src in sources.SOURCES.values():
            for whole, line in ((True, trad), (False, msg.body)):
                if line and self._sniffs(src, line):
                    if msg.app:
                        self._by_app[msg.app] = (src, whole)
                    return src, line
        return None


# -- the watch loop ----------------------------------------------------------------------------


@dataclass
class WatchStats:
    events: dict[str, int] = field(default_factory=dict)  # per source name
    lines: int = 0
    started: float = field(default_factory=time.monotonic)

    def total(self) -> int:
        return sum(self.events.values())


class Watcher:
    """Follows files and a syslog listener, parses, matches, rolls hits up. `step` is one round
    (the tests and the benchmark drive it); `run` loops until told to stop."""

    def __init__(
        self,
        paths: Iterable[Path],
        matcher: Matcher,
        *,
        source: str | None = None,
        syslog: SyslogListener | None = None,
        syslog_format: str | None = None,
        from_start: bool = False,
        issues: IssueLog | None = None,
        on_alert: Callable[[Alert, bool], None] | None = None,
    ) -> None:
        if source is not None and source not in sources.SOURCES:
            known = ", ".join(sorted(sources.SOURCES))
            raise InputError(f"unknown log source {source!r}; known: {known}")
        self.followers = [FileFollower(p, from_start) for p in paths]
        self.matcher = matcher
        self.forced = sources.SOURCES[source] if source else None
        self.syslog = syslog
        self.router = SyslogRouter(syslog_format) if syslog is not None else None
        self.issues = issues if issues is not None else IssueLog()
        self.on_alert = on_alert
        self.aggregator = Aggregator()
        self.stats = WatchStats()
        self.parser = ChunkParser()
        self._detected: dict[int, tuple[tuple[int, int], Source | None]] = {}
        self._dirty: dict[str, Alert] = {}
        self._syslog_line = 0

    def close(self) -> None:
        for f in self.followers:
            f.close()
        self.parser.close()

    def _source_for(self, i: int, f: FileFollower) -> Source | None:
        if self.forced is not None:
            return self.forced
        known = self._detected.get(i)
        if known is not None and known[0] == f.ident:
            return known[1]
        src = sources.detect(f.path)
        if src is None:
            self.issues.add(str(f.path), 0, "unknown log format; its lines are skipped")
        self._detected[i] = (f.ident, src)
        return src

    def _handle(self, src: Source, events: list[NetEvent]) -> None:
        if not events:
            return
        self.stats.events[src.name] = self.stats.events.get(src.name, 0) + len(events)
        for hit in self.matcher.match_chunk(events):
            alert, new = self.aggregator.add(hit)
            if new and self.on_alert is not None:
                self.on_alert(alert, True)
            elif not new:
                self._dirty[alert.id] = alert

    def step(self) -> int:
        """Read what is new in every input once (files up to READ_LIMIT each); the number of
        lines read."""
        before = self.stats.lines
        for i, f in enumerate(self.followers):
            chunk = f.poll()
            if chunk is None:
                continue
            self.stats.lines += chunk.data.count(b"\n")
            src = self._source_for(i, f)
            if src is not None:
                with gc_paused():  # no cyclic GC in the middle of a chunk (3x the cost)
                    self._handle(src, self.parser.parse(src, chunk, f.header, self.issues))
        if self.syslog is not None and self.router is not None:
            self._syslog_step(self.syslog.drain())
        return self.stats.lines - before

    def _syslog_step(self, messages: list[tuple[str, str]]) -> None:
        groups: dict[tuple[str, str], tuple[Source, list[str]]] = {}
        assert self.router is not None
        for label, raw in messages:
            self._syslog_line += 1
            self.stats.lines += 1
            routed = self.router.route(parse_syslog(raw))
            if routed is None:
                self.issues.add(label, self._syslog_line, "no log source reads this message")
                continue
            src, line = routed
            groups.setdefault((label, src.name), (src, []))[1].append(line.replace("\n", " "))
        for (label, _name), (src, lines) in groups.items():
            chunk = Chunk(label, 1, ("\n".join(lines) + "\n").encode())
            self._handle(src, self.parser.parse(src, chunk, b"", self.issues, name="syslog"))

    def updates(self) -> list[Alert]:
        """Alerts whose count grew since the last call (to write or post again, same id)."""
        out = list(self._dirty.values())
        self._dirty.clear()
        return out

    def run(
        self,
        stop: threading.Event,
        interval: float = 0.5,
        update_every: float = 60.0,
        on_update: Callable[[list[Alert]], None] | None = None,
    ) -> None:
        last = time.monotonic()
        while not stop.is_set():
            busy = self.step() > 0
            now = time.monotonic()
            if on_update is not None and now - last >= update_every:
                last = now
                changed = self.updates()
                if changed:
                    on_update(changed)
            if not busy:
                stop.wait(interval)
        if on_update is not None:
            changed = self.updates()
            if changed:
                on_update(changed)
