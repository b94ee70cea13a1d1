"""Sharing between servers: children POST signed reports to /sharing/reports; they GET the
signed national feed from /sharing/feed; administrators register children's keys."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query, Request, status
from pydantic import BaseModel

from quet.errors import InputError
from quet.server import keys
from quet.server.deps import CurrentUser, MaybeUser, SessionDep, require_change
from quet.server.keys import EnvelopeError, ServerKey
from quet.server.services import orgs, sharing

router = APIRouter(prefix="/sharing", tags=["sharing"])


def server_key(request: Request) -> ServerKey:
    """This server's signing key: set on app.state (tests run two servers in one process) or the
    one under QUET_HOME/server-keys/, created on first use."""
    key: ServerKey | None = getattr(request.app.state, "server_key", None)
    if key is None:
        key = keys.load_or_create()
        request.app.state.server_key = key
    return key


class PublicKey(BaseModel):
    public_key: str
    key_id: str


class PeerCreate(BaseModel):
    org: str
    public_key: str
    name: str = ""


class PeerPublic(BaseModel):
    org: str
    name: str
    key_id: str
    public_key: str
    created_at: datetime
    last_received: datetime | None


def _refused(exc: EnvelopeError) -> HTTPException:
    return HTTPException(exc.status, str(exc))


@router.get("/key", response_model=PublicKey)
def public_key(request: Request) -> PublicKey:
    """This server's public key, to register on its parent (or configure on its children)."""
    key = server_key(request)
    return PublicKey(public_key=key.public_text, key_id=key.key_id)


@router.post("/reports")
def receive_report(envelope: dict[str, Any], session: SessionDep) -> dict[str, Any]:
    """A child server's signed report; the signature is the authentication."""
    try:
        return sharing.receive(session, envelope).to_dict()
    except EnvelopeError as exc:
        session.rollback()
        raise _refused(exc) from exc


@router.get("/feed")
def national_feed(
    request: Request,
    session: SessionDep,
    principal: MaybeUser,
    since: Annotated[datetime | None, Query()] = None,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=sharing.FEED_PAGE)] = sharing.FEED_PAGE,
    x_quet_envelope: Annotated[str, Header()] = "",
) -> dict[str, Any]:
    """The signed indicator feed for children: asked for by a registered child (a signed request
    in X-Quet-Envelope) or by a signed-in person."""
    if principal is None:
        if not x_quet_envelope:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                f"send a signed request in {sharing.FEED_HEADER} (quet share pull) or sign in",
            )
        try:
            sharing.check_feed_request(session, x_quet_envelope)
        except EnvelopeError as exc:
            raise _refused(exc) from exc
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return sharing.feed(session, server_key(request), since=since, after=after, limit=limit)


@router.get("/peers", response_model=list[PeerPublic])
def list_peers(session: SessionDep, principal: CurrentUser) -> list[PeerPublic]:
    return [
        PeerPublic(
            org=o.code,
            name=p.name,
            key_id=p.key_id,
            public_key=p.public_key,
            created_at=p.created_at,
            last_received=p.last_received,
        )
        for p, o in sharing.peers(session)
        if principal.can_see(o)
    ]


@router.post("/peers", response_model=PeerPublic)
def register_peer(body: PeerCreate, session: SessionDep, principal: CurrentUser) -> PeerPublic:
    org = orgs.by_code(session, body.org)
    if org is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no organisation {body.org!r}")
    require_change(principal, org)
    try:
        peer = sharing.register_peer(session, org, body.public_key, body.name, principal.actor)
    except InputError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from exc
    session.commit()
    return PeerPublic(
        org=org.code,
        name=peer.name,
        key_id=peer.key_id,
        public_key=peer.public_key,
        created_at=peer.created_at,
        last_received=peer.last_received,
    )


@router.get("/summaries")
def summaries(session: SessionDep, principal: CurrentUser) -> list[dict[str, Any]]:
    """The newest figures each child server reported, within the caller's scope."""
    return sharing.latest_summaries(session, principal.org)
