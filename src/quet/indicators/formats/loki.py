"""Loki / signature-base IOC lists: hash-iocs (`hash;[score;]description`), filename-iocs
(`regex;score[;fp-regex]`) and c2-iocs (one domain, IP or CIDR per line)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from quet.errors import InputError
from quet.indicators.filenames import compile_ioc
from quet.indicators.formats import Format, open_text, register
from quet.indicators.model import Indicator, IndicatorType, IssueLog, guess

DEFAULT_SCORE = 75
_TYPE_BY_LEN = {32: IndicatorType.MD5, 40: IndicatorType.SHA1, 64: IndicatorType.SHA256}
_HEX = re.compile(r"[0-9a-fA-F]+")
_HASH_LINE = re.compile(r"^([0-9a-fA-F]{32}|[0-9a-fA-F]{40}|[0-9a-fA-F]{64});")
_FILENAME_LINE = re.compile(r"^[^;]+;\s*\d{1,3}\s*(;.*)?$")
_NET_TYPES = (IndicatorType.IPV4, IndicatorType.IPV6, IndicatorType.CIDR, IndicatorType.DOMAIN)


def _score(text: str) -> int:
    """A Loki score as a confidence in 0..100; ValueError when it is not a whole number."""
    t = text.strip()
    if not (t.isascii() and t.lstrip("-").isdigit()):
        raise ValueError(f"score must be a whole number: {t[:40]!r}")
    return min(max(int(t), 0), 100)


def _comment(text: str) -> str:
    return text.lstrip("#").strip()


def read_hash(path: Path, issues: IssueLog) -> Iterator[Indicator]:
    source = str(path)
    for lineno, line in open_text(path):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        fields = text.split(";")
        value = fields[0].strip()
        kind = _TYPE_BY_LEN.get(len(value))
        if kind is None or not _HEX.fullmatch(value):
            issues.add(source, lineno, f"not an MD5, SHA1 or SHA256 hex digest: {value[:80]!r}")
            continue
        score = DEFAULT_SCORE
        rest = fields[1:]
        if len(rest) >= 2 and rest[0].strip().isascii() and rest[0].strip().isdigit():
            score = min(int(rest[0].strip()), 100)
            rest = rest[1:]
        yield Indicator(
            kind,
            value.lower(),
            name=";".join(rest).strip(),
            source=source,
            confidence=score,
            line=lineno,
        )


def read_filename(path: Path, issues: IssueLog) -> Iterator[Indicator]:
    source = str(path)
    description = ""  # Loki names a regex by the last comment line above it
    for lineno, line in open_text(path):
        text = line.strip()
        if not text:
            continue
        if text.startswith("#"):
            description = _comment(text)
            continue
        fields = text.split(";")
        if len(fields) > 3:
            issues.add(source, lineno, "expected REGEX;SCORE[;FP-REGEX] (too many ';')")
            continue
        regex = fields[0].strip()
        if not regex:
            issues.add(source, lineno, "empty regex")
            continue
        try:
            score = _score(fields[1]) if len(fields) > 1 else DEFAULT_SCORE
        except ValueError as exc:
            issues.add(source, lineno, str(exc))
            continue
        fp = fields[2].strip() if len(fields) > 2 else ""
        bad = False
        for label, pattern in (("regex", regex), ("fp-regex", fp)):
            if not pattern:
                continue
            try:
                compile_ioc(pattern)
            except (re.error, OverflowError, RecursionError) as exc:
                issues.add(source, lineno, f"{label} does not compile: {exc}")
                bad = True
                break
        if bad:
            continue
        yield Indicator(
            IndicatorType.FILENAME,
            regex,
            name=description,
            source=source,
            confidence=score,
            fp_regex=fp,
            line=lineno,
        )


def read_c2(path: Path, issues: IssueLog) -> Iterator[Indicator]:
    source = str(path)
    description = ""
    for lineno, line in open_text(path):
        text = line.strip()
        if not text:
            continue
        if text.startswith("#"):
            description = _comment(text)
            continue
        value, _, note = text.partition(";")
        try:
            kind, norm = guess(value)
        except InputError as exc:
            issues.add(source, lineno, str(exc))
            continue
        if kind not in _NET_TYPES:
            issues.add(source, lineno, f"not a domain, IP address or CIDR: {value[:80]!r}")
            continue
        yield Indicator(
            kind,
            norm,
            name=note.strip() or description,
            source=source,
            confidence=DEFAULT_SCORE,
            line=lineno,
        )


def _data_lines(head: bytes, limit: int = 8) -> tuple[list[str], list[str]]:
    """(first non-comment lines, comment lines) of a file head."""
    data: list[str] = []
    comments: list[str] = []
    for raw in head.decode("utf-8", "replace").splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            comments.append(line)
        elif len(data) < limit:
            data.append(line)
    if len(head) >= 4096 and data and len(data) < limit:
        data.pop()  # the last line may be cut by the head limit
    return data, comments


def _sniff_hash(head: bytes, name: str) -> bool:
    low = name.lower()
    if "hash-ioc" in low:
        return True
    if "filename-ioc" in low or "c2-ioc" in low:
        return False
    data, _ = _data_lines(head)
    return bool(data) and all(_HASH_LINE.match(d) for d in data)


def _sniff_filename(head: bytes, name: str) -> bool:
    low = name.lower()
    if "filename-ioc" in low:
        return True
    if "hash-ioc" in low or "c2-ioc" in low:
        return False
    data, _ = _data_lines(head)
    return (
        bool(data)
        and all(_FILENAME_LINE.match(d) for d in data)
        and not any(_HASH_LINE.match(d) for d in data)
    )


def _sniff_c2(head: bytes, name: str) -> bool:
    low = name.lower()
    if "c2-ioc" in low:
        return True
    if "hash-ioc" in low or "filename-ioc" in low:
        return False
    data, comments = _data_lines(head)
    # Plain one-value-per-line lists are common (Maltrail, blocklists): claim one only when
    # its header says it is Loki's.
    header = " ".join(comments).lower()
    if "loki" not in header or "c2" not in header:
        return False
    for d in data:
        try:
            kind, _ = guess(d.partition(";")[0])
        except InputError:
            return False
        if kind not in _NET_TYPES:
            return False
    return bool(data)


HASH = register(
    Format(
        "loki-hash",
        "Loki/signature-base hash-iocs.txt: hash;description or hash;score;description",
        (".txt",),
        _sniff_hash,
        read_hash,
    )
)
FILENAME = register(
    Format(
        "loki-filename",
        "Loki/signature-base filename-iocs.txt: regex;score[;fp-regex]",
        (".txt",),
        _sniff_filename,
        read_filename,
    )
)
C2 = register(
    Format(
        "loki-c2",
        "Loki/signature-base c2-iocs.txt: one domain, IP address or CIDR per line",
        (".txt",),
        _sniff_c2,
        read_c2,
    )
)
