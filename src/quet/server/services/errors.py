"""The errors services raise about access, shared so the API and the pages map them one way."""

from __future__ import annotations

from quet.errors import QuetError


class NotFound(QuetError):
    """The object does not exist, or the person asking may not see it."""


class Forbidden(QuetError):
    """The person may see the object but not change it."""
