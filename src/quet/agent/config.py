"""The agent's configuration ($QUET_HOME/agent/config.json, mode 0600: it holds the device
credential) and its small state file (last scan, last upload)."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from quet import paths
from quet.errors import InputError


@dataclass
class AgentConfig:
    server_url: str
    device_id: int
    credential: str
    org: str = ""
    kind: str = "workstation"
    paths: list[str] = field(default_factory=list)
    enrolled_at: str = ""

    def public(self) -> dict[str, Any]:
        """Everything but the credential, for `quet agent status`."""
        data = asdict(self)
        data["credential"] = self.credential[:6] + "…" if self.credential else ""
        return data


def agent_dir() -> Path:
    return paths.sub("agent")


def config_path() -> Path:
    return agent_dir() / "config.json"


def state_path() -> Path:
    return agent_dir() / "state.json"


def write_private(path: Path, data: dict[str, Any]) -> None:
    """Write JSON atomically, readable by the owner only (created 0600, never wider)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, ensure_ascii=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_config(cfg: AgentConfig) -> Path:
    path = config_path()
    write_private(path, asdict(cfg))
    return path


def load_config() -> AgentConfig:
    path = config_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return AgentConfig(
            server_url=str(data["server_url"]),
            device_id=int(data["device_id"]),
            credential=str(data["credential"]),
            org=str(data.get("org", "")),
            kind=str(data.get("kind", "workstation")),
            paths=[str(p) for p in data.get("paths", [])],
            enrolled_at=str(data.get("enrolled_at", "")),
        )
    except FileNotFoundError as exc:
        raise InputError(
            f"{path}: this machine is not enrolled yet — run `quet agent enroll URL TOKEN`"
        ) from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: unreadable agent configuration ({exc}); enroll again") from exc


def read_state() -> dict[str, Any]:
    try:
        data = json.loads(state_path().read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def update_state(**values: Any) -> dict[str, Any]:
    state = read_state()
    state.update(values)
    write_private(state_path(), state)
    return state
