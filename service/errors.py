"""Errors the service reports to clients, each tied to one gRPC status.

Every error carries the field it concerns and a message saying what was
wrong and how to fix it. ``DataError`` (and ``ConfigError``) mean the request
is invalid; the classes here cover the other statuses.
"""

from __future__ import annotations


class DataError(ValueError):
    """A data set or its options cannot be used; the message says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class NotFoundError(DataError):
    """The job or data set named by the field does not exist."""

    status = "NOT_FOUND"


class PreconditionError(DataError):
    """The request is valid but the target's state does not allow it."""

    status = "FAILED_PRECONDITION"


class CapacityError(DataError):
    """A server limit (jobs, sizes) would be exceeded."""

    status = "RESOURCE_EXHAUSTED"


class ConflictError(DataError):
    """The request clashes with an existing one (a reused request_id)."""

    status = "ALREADY_EXISTS"


class UnavailableError(DataError):
    """The server cannot take the call now; the same call may work later."""

    status = "UNAVAILABLE"


def status_name(error: DataError) -> str:
    """The gRPC status code name for an error."""
    return getattr(error, "status", "INVALID_ARGUMENT")
