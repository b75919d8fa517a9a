"""Domain error → gRPC status, in one place. Callers get a code and a message, never a traceback."""

from __future__ import annotations

import logging
import uuid

import grpc

from shopstream_platform.db.errors import DbFailure, classify_db_error
from shopstream_platform.errors import (
    AlreadyExistsError,
    DomainError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnauthenticatedError,
    UnavailableError,
)

log = logging.getLogger(__name__)

_CODES: list[tuple[type[DomainError], grpc.StatusCode]] = [
    (InvalidArgumentError, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFoundError, grpc.StatusCode.NOT_FOUND),
    (AlreadyExistsError, grpc.StatusCode.ALREADY_EXISTS),
    (FailedPreconditionError, grpc.StatusCode.FAILED_PRECONDITION),
    (UnauthenticatedError, grpc.StatusCode.UNAUTHENTICATED),
    (PermissionDeniedError, grpc.StatusCode.PERMISSION_DENIED),
    (ResourceExhaustedError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (UnavailableError, grpc.StatusCode.UNAVAILABLE),
]


def status_for(error: BaseException, method: str) -> tuple[grpc.StatusCode, str]:
    """The status and caller-safe message for an exception raised by a servicer."""
    for cls, code in _CODES:
        if isinstance(error, cls):
            return code, str(error)
    if isinstance(error, DomainError):
        return grpc.StatusCode.UNKNOWN, str(error)
    # Failures the request's own values cause (a number past what a column or a sum can hold, a
    # text longer than its column) are the caller's to fix, not an internal error.
    if isinstance(error, OverflowError):
        return grpc.StatusCode.INVALID_ARGUMENT, "a number in the request is out of range"
    kind = classify_db_error(error)
    if kind is DbFailure.DATA:
        return (
            grpc.StatusCode.INVALID_ARGUMENT,
            "a value in the request is out of range or too long to store",
        )
    if kind is DbFailure.TRANSIENT:
        log.warning("database unavailable in %s: %s", method, error)
        return grpc.StatusCode.UNAVAILABLE, "the database is busy or unreachable; retry"
    # An unexpected failure: log the traceback under a reference the caller can quote.
    ref = uuid.uuid4().hex[:12]
    log.error("unhandled error in %s (ref %s)", method, ref, exc_info=error)
    return grpc.StatusCode.INTERNAL, f"internal error (ref {ref})"
