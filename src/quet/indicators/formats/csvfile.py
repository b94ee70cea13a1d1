"""Indicator CSV files: a header naming at least `value` (or `indicator`), optionally `type`,
`name`, `family`, `source`, `confidence`, `tags` (';'-separated), `size`, `fp_regex`, `campaign`."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

from quet.errors import InputError
from quet.indicators.formats import Format, register
from quet.indicators.model import Indicator, IndicatorType, IssueLog, guess, make

COLUMNS = (
    "type",
    "value",
    "name",
    "family",
    "source",
    "confidence",
    "tags",
    "size",
    "fp_regex",
    "campaign",
)
_VALUE_COLUMNS = ("value", "indicator")
_TYPES = {t.value for t in IndicatorType}


def _header(row: list[str]) -> dict[str, int]:
    cols: dict[str, int] = {}
    for i, cell in enumerate(row):
        key = cell.strip().lstrip("\ufeff").strip().lower()
        if key == "indicator":
            key = "value"
        cols.setdefault(key, i)
    return cols


def _indicator(cells: dict[str, str], source: str, lineno: int) -> Indicator:
    """One row as an Indicator; ValueError or InputError with a message for the user."""
    value = cells.get("value", "").strip()
    if not value:
        raise ValueError("empty value")
    kind_text = cells.get("type", "").strip().lower()
    if kind_text in ("", "ip"):
        kind, value = guess(value)
    elif kind_text in _TYPES:
        normalised = make(kind_text, value)  # an "ipv4" cell holding an IPv6 becomes ipv6
        kind, value = normalised.type, normalised.value
    else:
        raise ValueError(f"unknown type {kind_text[:40]!r}; one of: {', '.join(sorted(_TYPES))}")
    confidence = 50
    conf_text = cells.get("confidence", "").strip()
    if conf_text:
        if not (conf_text.isascii() and conf_text.isdigit()):
            raise ValueError(f"confidence must be a whole number 0-100: {conf_text[:40]!r}")
        confidence = min(int(conf_text), 100)
    size: int | None = None
    size_text = cells.get("size", "").strip()
    if size_text and size_text != "*":
        if not (size_text.isascii() and size_text.isdigit()):
            raise ValueError(f"size must be a number of bytes: {size_text[:40]!r}")
        size = int(size_text)
    tags = tuple(t.strip() for t in cells.get("tags", "").split(";") if t.strip())
    return Indicator(
        kind,
        value,
        name=cells.get("name", "").strip(),
        family=cells.get("family", "").strip(),
        source=cells.get("source", "").strip() or source,
        confidence=confidence,
        tags=tags,
        size=size,
        fp_regex=cells.get("fp_regex", "").strip(),
        campaign=cells.get("campaign", "").strip(),
        line=lineno,
    )


def read_csv(path: Path, issues: IssueLog) -> Iterator[Indicator]:
    source = str(path)
    try:
        with Path(path).open("r", encoding="utf-8", errors="replace", newline="") as fh:
            yield from _rows(fh, source, issues)
    except FileNotFoundError as exc:
        raise InputError("no such file", path=source) from exc
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=source) from exc


def _rows(fh: TextIO, source: str, issues: IssueLog) -> Iterator[Indicator]:
    reader = csv.reader(fh)
    cols: dict[str, int] | None = None
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            issues.add(source, start, f"bad CSV: {exc}")
            if reader.line_num < start:
                break  # the reader did not move on: nothing more can be read
            continue
        if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        if cols is None:
            cols = _header(row)
            if "value" not in cols:
                issues.add(source, start, "no 'value' (or 'indicator') column in the header")
                return
            continue
        if len(row) > len(cols) and any(c.strip() for c in row[len(cols) :]):
            issues.add(source, start, f"{len(row)} cells but {len(cols)} header columns")
            continue
        cells = {key: row[i] for key, i in cols.items() if i < len(row)}
        try:
            yield _indicator(cells, source, start)
        except (ValueError, InputError) as exc:
            issues.add(source, start, str(exc))


def _sniff(head: bytes, name: str) -> bool:
    for raw in head.decode("utf-8", "replace").splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        try:
            first = next(csv.reader([raw]))
        except (csv.Error, StopIteration):
            return False
        return any(c.strip().lstrip("\ufeff").lower() in _VALUE_COLUMNS for c in first)
    return False


def write_csv(indicators: Iterable[Indicator], path: Path) -> int:
    """Write indicators with the COLUMNS header; returns the number of rows written."""
    count = 0
    with Path(path).open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(COLUMNS)
        for ind in indicators:
            writer.writerow(
                (
                    ind.type.value,
                    ind.value,
                    ind.name,
                    ind.family,
                    ind.source,
                    ind.confidence,
                    ";".join(ind.tags),
                    "" if ind.size is None else ind.size,
                    ind.fp_regex,
                    ind.campaign,
                )
            )
            count += 1
    return count


CSV = register(
    Format(
        "csv",
        "Indicator CSV with a header: value (or indicator), optional type, name, family, "
        "source, confidence, tags, size",
        (".csv",),
        _sniff,
        read_csv,
        write_csv,
    )
)
