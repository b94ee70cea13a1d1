"""A TAXII 2.1 client reader: discovery -> API roots -> collections -> objects (paginated),
the objects read into Indicators by the STIX reader."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import requests
from taxii2client.exceptions import TAXIIServiceException
from taxii2client.v21 import ApiRoot, Collection, Server, as_pages

from quet.errors import InputError
from quet.indicators.formats.stix import indicators_from_objects
from quet.indicators.model import Indicator, IssueLog

PER_REQUEST = 500
_ERRORS = (TAXIIServiceException, requests.RequestException, ValueError)


def _refused(exc: Exception, url: str) -> None:
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if status in (401, 403):
        raise InputError(
            f"the TAXII server refused access (HTTP {status}); check user and password", path=url
        ) from exc


def _roots(url: str, user: str | None, password: str | None) -> list[Any]:
    """API roots at `url`: a server's discovery URL, or an API root URL itself."""
    try:
        server = Server(url, user=user, password=password)
        roots = list(server.api_roots)
        if roots:
            return roots
    except _ERRORS as exc:
        _refused(exc, url)  # otherwise not a discovery endpoint; maybe an API root
    try:
        root = ApiRoot(url, user=user, password=password)
        root.refresh_information()
    except _ERRORS as exc:
        raise InputError(f"no TAXII 2.1 server or API root here: {exc}", path=url) from exc
    return [root]


def collections(
    url: str, user: str | None = None, password: str | None = None
) -> list[tuple[str, str]]:
    """(id, title) of every readable collection of a TAXII 2.1 server or API root."""
    out = []
    for root in _roots(url, user, password):
        try:
            out += [(c.id, c.title) for c in root.collections if c.can_read]
        except _ERRORS as exc:
            raise InputError(f"cannot list collections: {exc}", path=root.url) from exc
    return out


def _chosen(
    url: str, collection_id: str | None, user: str | None, password: str | None
) -> list[Any]:
    if "/collections/" in url:
        return [Collection(url, user=user, password=password)]
    found = []
    for root in _roots(url, user, password):
        try:
            cols = list(root.collections)
        except _ERRORS as exc:
            raise InputError(f"cannot list collections: {exc}", path=root.url) from exc
        if collection_id is None:
            found += [col for col in cols if col.can_read]
        else:
            found += [col for col in cols if collection_id in (col.id, col.title)]
    if collection_id is not None and not found:
        raise InputError(f"no collection {collection_id!r} on this TAXII server", path=url)
    return found


def fetch_objects(
    collection: Any, added_after: datetime | str | None = None, per_request: int = PER_REQUEST
) -> Iterator[dict[str, Any]]:
    """Every object of a collection, page by page (TAXII 2.1 `next`/`more` pagination)."""
    filters: dict[str, Any] = {}
    if added_after is not None:
        filters["added_after"] = added_after
    try:
        for envelope in as_pages(collection.get_objects, per_request=per_request, **filters):
            for obj in envelope.get("objects") or ():
                if isinstance(obj, dict):
                    yield obj
    except _ERRORS as exc:
        _refused(exc, collection.url)
        raise InputError(f"cannot read TAXII objects: {exc}", path=collection.url) from exc


def read_collection(
    url: str,
    collection_id: str | None = None,
    user: str | None = None,
    password: str | None = None,
    added_after: datetime | str | None = None,
    issues: IssueLog | None = None,
    *,
    per_request: int = PER_REQUEST,
) -> Iterator[Indicator]:
    """Indicators of one collection (by id or title), or of every readable collection when
    `collection_id` is None. `url` is a discovery URL, an API root or a collection URL.
    A collection's objects are all fetched before reading, since an indicator's family comes
    from relationships that may arrive on a later page. Unreachable servers, bad credentials
    and unknown collections raise InputError; bad objects go to `issues`."""
    log = issues if issues is not None else IssueLog()
    for col in _chosen(url, collection_id, user, password):
        objects = list(fetch_objects(col, added_after, per_request))
        yield from indicators_from_objects(objects, f"taxii:{col.url}", log)
