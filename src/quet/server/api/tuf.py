"""Content updates for agents: the TUF repository folder of Settings.tuf_repo, served read-only at
/api/v1/tuf/ (metadata/ and targets/). Agents verify everything themselves, so plain files do."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException
from fastapi import Path as PathParam
from fastapi.responses import FileResponse

from quet.server.deps import SettingsDep

router = APIRouter(tags=["updates"])


@router.get("/tuf/{file_path:path}", summary="A file of the TUF content repository")
def tuf_file(
    file_path: Annotated[str, PathParam(max_length=500)], settings: SettingsDep
) -> FileResponse:
    if not settings.tuf_repo:
        raise HTTPException(404, "this server serves no content updates (QUET_TUF_REPO unset)")
    root = Path(settings.tuf_repo).resolve()
    if "\x00" in file_path:
        raise HTTPException(404, "no such file")
    target = (root / file_path).resolve()
    # Only metadata/ and targets/ below the repository, never a path that climbs out.
    if not target.is_relative_to(root) or target.parts[
        len(root.parts) : len(root.parts) + 1
    ] not in (
        ("metadata",),
        ("targets",),
    ):
        raise HTTPException(404, "no such file")
    if not target.is_file():
        raise HTTPException(404, "no such file")
    media = "application/json" if target.suffix == ".json" else "application/octet-stream"
    return FileResponse(target, media_type=media, headers={"Cache-Control": "no-cache"})
