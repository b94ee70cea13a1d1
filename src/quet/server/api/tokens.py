"""/api/v1/tokens: personal API tokens for scripts; the token itself is shown only once."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Path, status

from quet.server import security
from quet.server.deps import CurrentUser, SessionDep
from quet.server.schemas.people import TokenCreate, TokenCreated, TokenPublic
from quet.server.services import audit, users
from quet.store.models import ApiToken, Organisation, User

router = APIRouter(prefix="/tokens", tags=["people"])


def _public(row: ApiToken) -> TokenPublic:
    return TokenPublic(
        id=row.id,
        name=row.name,
        created_at=row.created_at,
        last_used=row.last_used,
        revoked=row.revoked,
    )


@router.get("", response_model=list[TokenPublic])
def list_tokens(session: SessionDep, principal: CurrentUser) -> list[TokenPublic]:
    """Your own tokens (never their values)."""
    rows = session.scalars(
        sa.select(ApiToken).where(ApiToken.user_id == principal.user.id).order_by(ApiToken.id)
    )
    return [_public(r) for r in rows]


@router.post("", response_model=TokenCreated, status_code=status.HTTP_201_CREATED)
def create_token(body: TokenCreate, session: SessionDep, principal: CurrentUser) -> TokenCreated:
    """A new token acting as you, with your role and scope."""
    token = users.create_api_token(session, principal.user, body.name)
    session.flush()
    row = session.scalars(
        sa.select(ApiToken).where(ApiToken.token_hash == security.token_hash(token))
    ).one()
    session.commit()
    return TokenCreated(**_public(row).model_dump(), token=token)


@router.delete("/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_token(
    token_id: Annotated[int, Path(ge=1, le=2**62)], session: SessionDep, principal: CurrentUser
) -> None:
    """Revoke one of your tokens; an administrator may revoke those of people in scope."""
    row = session.get(ApiToken, token_id)
    owner = session.get(User, row.user_id) if row else None
    org = session.get(Organisation, owner.org_id) if owner else None
    mine = owner is not None and owner.id == principal.user.id
    if row is None or org is None or not (mine or principal.can_see(org)):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"token {token_id} not found")
    if not mine and not (principal.is_admin and principal.can_change(org)):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only its owner or an administrator")
    if not row.revoked:
        row.revoked = True
        audit.record(session, principal.actor, "token.revoke", f"token:{row.name}", org.id)
    session.commit()
