"""abuse.ch feed dumps: URLhaus CSV, ThreatFox JSON and CSV exports, the Feodo Tracker IP
blocklist CSV and MalwareBazaar CSV (one sample row gives its SHA256, MD5 and SHA1)."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from quet.errors import InputError
from quet.indicators.formats import Format, open_text, register
from quet.indicators.model import (
    Indicator,
    IndicatorType,
    IssueLog,
    make,
    normalise_ip,
)

REF_PREFIX = "ref:"
PORT_PREFIX = "port:"
# The published column layouts (see tests/data/<feed>/README.md); a header in the file wins.
URLHAUS_COLUMNS = (
    "id",
    "dateadded",
    "url",
    "url_status",
    "last_online",
    "threat",
    "tags",
    "urlhaus_link",
    "reporter",
)
THREATFOX_COLUMNS = (
    "first_seen_utc",
    "ioc_id",
    "ioc_value",
    "ioc_type",
    "threat_type",
    "fk_malware",
    "malware_alias",
    "malware_printable",
    "last_seen_utc",
    "confidence_level",
    "reference",
    "tags",
    "anonymous",
    "reporter",
)
FEODO_COLUMNS = ("first_seen_utc", "dst_ip", "dst_port", "c2_status", "last_online", "malware")
BAZAAR_COLUMNS = (
    "first_seen_utc",
    "sha256_hash",
    "md5_hash",
    "sha1_hash",
    "reporter",
    "file_name",
    "file_type_guess",
    "mime_type",
    "signature",
    "clamav",
    "vtpercent",
    "imphash",
    "ssdeep",
    "tlsh",
)
_NONE = ("", "none", "null", "n/a")
_THREATFOX_TYPES = {
    "domain": IndicatorType.DOMAIN,
    "url": IndicatorType.URL,
    "md5_hash": IndicatorType.MD5,
    "sha1_hash": IndicatorType.SHA1,
    "sha256_hash": IndicatorType.SHA256,
}

Row = dict[str, str]
RowReader = Callable[[Row, str, int], list[Indicator]]


def _text(value: object) -> str:
    """A cell or JSON value as text; abuse.ch writes 'None', 'n/a' or null for nothing."""
    if value is None:
        return ""
    text = str(value).strip()
    return "" if text.lower() in _NONE else text


def _time(text: str) -> datetime | None:
    """'2024-07-16 06:45:19' (UTC, ' UTC' suffix allowed) or '2024-07-16'; None if neither."""
    t = text.strip().removesuffix("UTC").strip()
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
        try:
            return datetime.strptime(t, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def _tags(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip() and t.strip().lower() not in _NONE]


def _ip_port(value: str) -> tuple[IndicatorType, str, str]:
    """(type, address, port) of '1.2.3.4:443' or '[2001:db8::1]:80'; InputError otherwise."""
    v = value.strip()
    host, sep, port = v.rpartition(":")
    if not sep or not port.isdigit() or not host:
        kind, ip = normalise_ip(v)
        return kind, ip, ""
    kind, ip = normalise_ip(host)
    return kind, ip, port


def _cells(line: str) -> list[str]:
    # abuse.ch quotes every cell and (ThreatFox, MalwareBazaar) puts a space after the comma.
    return next(csv.reader([line], skipinitialspace=True), [])


def _read_csv(
    path: Path, issues: IssueLog, key: str, default: tuple[str, ...], row_reader: RowReader
) -> Iterator[Indicator]:
    """Rows of an abuse.ch CSV dump as dicts keyed by its header (a commented '# "col",…'
    line or a plain one naming `key`), or by `default` when the file has none."""
    source = str(path)
    columns: tuple[str, ...] | None = None
    for lineno, line in open_text(path):
        text = line.strip()
        if not text:
            continue
        try:
            if text.startswith("#"):
                cells = [c.strip().lower() for c in _cells(text.lstrip("#").strip())]
                if key in cells:
                    columns = tuple(cells)
                continue
            cells = _cells(text)
        except csv.Error as exc:
            issues.add(source, lineno, f"bad CSV: {exc}")
            continue
        if key in (c.strip().lower() for c in cells):
            columns = tuple(c.strip().lower() for c in cells)
            continue
        cols = columns or default
        if len(cells) < len(cols):
            issues.add(source, lineno, f"{len(cells)} cells, expected {len(cols)}")
            continue
        row = dict(zip(cols, cells, strict=False))
        try:
            yield from row_reader(row, source, lineno)
        except (InputError, ValueError) as exc:
            issues.add(source, lineno, str(exc))


def _urlhaus_row(row: Row, source: str, lineno: int) -> list[Indicator]:
    url = _text(row.get("url"))
    if not url:
        raise InputError("empty url")
    tags = _tags(row.get("tags", ""))
    status = _text(row.get("url_status"))
    if status:
        tags.append(status)
    link = _text(row.get("urlhaus_link"))
    if link:
        tags.append(REF_PREFIX + link)
    return [
        make(
            IndicatorType.URL,
            url,
            name=_text(row.get("threat")),
            source=source,
            confidence=90 if status == "online" else 75,
            first_seen=_time(row.get("dateadded", "")),
            last_seen=_time(row.get("last_online", "")),
            tags=tuple(tags),
            line=lineno,
        )
    ]


def _threatfox_record(rec: dict[str, object], source: str, lineno: int) -> list[Indicator]:
    value = _text(rec.get("ioc_value", rec.get("ioc")))
    kind_text = _text(rec.get("ioc_type")).lower()
    if not value:
        raise InputError("empty ioc_value")
    raw_tags = rec.get("tags")  # a comma-separated string in exports, a list in the API
    if isinstance(raw_tags, list):
        tags = [_text(t) for t in raw_tags if _text(t)]
    else:
        tags = _tags(_text(raw_tags))
    threat = _text(rec.get("threat_type"))
    if threat:
        tags.append(threat)
    ref = _text(rec.get("reference"))
    if ref:
        tags.append(REF_PREFIX + ref)
    if kind_text == "ip:port":
        kind, norm, port = _ip_port(value)
        if port:
            tags.append(PORT_PREFIX + port)
    elif kind_text in _THREATFOX_TYPES:
        ind = make(_THREATFOX_TYPES[kind_text], value)
        kind, norm = ind.type, ind.value
    else:
        raise InputError(f"unknown ioc_type {kind_text[:40]!r}")
    conf_text = _text(rec.get("confidence_level"))
    if conf_text and not conf_text.isdigit():
        raise InputError(f"confidence_level must be a whole number: {conf_text[:20]!r}")
    return [
        Indicator(
            kind,
            norm,
            name=_text(rec.get("malware", rec.get("fk_malware"))),
            family=_text(rec.get("malware_printable")),
            source=source,
            confidence=min(int(conf_text), 100) if conf_text else 50,
            first_seen=_time(_text(rec.get("first_seen_utc", rec.get("first_seen")))),
            last_seen=_time(_text(rec.get("last_seen_utc", rec.get("last_seen")))),
            tags=tuple(tags),
            line=lineno,
        )
    ]


def _threatfox_row(row: Row, source: str, lineno: int) -> list[Indicator]:
    return _threatfox_record(dict(row), source, lineno)


def _feodo_row(row: Row, source: str, lineno: int) -> list[Indicator]:
    kind, ip = normalise_ip(_text(row.get("dst_ip")))
    tags: list[str] = []
    port = _text(row.get("dst_port"))
    if port.isdigit():
        tags.append(PORT_PREFIX + port)
    status = _text(row.get("c2_status"))
    if status:
        tags.append(status)
    family = _text(row.get("malware"))
    return [
        Indicator(
            kind,
            ip,
            name=f"{family} C2" if family else "botnet C2",
            family=family,
            source=source,
            confidence=90 if status == "online" else 60,
            first_seen=_time(row.get("first_seen_utc", "")),
            last_seen=_time(row.get("last_online", "")),
            tags=tuple(tags),
            line=lineno,
        )
    ]


def _bazaar_row(row: Row, source: str, lineno: int) -> list[Indicator]:
    family = _text(row.get("signature"))
    name = _text(row.get("file_name"))
    file_type = _text(row.get("file_type_guess"))
    seen = _time(row.get("first_seen_utc", ""))
    out: list[Indicator] = []
    for column, kind in (
        ("sha256_hash", IndicatorType.SHA256),
        ("md5_hash", IndicatorType.MD5),
        ("sha1_hash", IndicatorType.SHA1),
    ):
        value = _text(row.get(column))
        if not value:
            continue
        out.append(
            make(
                kind,
                value,
                name=name,
                family=family,
                source=source,
                confidence=100,  # the hash of a sample someone submitted and classified
                first_seen=seen,
                tags=(file_type,) if file_type else (),
                line=lineno,
            )
        )
    if not out:
        raise InputError("no sha256_hash, md5_hash or sha1_hash")
    return out


def read_urlhaus(path: Path, issues: IssueLog) -> Iterator[Indicator]:
    return _read_csv(path, issues, "url_status", URLHAUS_COLUMNS, _urlhaus_row)


def read_threatfox_csv(path: Path, issues: IssueLog) -> Iterator[Indicator]:
    return _read_csv(path, issues, "ioc_value", THREATFOX_COLUMNS, _threatfox_row)


def read_feodo(path: Path, issues: IssueLog) -> Iterator[Indicator]:
    return _read_csv(path, issues, "dst_ip", FEODO_COLUMNS, _feodo_row)


def read_malwarebazaar(path: Path, issues: IssueLog) -> Iterator[Indicator]:
    return _read_csv(path, issues, "sha256_hash", BAZAAR_COLUMNS, _bazaar_row)


_JSON_KEY = re.compile(r'"(\d+)"\s*:\s*\[')


def read_threatfox_json(path: Path, issues: IssueLog) -> Iterator[Indicator]:
    """The ThreatFox JSON export: {"<ioc id>": [{"ioc_value": …, "ioc_type": …}, …], …}."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError as exc:
        raise InputError("no such file", path=source) from exc
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=source) from exc
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        line = exc.lineno if isinstance(exc, json.JSONDecodeError) else 1
        issues.add(source, line, f"not JSON: {exc}")
        return
    if not isinstance(data, dict):
        issues.add(source, 1, "expected a JSON object of ThreatFox IOC ids")
        return
    lines: dict[str, int] = {}  # where each id starts, for messages and Indicator.line
    for m in _JSON_KEY.finditer(text):
        lines.setdefault(m.group(1), text.count("\n", 0, m.start()) + 1)
    for ioc_id, records in data.items():
        lineno = lines.get(str(ioc_id), 1)
        if not isinstance(records, list):
            records = [records]
        for rec in records:
            if not isinstance(rec, dict):
                issues.add(source, lineno, f"IOC {str(ioc_id)[:20]}: expected an object")
                continue
            try:
                yield from _threatfox_record(rec, source, lineno)
            except (InputError, ValueError) as exc:
                issues.add(source, lineno, f"IOC {str(ioc_id)[:20]}: {exc}")


def _header_cells(head: bytes) -> tuple[list[str], list[str]]:
    """(lower-case column names of the first header-like line, comment text) of a CSV head."""
    comments: list[str] = []
    for raw in head.decode("utf-8", "replace").splitlines()[:40]:
        text = raw.strip()
        if not text:
            continue
        if text.startswith("#"):
            comments.append(text)
            body = text.lstrip("#").strip()
            if body.count(",") >= 4:
                try:
                    cells = [c.strip().lower() for c in _cells(body)]
                except csv.Error:
                    continue
                if "first_seen_utc" in cells or "dateadded" in cells:
                    return cells, comments
            continue
        try:
            return [c.strip().lower() for c in _cells(text)], comments
        except csv.Error:
            return [], comments
    return [], comments


def _sniff_by(columns: tuple[str, ...], banner: str) -> Callable[[bytes, str], bool]:
    def sniff(head: bytes, name: str) -> bool:
        cells, comments = _header_cells(head)
        if all(c in cells for c in columns):
            return True
        return any(banner in c.lower() for c in comments) and bool(cells)

    return sniff


def _sniff_threatfox_json(head: bytes, name: str) -> bool:
    return head.lstrip().startswith(b"{") and b'"ioc_value"' in head and b'"ioc_type"' in head


URLHAUS = register(
    Format(
        "urlhaus",
        "abuse.ch URLhaus CSV dump (csv_recent/csv_online): id,dateadded,url,url_status,...",
        (".csv", ".txt"),
        _sniff_by(("dateadded", "url_status", "urlhaus_link"), "urlhaus"),
        read_urlhaus,
    )
)
THREATFOX_JSON = register(
    Format(
        "threatfox-json",
        'abuse.ch ThreatFox JSON export: {"<id>": [{"ioc_value", "ioc_type", ...}]}',
        (".json",),
        _sniff_threatfox_json,
        read_threatfox_json,
    )
)
THREATFOX_CSV = register(
    Format(
        "threatfox-csv",
        "abuse.ch ThreatFox CSV export: first_seen_utc,ioc_id,ioc_value,ioc_type,...",
        (".csv",),
        _sniff_by(("ioc_id", "ioc_value", "ioc_type"), "threatfox"),
        read_threatfox_csv,
    )
)
FEODO = register(
    Format(
        "feodo",
        "abuse.ch Feodo Tracker botnet C2 IP blocklist CSV: first_seen_utc,dst_ip,dst_port,...",
        (".csv",),
        _sniff_by(("dst_ip", "dst_port", "c2_status"), "feodo tracker"),
        read_feodo,
    )
)
MALWAREBAZAAR = register(
    Format(
        "malwarebazaar",
        "abuse.ch MalwareBazaar CSV dump: first_seen_utc,sha256_hash,md5_hash,sha1_hash,...",
        (".csv",),
        _sniff_by(("sha256_hash", "md5_hash", "sha1_hash"), "malwarebazaar"),
        read_malwarebazaar,
    )
)
