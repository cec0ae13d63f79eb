"""Errors the service reports to clients, each tied to one gRPC status.

Every error carries the field it concerns and a message saying what was
wrong and how to fix it. ``DataError`` (and its subclass ``ConfigError`` for
settings) means the input is invalid; its subclasses here stand for the
other statuses. The command line prints any of them as one line naming the
option; the gRPC servicer turns them into the status they name.
"""

from __future__ import annotations


class DataError(ValueError):
    """Input that cannot be used (INVALID_ARGUMENT); the message says why."""

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
