"""Botnet and sinkhole feeds read into one Arrow event table (ip, family, day, hi, lo).

Three formats, sniffed on the first bytes: Shadowserver `event4_sinkhole` /
`event4_sinkhole_http` CSV reports (and the older `botnet_drone` CSV with `ip` and `infection`),
IntelMQ events as JSON lines or a JSON array (flat dotted keys: `source.ip`, `time.source`,
`malware.name`), and plain CSV `ip,timestamp,family` with or without a header. A row that cannot
be read (wrong field count, no valid IP, no valid time) is counted in an `IssueLog` with its
line; it never stops the import.

CSV goes through pyarrow's reader; addresses, times and family names are normalised once per
distinct value (feeds repeat them a lot), so a large report costs a few seconds, not minutes.
"""

from __future__ import annotations

import csv
import gzip
import io
import ipaddress
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from quet.errors import InputError
from quet.indicators.model import IssueLog

# The event relation every reader produces; `hi`/`lo` are the address as two signed 64-bit
# halves of its IPv6 form (IPv4 mapped into ::ffff:0:0/96), what the attribution SQL joins on.
EVENT_SCHEMA = pa.schema(
    [
        ("ip", pa.string()),
        ("family", pa.string()),
        ("day", pa.date32()),
        ("hi", pa.int64()),
        ("lo", pa.int64()),
    ]
)
FORMATS = ("shadowserver", "intelmq", "csv")
_V4_MAPPED = 0xFFFF << 32
_MAX_FAMILY = 100


@dataclass
class FeedRead:
    """One feed file read: its events (not yet de-duplicated), the format and the counts."""

    path: str
    format: str
    events: pa.Table
    rows: int = 0
    issues: IssueLog = field(default_factory=IssueLog)

    @property
    def bad_rows(self) -> int:
        return self.issues.count


# -- values ----------------------------------------------------------------------------------


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def ip_parts(text: str) -> tuple[str, int, int] | None:
    """(canonical text, hi, lo) of an address as feeds write it; None when it is not one.
    IPv4-mapped IPv6 addresses are taken as their IPv4 address."""
    text = text.strip().strip("[]")
    if not text or len(text) > 45:
        return None
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        else:
            n = int(ip)
            return ip.compressed, _signed(n >> 64), _signed(n & ((1 << 64) - 1))
    return str(ip), 0, _V4_MAPPED | int(ip)


def network_parts(text: str) -> tuple[int, int, int] | None:
    """(hi, lo, prefix length) of a network in the same 128-bit space (IPv4 lengths + 96)."""
    try:
        net = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None
    if isinstance(net, ipaddress.IPv6Network):
        mapped = net.network_address.ipv4_mapped
        if mapped is not None and net.prefixlen >= 96:
            net = ipaddress.IPv4Network(f"{mapped}/{net.prefixlen - 96}", strict=False)
    if isinstance(net, ipaddress.IPv4Network):
        return 0, _V4_MAPPED | int(net.network_address), net.prefixlen + 96
    n = int(net.network_address)
    return _signed(n >> 64), _signed(n & ((1 << 64) - 1)), net.prefixlen


EARLIEST_DAY = date(2000, 1, 1)  # feed times before this are mistakes (epoch 0, bad clocks)
FUTURE_DAYS = 1  # nor more than a day ahead of the machine's clock


def day_or_reason(text: str, today: date | None = None) -> date | str:
    """The UTC day of a feed time, or why it is not one ("missing time", "not a time: …",
    "time out of range …"). Accepted: ISO 8601 (space or T, Z or an offset; naive is UTC), a
    bare date, or Unix epoch seconds (milliseconds when too large for seconds). Days before
    2000-01-01 or more than a day after `today` (default: the UTC date now) are refused."""
    text = text.strip()
    if not text:
        return "missing time"
    shown = repr(text[:60])
    day: date | None = None
    if text.replace(".", "", 1).isdigit():
        try:
            secs = float(text)
            if secs > 1e11:
                secs /= 1000
            day = datetime.fromtimestamp(secs, UTC).date()
        except (ValueError, OverflowError, OSError):
            return f"time out of range: {shown}"
    else:
        try:
            ts = datetime.fromisoformat(text.replace(" UTC", "Z"))
        except ValueError:
            return f"not a time: {shown}"
        if ts.tzinfo is not None:
            try:
                ts = ts.astimezone(UTC)
            except OverflowError:
                return f"time out of range: {shown}"
        day = ts.date()
    latest = (today or datetime.now(UTC).date()) + timedelta(days=FUTURE_DAYS)
    if not EARLIEST_DAY <= day <= latest:
        return f"time out of range (before {EARLIEST_DAY} or in the future): {shown}"
    return day


def parse_day(text: str) -> date | None:
    """The UTC day of a feed time, None when it is not a usable one (see `day_or_reason`)."""
    found = day_or_reason(text)
    return found if isinstance(found, date) else None


def norm_family(text: str | None) -> str:
    return (text or "").strip().lower()[:_MAX_FAMILY]


# -- normalising columns -------------------------------------------------------------------------


def _lookup(values: pa.Array, fn: Any) -> tuple[list[Any], np.ndarray]:
    """Apply `fn` once per distinct value: the results and each row's index into them."""
    enc = pc.dictionary_encode(values.fill_null(""))
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.combine_chunks()
    results = [fn(v) for v in enc.dictionary.to_pylist()]
    return results, enc.indices.to_numpy(zero_copy_only=False)


def build_events(
    path: str,
    ips: pa.Array,
    times: pa.Array,
    families: pa.Array,
    lines: np.ndarray,
    issues: IssueLog,
    undecodable: np.ndarray | None = None,
) -> pa.Table:
    """The event table of raw columns (strings): rows with a bad address or time (or, where
    `undecodable` is True, bytes that are not UTF-8) go to `issues` with their line numbers."""
    n = len(ips)
    if n == 0:
        return EVENT_SCHEMA.empty_table()
    today = datetime.now(UTC).date()
    ip_res, ip_idx = _lookup(ips, ip_parts)
    day_res, day_idx = _lookup(times, lambda v: day_or_reason(v, today))
    fam_res, fam_idx = _lookup(families, norm_family)
    ip_ok = np.array([r is not None for r in ip_res], dtype=bool)[ip_idx]
    day_ok = np.array([isinstance(r, date) for r in day_res], dtype=bool)[day_idx]
    text_ok = np.ones(n, dtype=bool) if undecodable is None else ~undecodable
    good = ip_ok & day_ok & text_ok
    if not good.all():
        raw_ips = ips.to_pylist()
        for i in np.flatnonzero(~good):
            if not text_ok[i]:
                issues.add(path, int(lines[i]), "invalid UTF-8 bytes")
            elif not ip_ok[i]:
                issues.add(path, int(lines[i]), f"not an IP address: {str(raw_ips[i])[:60]!r}")
            else:
                issues.add(path, int(lines[i]), str(day_res[day_idx[i]]))
    keep = np.flatnonzero(good)
    ip_text = pa.array([r[0] if r else "" for r in ip_res], pa.string())
    his = np.array([r[1] if r else 0 for r in ip_res], dtype=np.int64)
    los = np.array([r[2] if r else 0 for r in ip_res], dtype=np.int64)
    days = pa.array([r if isinstance(r, date) else None for r in day_res], pa.date32())
    fams = pa.array(fam_res, pa.string())
    idx_ip = pa.array(ip_idx[keep])
    return pa.table(
        {
            "ip": ip_text.take(idx_ip),
            "family": fams.take(pa.array(fam_idx[keep])),
            "day": days.take(pa.array(day_idx[keep])),
            "hi": pa.array(his[ip_idx[keep]]),
            "lo": pa.array(los[ip_idx[keep]]),
        },
        schema=EVENT_SCHEMA,
    )


# -- sniffing --------------------------------------------------------------------------------


def _open_text(path: Path) -> io.TextIOBase:
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path), encoding="utf-8-sig", errors="replace")
    return open(path, encoding="utf-8-sig", errors="replace")


def _head(path: Path, size: int = 16384) -> str:
    with _open_text(path) as fh:
        return str(fh.read(size))


@dataclass(frozen=True)
class CsvLayout:
    format: str  # shadowserver or csv
    header: bool
    ip: str
    time: str
    families: tuple[str, ...]  # first non-empty wins
    names: tuple[str, ...]  # every column name (made up when there is no header)


_IP_COLS = ("src_ip", "ip", "source_ip", "source.ip", "addr", "address")
_TIME_COLS = ("timestamp", "time", "ts", "date", "time.source", "first_seen", "seen")
_FAMILY_COLS = ("family", "infection", "malware", "malware.name", "botnet", "tag")


def _csv_layout(head: str) -> CsvLayout | None:
    lines = [line for line in head.splitlines() if line.strip()]
    if not lines:
        return None
    try:
        first = next(csv.reader([lines[0]]))
    except csv.Error:
        return None
    cols = tuple(c.strip().lower() for c in first)
    if len(cols) >= 2 and ip_parts(cols[0]) is not None:
        names = tuple(f"c{i}" for i in range(len(cols)))
        fam = ("c2",) if len(cols) > 2 else ()
        return CsvLayout("csv", False, "c0", "c1", fam, names)
    ip = next((c for c in _IP_COLS if c in cols), None)
    ts = next((c for c in _TIME_COLS if c in cols), None)
    if ip is None or ts is None:
        return None
    fams = tuple(c for c in _FAMILY_COLS if c in cols)
    shadow = ("src_ip" in cols or "infection" in cols) and "timestamp" in cols and "src_asn" in cols
    shadow = shadow or {"ip", "asn", "geo", "infection", "timestamp"} <= set(cols)
    return CsvLayout("shadowserver" if shadow else "csv", True, ip, ts, fams, cols)


def sniff(path: Path) -> str | None:
    """The feed format of a file ('shadowserver', 'intelmq', 'csv'), None when unknown."""
    try:
        head = _head(path)
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=str(path)) from exc
    text = head.lstrip()
    if text.startswith(("{", "[")):
        return "intelmq" if '"source.ip"' in text or '"source.ip":' in text else None
    layout = _csv_layout(head)
    return layout.format if layout else None


# -- readers ---------------------------------------------------------------------------------


def _first_nonempty(columns: Sequence[pa.Array], n: int) -> pa.Array:
    if not columns:
        return pa.nulls(n, pa.string())
    out = columns[0]
    for col in columns[1:]:
        out = pc.if_else(pc.equal(pc.utf8_length(out.fill_null("")), 0), col, out)
    return out


def _decode(column: pa.ChunkedArray | pa.Array) -> tuple[pa.Array, np.ndarray]:
    """A binary column as UTF-8 text (once per distinct value) and the rows that are not UTF-8
    (their text is empty)."""
    enc = pc.dictionary_encode(column.fill_null(b""))
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.combine_chunks()
    texts: list[str] = []
    bad: list[bool] = []
    for raw in enc.dictionary.to_pylist():
        try:
            texts.append(raw.decode("utf-8"))
            bad.append(False)
        except UnicodeDecodeError:
            texts.append("")
            bad.append(True)
    idx = enc.indices
    return (
        pa.array(texts, pa.string()).take(idx),
        np.array(bad, dtype=bool)[idx.to_numpy(zero_copy_only=False)],
    )


def read_csv(path: Path, layout: CsvLayout) -> FeedRead:
    issues = IssueLog()
    skipped: list[int] = []

    def on_bad(row: Any) -> str:
        number = int(row.number) if row.number is not None else 0
        skipped.append(number)
        issues.add(
            str(path), number, f"{row.actual_columns} fields where {row.expected_columns} expected"
        )
        return "skip"

    wanted = [layout.ip, layout.time, *layout.families]
    read = pacsv.ReadOptions(
        use_threads=False,
        block_size=16 << 20,
        column_names=list(layout.names),
        skip_rows=1 if layout.header else 0,
        encoding="utf8",
    )
    parse = pacsv.ParseOptions(invalid_row_handler=on_bad, newlines_in_values=False)
    # Read as bytes: a row with bytes that are not UTF-8 is a bad row, not a failed file.
    convert = pacsv.ConvertOptions(
        column_types={c: pa.binary() for c in wanted},
        include_columns=wanted,
        strings_can_be_null=False,
    )
    try:
        table = pacsv.read_csv(
            path, read_options=read, parse_options=parse, convert_options=convert
        )
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"cannot read as CSV: {exc}", path=str(path)) from exc
    n = table.num_rows
    # Line numbers of the good rows: every data line in order, minus the skipped ones (pyarrow
    # numbers physical lines from 1, the header included).
    first = 2 if layout.header else 1
    lines = np.arange(first, first + n + len(skipped), dtype=np.int64)
    if skipped:
        lines = lines[~np.isin(lines, np.array(skipped, dtype=np.int64))][:n]
    undecodable = np.zeros(n, dtype=bool)
    texts: dict[str, pa.Array] = {}
    for name in dict.fromkeys(wanted):
        texts[name], bad = _decode(table.column(name))
        undecodable |= bad
    fams = _first_nonempty([texts[c] for c in layout.families], n)
    events = build_events(
        str(path), texts[layout.ip], texts[layout.time], fams, lines, issues, undecodable
    )
    issues.issues.sort(key=lambda i: i.line)
    return FeedRead(str(path), layout.format, events, rows=n + len(skipped), issues=issues)


def _intelmq_records(path: Path, issues: IssueLog) -> Iterable[tuple[int, dict[str, Any]]]:
    with _open_text(path) as fh:
        text = str(fh.read())
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"not a JSON array: {exc.msg}", path=str(path), line=exc.lineno
            ) from exc
        for i, item in enumerate(items, 1):
            if isinstance(item, dict):
                yield i, item
            else:
                issues.add(str(path), i, "not a JSON object")
        return
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            issues.add(str(path), number, f"not JSON: {exc.msg}")
            continue
        if isinstance(item, dict):
            yield number, item
        else:
            issues.add(str(path), number, "not a JSON object")


def read_intelmq(path: Path) -> FeedRead:
    """IntelMQ events: `source.ip`, `time.source` (else `time.observation`), the family from
    `malware.name` (else `classification.identifier`)."""
    issues = IssueLog()
    ips: list[str] = []
    times: list[str] = []
    fams: list[str] = []
    lines: list[int] = []
    for number, item in _intelmq_records(path, issues):
        name = item.get("malware.name") or item.get("classification.identifier") or ""
        # A list of names is one event per name (same address, same time).
        names = [str(n) for n in name if n] if isinstance(name, list) else [str(name)]
        for family in names or [""]:
            ips.append(str(item.get("source.ip") or ""))
            times.append(str(item.get("time.source") or item.get("time.observation") or ""))
            fams.append(family)
            lines.append(number)
    rows = len(ips) + issues.count  # a record with a list of names counts once per name
    events = build_events(
        str(path),
        pa.array(ips, pa.string()),
        pa.array(times, pa.string()),
        pa.array(fams, pa.string()),
        np.array(lines, dtype=np.int64),
        issues,
    )
    issues.issues.sort(key=lambda i: i.line)
    return FeedRead(str(path), "intelmq", events, rows=rows, issues=issues)


def read_feed(path: Path, fmt: str | None = None) -> FeedRead:
    """Read one feed file (format sniffed unless given). Unknown formats are an InputError."""
    path = Path(path)
    if path.is_dir():
        raise InputError("is a folder, not a feed file (give the files in it)", path=str(path))
    if not path.is_file():
        raise InputError("no such file", path=str(path))
    if path.stat().st_size == 0:
        raise InputError("empty file", path=str(path))
    fmt = fmt or sniff(path)
    if fmt == "intelmq":
        return read_intelmq(path)
    if fmt in ("shadowserver", "csv"):
        layout = _csv_layout(_head(path))
        if layout is None:
            raise InputError("no ip and timestamp columns in the header", path=str(path))
        return read_csv(path, layout)
    raise InputError(
        "unknown feed format: expected a Shadowserver sinkhole CSV, IntelMQ JSON events or a "
        "CSV of ip,timestamp,family",
        path=str(path),
    )
