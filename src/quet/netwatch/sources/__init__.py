"""The registry of log sources: one module per format, each a name, a sniff and a reader."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from quet.indicators.model import IssueLog
from quet.netwatch.records import NetEvent


@dataclass(frozen=True)
class Source:
    name: str  # "zeek-dns", "suricata-eve", "bind", ...
    description: str
    # (first lines of the file decoded as text (up to ~30, gzip already undone), file name)
    sniff: Callable[[list[str], str], bool]
    read: Callable[[Path, IssueLog], Iterator[NetEvent]]  # gzip-transparent; bad lines -> IssueLog


SOURCES: dict[str, Source] = {}


def register(src: Source) -> Source:
    if src.name in SOURCES:
        raise ValueError(f"log source {src.name!r} is already registered")
    SOURCES[src.name] = src
    return src
