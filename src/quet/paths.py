"""Where Quét keeps its state: $QUET_HOME when set, else the user's data directory."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def home() -> Path:
    """The root of all state (intel store, scan cache, quarantine vault, server database, spool)."""
    env = os.environ.get("QUET_HOME")
    root = Path(env).expanduser() if env else Path(platformdirs.user_data_dir("quet", "quet"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def sub(name: str) -> Path:
    path = home() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def signatures_dir() -> Path:
    """Installed signatures (filled by `quet update`, or by hand)."""
    return sub("signatures")


def cache_dir() -> Path:
    return sub("cache")


def vault_dir() -> Path:
    return sub("quarantine")
