"""Listings in pages: the total a query would return and one page of it, the same way everywhere
(API answers and web pages)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

# Any select, whatever its columns (a variadic generic since SQLAlchemy 2.1).
AnySelect = sa.Select[*tuple[Any, ...]]
S = TypeVar("S", bound=AnySelect)


@dataclass
class Page:
    total: int
    rows: list[Any]
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def count(session: Session, query: AnySelect) -> int:
    """How many rows `query` returns, whatever it selects and joins."""
    return session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0


def window(query: S, page: int, per_page: int) -> S:
    """Page `page` (from 1) of an ordered query."""
    return query.limit(per_page).offset((page - 1) * per_page)
