"""Scan reports: agents POST them (group-committed, idempotent by the report's UUID), people
upload `quet scan --json` files for machines without an agent, and mark findings handled."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, File, Form, HTTPException, Path, Request, UploadFile, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from quet.errors import InputError
from quet.server import security
from quet.server.db import Database
from quet.server.deps import CurrentUser, SessionDep
from quet.server.services import ingest, orgs
from quet.store.models import Device

router = APIRouter(tags=["scans"])
MAX_BODY = 20 * 2**20
CREDENTIAL_CACHE_SECONDS = 60.0


class IngestOut(BaseModel):
    id: str
    duplicate: bool


class FindingUpdate(BaseModel):
    status: ingest.FindingStatus


class FindingPublic(BaseModel):
    id: int
    scan_id: str
    device_id: int
    kind: str
    name: str
    path: str
    status: str


def _inline(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema with its $defs inlined, for a hand-read request body."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(defs[ref.rsplit("/", 1)[1]])
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    result: dict[str, Any] = walk(schema)
    return result


_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": IngestOut, "description": "already stored (a repeated upload)"},
    201: {"model": IngestOut, "description": "stored"},
    401: {"description": "no or unknown device credential"},
    413: {"description": "report larger than 20 MB"},
    422: {"description": "not a scan report (the message says which field)"},
}


async def _body(request: Request, limit: int = MAX_BODY) -> bytes:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"report over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"report over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _lookup(db: Database, digest: str) -> tuple[int, int] | None:
    with db.sessions() as session:
        row = session.execute(
            sa.select(Device.id, Device.org_id).where(Device.credential_hash == digest)
        ).first()
    return (row[0], row[1]) if row is not None else None


def _cached(state: Any, auth: str) -> tuple[str, tuple[int, int] | None]:
    """(credential digest, (device id, org id) if remembered): no await on the hot path."""
    if not auth.lower().startswith("device "):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "send Authorization: Device <credential>")
    digest = security.token_hash(auth[7:].strip())
    cache: dict[str, tuple[int, int, float]] | None = getattr(state, "device_cache", None)
    hit = cache.get(digest) if cache is not None else None
    if hit is not None and hit[2] > time.monotonic():
        return digest, (hit[0], hit[1])
    return digest, None


async def _look_up(state: Any, digest: str) -> tuple[int, int]:
    """(device id, org id) from the database, remembered for a minute: the batch's UPDATE
    records last_seen, so the hot path needs no query of its own."""
    cache: dict[str, tuple[int, int, float]] | None = getattr(state, "device_cache", None)
    if cache is None:
        cache = state.device_cache = {}
    now = time.monotonic()
    found = await asyncio.to_thread(_lookup, state.db, digest)
    if found is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown device credential")
    if len(cache) > 100_000:
        cache.clear()
    cache[digest] = (*found, now + CREDENTIAL_CACHE_SECONDS)
    return found


def _batcher(state: Any) -> ingest.Batcher:
    batcher: ingest.Batcher | None = getattr(state, "ingest_batcher", None)
    # A TestClient (or a restarted server) runs a new event loop: the old batcher is dead.
    if batcher is None or batcher.loop is not asyncio.get_running_loop():
        if batcher is not None:
            batcher.release()  # its kept connection would otherwise hold a pool slot for good
        batcher = state.ingest_batcher = ingest.Batcher(state.db)
    return batcher


async def _ingest(app: Any, authorization: str, raw: bytes) -> tuple[int, dict[str, Any]]:
    """The whole of POST /api/v1/scans once the body is read: (status code, JSON answer)."""
    try:
        digest, found = _cached(app.state, authorization)
        device_id, org_id = found if found is not None else await _look_up(app.state, digest)
        report = ingest.parse(raw)
    except HTTPException as exc:
        return exc.status_code, {"detail": exc.detail}
    except InputError as exc:
        return status.HTTP_422_UNPROCESSABLE_CONTENT, {"detail": str(exc)}
    item = ingest.prepare(report, device_id, org_id, has_nul=b"\\u0000" in raw)
    duplicate = await _batcher(app.state).submit(item)
    code = status.HTTP_200_OK if duplicate else status.HTTP_201_CREATED
    return code, {"id": item.id, "duplicate": duplicate}


class FastIngest:
    """ASGI middleware answering POST /api/v1/scans before FastAPI's router: matching a request
    against every API and page route costs more than the ingest itself at thousands of reports
    a second. Same behaviour as the route below (which stays for the OpenAPI document).
    Wire it with `app.add_middleware(FastIngest)`."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/api/v1/scans" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        auth = ""
        length = ""
        for key, value in scope["headers"]:
            if key == b"authorization":
                auth = value.decode("latin-1")
            elif key == b"content-length":
                length = value.decode("latin-1")
        code, answer = await self._answer(scope, receive, auth, length)
        body = json.dumps(answer).encode()
        headers = [(b"content-type", b"application/json"),
                   (b"content-length", str(len(body)).encode())]  # fmt: skip
        await send({"type": "http.response.start", "status": code, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _answer(
        self, scope: Any, receive: Any, auth: str, length: str
    ) -> tuple[int, dict[str, Any]]:
        too_big = (status.HTTP_413_CONTENT_TOO_LARGE, {"detail": f"report over {MAX_BODY} bytes"})
        if length.isdigit() and int(length) > MAX_BODY:
            return too_big
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return 400, {"detail": "the client went away"}
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY:
                return too_big
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return await _ingest(scope["app"], auth, b"".join(chunks))


@router.post(
    "/scans",
    status_code=status.HTTP_201_CREATED,
    response_model=IngestOut,
    responses=_RESPONSES,
    summary="Upload a scan report (agents: Authorization: Device <credential>)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _inline(ingest.ReportIn)}},
        }
    },
)
async def post_scan(request: Request) -> JSONResponse:
    # Without FastIngest wired in, the same work through the router.
    raw = await _body(request)
    auth = request.headers.get("authorization", "")
    code, answer = await _ingest(request.app, auth, raw)
    return JSONResponse(answer, status_code=code)


@router.post(
    "/scans/upload",
    status_code=status.HTTP_201_CREATED,
    response_model=IngestOut,
    responses={k: v for k, v in _RESPONSES.items() if k != 401},
    summary="Upload a `quet scan --json` file for a machine without an agent (a person)",
)
async def upload_scan(
    principal: CurrentUser,
    session: SessionDep,
    file: Annotated[UploadFile, File(description="the JSON report of `quet scan --json`")],
    org: Annotated[str, Form(min_length=1, max_length=64, description="organisation code")],
) -> JSONResponse:
    target = orgs.by_code(session, org)
    if target is None or not principal.can_see(target):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no organisation {org!r}")
    raw = await file.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"report over {MAX_BODY} bytes")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"{file.filename}: not JSON ({exc})"
        ) from exc
    if not isinstance(data, dict):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "not a Quét scan report")
    try:
        scan_id, duplicate = await asyncio.to_thread(_upload, session, principal, target, data)
    except ingest.Forbidden as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
    except InputError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    code = status.HTTP_200_OK if duplicate else status.HTTP_201_CREATED
    return JSONResponse({"id": scan_id, "duplicate": duplicate}, status_code=code)


def _upload(session: Any, principal: Any, org: Any, data: dict[str, Any]) -> tuple[str, bool]:
    try:
        result = ingest.upload(session, principal, org, data)
    except Exception:
        session.rollback()
        raise
    session.commit()
    return result


@router.patch(
    "/findings/{finding_id}",
    response_model=FindingPublic,
    tags=["findings"],
    summary="Mark a finding remediated, a false positive, or open again",
)
def patch_finding(
    finding_id: Annotated[int, Path(ge=1, le=2**62)],
    body: FindingUpdate,
    principal: CurrentUser,
    session: SessionDep,
) -> FindingPublic:
    try:
        row = ingest.set_finding_status(session, principal, finding_id, body.status)
    except ingest.NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except ingest.Forbidden as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
    session.commit()
    return FindingPublic(
        id=row.id, scan_id=row.scan_id, device_id=row.device_id, kind=row.kind,
        name=row.name, path=row.path, status=row.status,
    )  # fmt: skip
