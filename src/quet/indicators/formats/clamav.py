"""ClamAV hash databases: .hdb/.hsb signatures (`hash:size:name[:minfl[:maxfl]]`) and the
.fp/.sfp allow-lists, whose Indicators carry tags=("allow",) for HashSet.add_allow."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from quet.indicators.formats import Format, open_text, register
from quet.indicators.model import HASH_TYPES, Indicator, IndicatorType, IssueLog

ALLOW_TAG = "allow"
CONFIDENCE = 100  # an exact file hash from an AV database
_TYPE_BY_LEN = {32: IndicatorType.MD5, 40: IndicatorType.SHA1, 64: IndicatorType.SHA256}
_HEX = re.compile(r"[0-9a-fA-F]+")
_LINE_SHAPE = re.compile(rb"^([0-9a-fA-F]{32}|[0-9a-fA-F]{40}|[0-9a-fA-F]{64}):(\d+|\*):[^:\s]")


def parse_line(text: str) -> tuple[IndicatorType, str, int | None, str]:
    """(type, lower-case hex, size or None for '*', name) of one signature line.

    Raises ValueError with a message for the user when the line is not one.
    """
    fields = text.split(":")
    if len(fields) < 3:
        raise ValueError("expected hash:size:name")
    if len(fields) > 5:
        raise ValueError(f"expected hash:size:name[:minfl[:maxfl]], got {len(fields)} fields")
    hexvalue, size_text, name = fields[0].strip(), fields[1].strip(), fields[2].strip()
    kind = _TYPE_BY_LEN.get(len(hexvalue))
    if kind is None or not _HEX.fullmatch(hexvalue):
        raise ValueError(f"not an MD5, SHA1 or SHA256 hex digest: {hexvalue[:80]!r}")
    if size_text == "*":
        size: int | None = None
    elif size_text.isdigit() and size_text.isascii():
        size = int(size_text)
    else:
        raise ValueError(f"size must be a number of bytes or '*': {size_text[:40]!r}")
    if not name:
        raise ValueError("empty signature name")
    for level in fields[3:]:
        if level.strip() and not (level.strip().isascii() and level.strip().isdigit()):
            raise ValueError(f"functionality level must be a number: {level[:40]!r}")
    return kind, hexvalue.lower(), size, name


def _reader(allow: bool) -> Callable[[Path, IssueLog], Iterator[Indicator]]:
    def read(path: Path, issues: IssueLog) -> Iterator[Indicator]:
        source = str(path)
        tags = (ALLOW_TAG,) if allow else ()
        for lineno, line in open_text(path):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            try:
                kind, value, size, name = parse_line(text)
            except ValueError as exc:
                issues.add(source, lineno, str(exc))
                continue
            yield Indicator(
                kind,
                value,
                name=name,
                source=source,
                confidence=CONFIDENCE,
                size=size,
                line=lineno,
                tags=tags,
            )

    return read


def _first_line(head: bytes) -> bytes:
    for raw in head.splitlines():
        line = raw.strip()
        if line and not line.startswith(b"#"):
            return line
    return b""


def _sniff_hdb(head: bytes, name: str) -> bool:
    m = _LINE_SHAPE.match(_first_line(head))
    return m is not None and len(m.group(1)) == 32 and not name.lower().endswith((".fp", ".sfp"))


def _sniff_hsb(head: bytes, name: str) -> bool:
    m = _LINE_SHAPE.match(_first_line(head))
    return m is not None and len(m.group(1)) != 32 and not name.lower().endswith((".fp", ".sfp"))


def _sniff_fp(head: bytes, name: str) -> bool:
    return name.lower().endswith(".fp") and _LINE_SHAPE.match(_first_line(head)) is not None


def _sniff_sfp(head: bytes, name: str) -> bool:
    return name.lower().endswith(".sfp") and _LINE_SHAPE.match(_first_line(head)) is not None


def write_hdb(indicators: Iterable[Indicator], path: Path) -> int:
    """Write hash indicators as `hash:size:name` lines (.hsb syntax, '*' for any size);
    returns the number written. Other indicator types are left out."""
    count = 0
    with Path(path).open("w", encoding="utf-8", newline="\n") as fh:
        for ind in indicators:
            if ind.type not in HASH_TYPES:
                continue
            size = "*" if ind.size is None else str(ind.size)
            name = re.sub(r"[:\s]+", "_", ind.name.strip()) or "Quet.Hash"
            fh.write(f"{ind.value}:{size}:{name}\n")
            count += 1
    return count


HDB = register(
    Format(
        "clamav-hdb",
        "ClamAV file-hash signatures (MD5, also SHA1/SHA256 by length): hash:size:name",
        (".hdb", ".hdu"),
        _sniff_hdb,
        _reader(allow=False),
    )
)
HSB = register(
    Format(
        "clamav-hsb",
        "ClamAV SHA1/SHA256 file-hash signatures: hash:size:name[:minfl[:maxfl]], size may be *",
        (".hsb", ".hsu"),
        _sniff_hsb,
        _reader(allow=False),
        write_hdb,
    )
)
FP = register(
    Format(
        "clamav-fp",
        "ClamAV allow-list by MD5 (files never reported): md5:size:name",
        (".fp",),
        _sniff_fp,
        _reader(allow=True),
    )
)
SFP = register(
    Format(
        "clamav-sfp",
        "ClamAV allow-list by SHA1/SHA256: hash:size:name",
        (".sfp",),
        _sniff_sfp,
        _reader(allow=True),
    )
)
