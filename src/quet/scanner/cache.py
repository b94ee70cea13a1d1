"""The skip-unchanged cache: a file whose inode, size, times and rule set are unchanged is not read again.

Hashes and YARA results are cached, not verdicts: hash lists and filename IOCs are re-applied on
every scan, so updating hash signatures never forces a re-read, only a YARA rule change does.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict
from pathlib import Path

from quet.scanner.result import ObjectScan
from quet.scanner.walk import FileEntry

PRELOAD_ROWS = 1_000_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    dev INTEGER NOT NULL,
    ino INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    rules_id TEXT NOT NULL,
    path TEXT NOT NULL,
    objects TEXT NOT NULL,
    PRIMARY KEY (dev, ino)
) WITHOUT ROWID;
"""


class ScanCache:
    def __init__(self, path: Path, rules_id: str, hash_fields: tuple[str, ...] = ()) -> None:
        self.path = path
        self.rules_id = rules_id
        self.hash_fields = hash_fields  # e.g. ("md5", "sha256"): what every cached object must hold
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        self._pending: list[tuple[object, ...]] = []
        self._rows: dict[tuple[int, int], tuple[object, ...]] | None = None
        self._complete = False

    def get_many(self, entries: list[FileEntry]) -> list[list[ObjectScan] | None]:
        """Cached observations for each entry, or None where the file changed or is unknown.

        The first call reads the whole table in one pass when it is small enough to hold
        (a million rows is ~200 MB); larger caches are queried in batches.
        """
        if self._rows is None:
            count = self.db.execute("SELECT count(*) FROM files").fetchone()[0]
            self._rows = {}
            self._complete = count <= PRELOAD_ROWS
            if self._complete:
                self._rows = {
                    (row[0], row[1]): row[2:]
                    for row in self.db.execute(
                        "SELECT dev, ino, size, mtime_ns, ctime_ns, rules_id, path, objects"
                        " FROM files"
                    )
                }
        rows = self._rows
        if not self._complete:
            rows = {}
            for start in range(0, len(entries), 400):
                chunk = entries[start : start + 400]
                marks = ",".join("(?,?)" for _ in chunk)
                args = [v for e in chunk for v in (e.dev, e.ino)]
                for row in self.db.execute(
                    "SELECT dev, ino, size, mtime_ns, ctime_ns, rules_id, path, objects FROM files"
                    f" WHERE (dev, ino) IN (VALUES {marks})",
                    args,
                ):
                    rows[(row[0], row[1])] = row[2:]
        return [self._decode(entry, rows.get((entry.dev, entry.ino))) for entry in entries]

    def get(self, entry: FileEntry) -> list[ObjectScan] | None:
        return self.get_many([entry])[0]

    def _decode(self, entry: FileEntry, row: tuple[object, ...] | None) -> list[ObjectScan] | None:
        if row is None:
            return None
        size, mtime_ns, ctime_ns, rules_id, path, objects = row
        if (size, mtime_ns, ctime_ns, rules_id) != (
            entry.size,
            entry.mtime_ns,
            entry.ctime_ns,
            self.rules_id,
        ):
            return None
        text = str(objects)
        if text.startswith("H:"):
            # The common case, a plain file with no YARA hit: its three digests, no JSON.
            md5, sha1, sha256 = text[2:].split(":")
            records = [ObjectScan(entry.path, entry.size, md5, sha1, sha256)]
            path = entry.path
        else:
            try:
                records = [ObjectScan(**o) for o in json.loads(text)]
            except (ValueError, TypeError):
                return None
        if any(rec.sha256 and not getattr(rec, k) for rec in records for k in self.hash_fields):
            return None  # cached before a hash list needed this hash type
        old = str(path)
        if old != entry.path:
            # A hard link or a renamed directory: the contents are the same, the names are not.
            for rec in records:
                rec.path = entry.path + rec.path[len(old) :]
        return records

    def put(self, entry: FileEntry, objects: list[ObjectScan]) -> None:
        if any(o.error for o in objects):
            return  # never remember a failed read as clean
        top = objects[0]
        if len(objects) == 1 and not (top.yara or top.problem):
            blob = f"H:{top.md5}:{top.sha1}:{top.sha256}"
        else:
            blob = json.dumps([_compact(o) for o in objects], separators=(",", ":"))
        self._pending.append(
            (entry.dev, entry.ino, entry.size, entry.mtime_ns, entry.ctime_ns,
             self.rules_id, entry.path, blob)
        )  # fmt: skip
        if len(self._pending) >= 2000:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?)", self._pending
            )
        self._pending.clear()

    def close(self) -> None:
        self.flush()
        self.db.close()


def _compact(obj: ObjectScan) -> dict[str, object]:
    return {k: v for k, v in asdict(obj).items() if v not in ("", 0, [], {}) or k == "path"}
