"""The registry of indicator file formats: one module per foreign format, each registering a
name, a cheap sniff of the first bytes, and a reader yielding Indicators."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from quet.errors import InputError
from quet.indicators.model import Indicator, IssueLog

HEAD_BYTES = 4096


@dataclass(frozen=True)
class Format:
    name: str  # e.g. "clamav-hdb"
    description: str
    extensions: tuple[str, ...]  # e.g. (".hdb",)
    sniff: Callable[[bytes, str], bool]  # (first 4 KiB, file name) -> looks like this format
    read: Callable[[Path, IssueLog], Iterator[Indicator]] | None = None  # None: write-only
    # Writes the indicators this format can hold (others are skipped); returns how many it wrote.
    write: Callable[[Iterable[Indicator], Path], int] | None = None


FORMATS: dict[str, Format] = {}


def register(fmt: Format) -> Format:
    """Add a format to the registry; a second format with the same name is a ValueError."""
    if fmt.name in FORMATS:
        raise ValueError(f"indicator format {fmt.name!r} is already registered")
    FORMATS[fmt.name] = fmt
    return fmt


def _head(path: Path) -> bytes:
    with path.open("rb") as fh:
        return fh.read(HEAD_BYTES)


def detect(path: Path) -> Format | None:
    """The format of a file: by extension first, then by sniffing its head; None if unknown."""
    name = path.name
    lower = name.lower()
    by_ext = [f for f in FORMATS.values() if any(lower.endswith(e) for e in f.extensions)]
    if len(by_ext) == 1:
        return by_ext[0]
    try:
        head = _head(path)
    except OSError:
        head = b""
    # Several formats share an extension (Loki's lists are all .txt): let the sniff decide.
    for fmt in by_ext or FORMATS.values():
        if fmt.read is None:
            continue
        try:
            if fmt.sniff(head, name):
                return fmt
        except (ValueError, UnicodeError):
            continue
    # Nothing sniffed: a generic format named after the extension (".csv" -> "csv") reads it and
    # reports what is wrong with it, rather than the file being skipped as unknown.
    generic = FORMATS.get(path.suffix.lower().lstrip("."))
    if generic is not None and generic in by_ext and generic.read is not None:
        return generic
    return None


def _read_file(path: Path, issues: IssueLog, fmt: Format | None) -> Iterator[Indicator]:
    if fmt is None:
        fmt = detect(path)
    if fmt is None:
        issues.add(str(path), 0, "unknown indicator file format; skipped")
        return
    if fmt.read is None:
        raise InputError(f"{fmt.name} is an output format only; it cannot be read", str(path))
    yield from fmt.read(path, issues)


def writers() -> list[str]:
    return sorted(name for name, fmt in FORMATS.items() if fmt.write is not None)


def write_path(indicators: Iterable[Indicator], path: Path, fmt: str) -> int:
    """Write `indicators` to `path` in format `fmt`; InputError names the known writers."""
    chosen = FORMATS.get(fmt)
    if chosen is None or chosen.write is None:
        raise InputError(f"no writer for format {fmt!r}; writers: {', '.join(writers())}")
    return chosen.write(indicators, path)


def read_path(path: Path, issues: IssueLog, fmt: str | None = None) -> Iterator[Indicator]:
    """Indicators from a file, or from every file of a folder (recursively) whose format is
    detected; unknown files are an IssueLog entry. A missing path raises InputError."""
    path = Path(path)
    chosen: Format | None = None
    if fmt is not None:
        chosen = FORMATS.get(fmt)
        if chosen is None:
            known = ", ".join(sorted(FORMATS))
            raise InputError(f"unknown indicator format {fmt!r}; known: {known}")
    if not path.exists():
        raise InputError("no such file or folder", path=str(path))
    if path.is_dir():
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            if _not_indicators(child, path):
                continue
            if chosen is None and detect(child) is None:
                issues.add(str(child), 0, "unknown indicator file format; skipped")
                continue
            yield from _read_file(child, issues, chosen)
        return
    yield from _read_file(path, issues, chosen)


# In a signature folder these are read by others (YARA rules) or are for people (docs).
_SKIP_SUFFIXES = (".yar", ".yara", ".rule", ".rules", ".yarx", ".md", ".rst", ".html", ".pdf")
_SKIP_NAMES = ("readme", "license", "licence", "copying", "changelog", "authors", "notice")


def _not_indicators(child: Path, top: Path) -> bool:
    rel = child.relative_to(top).parts
    if any(part.startswith(".") for part in rel):
        return True  # .git, .cache, editor files
    name = child.name.lower()
    return name.endswith(_SKIP_SUFFIXES) or name.split(".", 1)[0] in _SKIP_NAMES


def open_text(path: Path) -> Iterator[tuple[int, str]]:
    """Numbered lines of a text file, decoded leniently (feeds mix encodings), no newline."""
    try:
        fh = path.open("r", encoding="utf-8", errors="replace", newline=None)
    except FileNotFoundError as exc:
        raise InputError("no such file", path=str(path)) from exc
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=str(path)) from exc
    with fh:
        for lineno, line in enumerate(fh, start=1):
            text = line.rstrip("\r\n")
            yield lineno, text.lstrip("\ufeff") if lineno == 1 else text


# Imported last so that each module can register itself with the functions above.
from quet.indicators.formats import (  # noqa: E402, F401
    abusech,
    clamav,
    csvfile,
    hostsfile,
    loki,
    maltrail,
    misp,
    rpz,
    stix,
    suricata,
    zeek_intel,
)

__all__ = [
    "FORMATS",
    "HEAD_BYTES",
    "Format",
    "clamav",
    "csvfile",
    "detect",
    "loki",
    "open_text",
    "read_path",
    "register",
]
