"""Errors the service reports to clients, each tied to one gRPC status.

Every error carries the field it concerns and a message saying what was
wrong and how to fix it. ``DataError`` (and ``ConfigError``) mean the request
is invalid; the classes here cover the other statuses.
"""

from __future__ import annotations

from service.data import DataError


class NotFoundError(DataError):
    """The job or data set named by the field does not exist."""

    status = "NOT_FOUND"


class PreconditionError(DataError):
    """The request is valid but the target's state does not allow it."""

    status = "FAILED_PRECONDITION"


class CapacityError(DataError):
    """A server limit (jobs, sizes) would be exceeded."""

    status = "RESOURCE_EXHAUSTED"


def status_name(error: DataError) -> str:
    """The gRPC status code name for an error."""
    return getattr(error, "status", "INVALID_ARGUMENT")


class ConflictError(DataError):
    """The request clashes with an existing one (a reused request_id)."""

    status = "ALREADY_EXISTS"
