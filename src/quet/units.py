"""Sizes as people write and read them: '100M' in, '1.5 MiB' out."""

from __future__ import annotations

import re

from quet.errors import InputError

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_MULT = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def parse_size(text: str) -> int:
    """'100M', '2G', '512k', '1000' -> bytes (binary multiples)."""
    m = _SIZE.match(text)
    if not m:
        raise InputError(f"not a size: {text!r} (examples: 100M, 2G, 512K)")
    return int(float(m.group(1)) * _MULT[m.group(2).lower()])


def human_size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover - the loop returns at GiB
