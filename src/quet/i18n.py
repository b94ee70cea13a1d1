"""User-facing text: Vietnamese first, English when QUET_LANG=en (or LANG starts with en)."""

from __future__ import annotations

import os

_EN: dict[str, str] = {}
_VI: dict[str, str] = {}


def lang() -> str:
    chosen = os.environ.get("QUET_LANG", "").lower()
    if chosen in ("vi", "en"):
        return chosen
    return "vi"


def register(key: str, vi: str, en: str) -> None:
    _VI[key] = vi
    _EN[key] = en


def t(key: str, **kwargs: object) -> str:
    """Translate `key` into the user's language; unknown keys come back as they are."""
    table = _EN if lang() == "en" else _VI
    text = table.get(key) or _VI.get(key) or key
    return text.format(**kwargs) if kwargs else text


def both(key: str, **kwargs: object) -> tuple[str, str]:
    return _VI[key].format(**kwargs), _EN[key].format(**kwargs)
