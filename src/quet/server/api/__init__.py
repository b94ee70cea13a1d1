"""The JSON API, versioned under /api/v1: one router module per resource, found automatically."""

from __future__ import annotations

import importlib
import pkgutil

from fastapi import APIRouter


def router() -> APIRouter:
    api = APIRouter(prefix="/api/v1")
    for mod in sorted(m.name for m in pkgutil.iter_modules(__path__)):
        module = importlib.import_module(f"{__name__}.{mod}")
        sub = getattr(module, "router", None)
        if isinstance(sub, APIRouter):
            api.include_router(sub)
    return api
