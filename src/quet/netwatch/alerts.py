"""Alerts: hits rolled up per internal host and indicator, their JSONL form, and posting them to
the campaign server idempotently (each alert carries a stable id)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from quet.errors import InputError
from quet.netwatch.matcher import Hit

EXAMPLES = 5
SCHEMA = "quet.net.alert/1"


@dataclass
class Alert:
    """One internal host that touched one listed indicator: how often, when, where it was seen."""

    client: str
    indicator_type: str
    indicator: str
    name: str
    family: str
    source_feed: str
    first_seen: datetime | None
    last_seen: datetime | None
    count: int
    fields: list[str]
    examples: list[tuple[str, int, str]]  # (log file, line, matched value), the first few
    device: str = ""  # filled when mapped through the server inventory
    org: str = ""

    @property
    def id(self) -> str:
        """Stable across runs and machines: the same host, indicator and first sighting."""
        first = self.first_seen.isoformat() if self.first_seen else ""
        key = f"{self.client}\x1f{self.indicator_type}:{self.indicator}\x1f{first}"
        return hashlib.sha256(key.encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "id": self.id,
            "client": self.client,
            "indicator_type": self.indicator_type,
            "indicator": self.indicator,
            "name": self.name,
            "family": self.family,
            "source_feed": self.source_feed,
            "first_seen": self.first_seen.isoformat() if self.first_seen else None,
            "last_seen": self.last_seen.isoformat() if self.last_seen else None,
            "count": self.count,
            "fields": list(self.fields),
            "examples": [{"file": f, "line": n, "value": v} for f, n, v in self.examples],
            "device": self.device,
            "org": self.org,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Alert:
        def when(v: object) -> datetime | None:
            return datetime.fromisoformat(v) if isinstance(v, str) and v else None

        try:
            return cls(
                client=str(data["client"]),
                indicator_type=str(data["indicator_type"]),
                indicator=str(data["indicator"]),
                name=str(data.get("name", "")),
                family=str(data.get("family", "")),
                source_feed=str(data.get("source_feed", "")),
                first_seen=when(data.get("first_seen")),
                last_seen=when(data.get("last_seen")),
                count=int(data["count"]),
                fields=[str(f) for f in data.get("fields", [])],
                examples=[
                    (str(e["file"]), int(e["line"]), str(e["value"]))
                    for e in data.get("examples", [])
                ],
                device=str(data.get("device", "")),
                org=str(data.get("org", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"not a Quét network alert: {exc}") from exc


def _key(hit: Hit) -> tuple[str, str, str]:
    return (hit.internal_host, hit.indicator.type.value, hit.indicator.value)


class Aggregator:
    """Rolls hits up as they come; `add` says whether the hit opened a new alert."""

    def __init__(self) -> None:
        self.alerts: dict[tuple[str, str, str], Alert] = {}

    def add(self, hit: Hit) -> tuple[Alert, bool]:
        key = _key(hit)
        ev = hit.event
        alert = self.alerts.get(key)
        new = alert is None
        if alert is None:
            ind = hit.indicator
            alert = self.alerts[key] = Alert(
                client=key[0],
                indicator_type=key[1],
                indicator=key[2],
                name=ind.name,
                family=ind.family,
                source_feed=ind.source,
                first_seen=ev.ts,
                last_seen=ev.ts,
                count=0,
                fields=[],
                examples=[],
            )
        alert.count += 1
        if hit.field not in alert.fields:
            alert.fields.append(hit.field)
        if len(alert.examples) < EXAMPLES:
            alert.examples.append((ev.source, ev.line, hit.value))
        ts = ev.ts
        if ts is not None:
            # Logs are mostly in time order but not always (several files, late lines).
            if alert.first_seen is None or ts < alert.first_seen:
                alert.first_seen = ts
            if alert.last_seen is None or ts > alert.last_seen:
                alert.last_seen = ts
        return alert, new

    def sorted(self) -> list[Alert]:
        return sorted(
            self.alerts.values(), key=lambda a: (-a.count, a.client, a.indicator_type, a.indicator)
        )


def aggregate(hits: Iterable[Hit]) -> list[Alert]:
    """One alert per internal host and indicator, the most frequent first."""
    agg = Aggregator()
    for hit in hits:
        agg.add(hit)
    return agg.sorted()


def write_jsonl(alerts: Iterable[Alert], out: IO[str]) -> int:
    n = 0
    for alert in alerts:
        out.write(json.dumps(alert.to_dict(), ensure_ascii=False, sort_keys=True) + "\n")
        n += 1
    out.flush()
    return n


def read_jsonl(path: Path) -> list[Alert]:
    """Alerts of a JSONL file; a later line with the same id replaces an earlier one."""
    by_id: dict[str, Alert] = {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read: {exc}", path=str(path)) from exc
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            alert = Alert.from_dict(json.loads(line))
        except (json.JSONDecodeError, InputError) as exc:
            raise InputError(f"line {n}: {exc}", path=str(path)) from exc
        by_id[alert.id] = alert
    return list(by_id.values())


@dataclass
class Poster:
    """Posts alerts to the server as JSON; the server upserts by `id`, so posting again (an
    updated count, a retry) never makes a second alert. Failures are kept to retry later."""

    url: str
    token: str = ""
    timeout: float = 10.0
    pending: dict[str, Alert] = field(default_factory=dict)
    last_error: str = ""

    def post(self, alerts: Iterable[Alert]) -> bool:
        import httpx

        for a in alerts:
            self.pending[a.id] = a
        if not self.pending:
            return True
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        body = {"schema": SCHEMA, "alerts": [a.to_dict() for a in self.pending.values()]}
        try:
            resp = httpx.post(self.url, json=body, headers=headers, timeout=self.timeout)
        except httpx.HTTPError as exc:
            self.last_error = str(exc) or type(exc).__name__
            return False
        if resp.status_code >= 300:
            self.last_error = f"HTTP {resp.status_code}"
            return False
        self.pending.clear()
        self.last_error = ""
        return True
