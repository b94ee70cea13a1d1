"""Talking to the campaign server: enroll, heartbeat, and uploading the spool (oldest first,
delete on 2xx, set aside on a refusal, keep and back off on anything transient)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from quet import __version__
from quet.agent.spool import Spool
from quet.errors import QuetError

RETRY_STATUSES = {408, 429}
# Not the report's fault: the credential or the server's configuration; keep the reports.
KEEP_STATUSES = {401, 403, 404}


class AgentError(QuetError):
    """The server refused or could not be reached."""


@dataclass
class UploadSummary:
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    kept: int = 0
    error: str = ""
    rejected_paths: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.error


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail", "")
    except (ValueError, AttributeError):
        detail = response.text[:300]
    return f"HTTP {response.status_code}: {detail}"


class AgentClient:
    def __init__(
        self,
        server_url: str,
        credential: str = "",
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base = server_url.rstrip("/")
        headers = {"User-Agent": f"quet-agent/{__version__}"}
        if credential:
            headers["Authorization"] = f"Device {credential}"
        self.http = httpx.Client(
            base_url=self.base, headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> AgentClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self.http.post(path, json=body)
        except httpx.HTTPError as exc:
            raise AgentError(f"{self.base}{path}: cannot reach the server ({exc})") from exc
        if response.status_code >= 300:
            raise AgentError(f"{self.base}{path}: {_detail(response)}")
        data: dict[str, Any] = response.json()
        return data

    def enroll(self, token: str, info: dict[str, Any]) -> dict[str, Any]:
        """Exchange an enrollment token: {device_id, credential, org}."""
        return self._post("/api/v1/enroll", {"token": token, **info})

    def heartbeat(self, info: dict[str, Any]) -> dict[str, Any]:
        return self._post("/api/v1/devices/me/heartbeat", info)

    def upload_one(self, data: bytes) -> tuple[str, str]:
        """("stored" | "duplicate" | "rejected" | "retry" | "keep", detail) for one report."""
        try:
            response = self.http.post(
                "/api/v1/scans", content=data, headers={"Content-Type": "application/json"}
            )
        except httpx.HTTPError as exc:
            return "retry", f"cannot reach the server ({exc.__class__.__name__}: {exc})"
        code = response.status_code
        if 200 <= code < 300:
            return ("duplicate" if code == 200 else "stored"), ""
        if code in RETRY_STATUSES or code >= 500:
            return "retry", _detail(response)
        if code in KEEP_STATUSES:
            return "keep", _detail(response)
        return "rejected", _detail(response)

    def upload_spool(self, spool: Spool) -> UploadSummary:
        """Send every pending report, oldest first; stop at the first transient failure so the
        order is kept and a down server is not hammered."""
        summary = UploadSummary()
        pending = spool.pending()
        for index, path in enumerate(pending):
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue
            outcome, detail = self.upload_one(data)
            if outcome in ("stored", "duplicate"):
                spool.done(path)
                summary.stored += outcome == "stored"
                summary.duplicates += outcome == "duplicate"
            elif outcome == "rejected":
                summary.rejected_paths.append(spool.reject(path, detail))
                summary.rejected += 1
            else:
                summary.kept = len(pending) - index
                summary.error = detail
                break
        return summary
