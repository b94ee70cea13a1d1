"""The error hierarchy: every error a user can meet says what went wrong, where, and what to do."""

from __future__ import annotations


class QuetError(Exception):
    """Base class of errors shown to users as one line (the CLI exits with code 2)."""


class InputError(QuetError):
    """Bad input a user gave us: a file, a line, an argument."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None) -> None:
        self.path = path
        self.line = line
        where = path or ""
        if path and line:
            where = f"{path}:{line}"
        super().__init__(f"{where}: {message}" if where else message)


class SignatureError(QuetError):
    """Signatures (rules, hash lists, IOCs) could not be loaded at all."""


class QuarantineError(QuetError):
    """A quarantine operation was refused or failed; the user's file is left where it was."""
