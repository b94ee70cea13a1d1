"""The spool: every report is written to disk (tmp + fsync + rename) before any upload, sent
oldest first, deleted only once the server answered 2xx; refused ones go to spool/rejected/."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from quet.agent.config import agent_dir

_TMP = ".tmp-"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    def __init__(self, root: Path | None = None) -> None:
        self.root = root or agent_dir() / "spool"
        self.rejected_dir = self.root / "rejected"
        self.rejected_dir.mkdir(parents=True, exist_ok=True)
        # A write cut short by a crash left only a temporary file: it was never acknowledged
        # to anyone, and the scan that made it is repeated at the next interval.
        for leftover in self.root.glob(f"{_TMP}*"):
            leftover.unlink(missing_ok=True)

    def put(self, report: dict[str, Any]) -> Path:
        """Store one report durably as <id>.json; returns its path."""
        name = f"{report['id']}.json"
        if "/" in name or name.startswith("."):
            raise ValueError(f"bad report id {report['id']!r}")
        data = json.dumps(report, ensure_ascii=False).encode("utf-8")
        return self._write(self.root / name, data)

    def _write(self, path: Path, data: bytes) -> Path:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_TMP)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        _fsync_dir(path.parent)
        return path

    def pending(self) -> list[Path]:
        """Reports waiting for the server, oldest first."""
        found = []
        for path in self.root.glob("*.json"):
            try:
                found.append((path.stat().st_mtime_ns, path.name, path))
            except FileNotFoundError:
                continue
        return [p for _, _, p in sorted(found)]

    def done(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        _fsync_dir(self.root)

    def reject(self, path: Path, reason: str) -> Path:
        """Move a report the server refused aside, with the reason beside it."""
        target = self.rejected_dir / path.name
        self._write(target.with_suffix(".reason.txt"), reason.encode("utf-8"))
        os.replace(path, target)
        _fsync_dir(self.rejected_dir)
        _fsync_dir(self.root)
        return target

    def rejected(self) -> list[Path]:
        return sorted(p for p in self.rejected_dir.glob("*.json"))

    def counts(self) -> dict[str, int]:
        return {"pending": len(self.pending()), "rejected": len(self.rejected())}
