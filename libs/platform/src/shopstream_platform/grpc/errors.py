"""Domain error → gRPC status, in one place. Callers get a code and a message, never a traceback."""

from __future__ import annotations

import logging
import uuid

import grpc

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
    # An unexpected failure: log the traceback under a reference the caller can quote.
    ref = uuid.uuid4().hex[:12]
    log.error("unhandled error in %s (ref %s)", method, ref, exc_info=error)
    return grpc.StatusCode.INTERNAL, f"internal error (ref {ref})"
