"""One exception hierarchy: every user-facing failure is an MdcsqlError with a clear message.

The CLI turns these into a one-line message and a non-zero exit code; the API into a JSON body.
Anything else escaping is a bug (exit code 2).
"""

from __future__ import annotations


class MdcsqlError(Exception):
    """Base of all expected, user-explainable failures."""

    exit_code = 1


class ConfigError(MdcsqlError):
    """A setting is unknown, malformed or out of range."""


class InputError(MdcsqlError):
    """Bad input data: names the file, line and field where known."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 field: str | None = None, reason: str | None = None) -> None:
        self.file, self.line, self.field = file, line, field
        self.reason = reason or message
        where = ":".join(str(p) for p in (file, line) if p is not None)
        prefix = f"{where}: " if where else ""
        suffix = f" (field '{field}')" if field else ""
        super().__init__(f"{prefix}{message}{suffix}")


class ArchiveLockedError(MdcsqlError):
    """Another process is writing to this archive."""


class NotFoundError(MdcsqlError):
    """A named archive, file, symbol or source does not exist."""


class IntegrityError(MdcsqlError):
    """Stored bytes do not match their manifest or catalog row."""
