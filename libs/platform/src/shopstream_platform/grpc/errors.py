"""Domain error → gRPC status, in one place. Callers get a code and a message, never a traceback;
INVALID_ARGUMENT also carries a `google.rpc.BadRequest` naming the field (grpcio-status's rich
status, in the `grpc-status-details-bin` trailer), so clients need not parse the message."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]
from grpc_status import rpc_status  # type: ignore[import-untyped]

from shopstream_platform.db.errors import DbFailure, classify_db_error
from shopstream_platform.errors import (
    AlreadyExistsError,
    ConflictError,
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

# docs/platform.md lists this table for callers; keep the two in step.
_CODES: list[tuple[type[DomainError], grpc.StatusCode]] = [
    (InvalidArgumentError, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFoundError, grpc.StatusCode.NOT_FOUND),
    (AlreadyExistsError, grpc.StatusCode.ALREADY_EXISTS),
    (FailedPreconditionError, grpc.StatusCode.FAILED_PRECONDITION),
    (ConflictError, grpc.StatusCode.ABORTED),
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


@dataclass(frozen=True)
class RpcStatus:
    """What the interceptor aborts with: code, message and the rich status trailer."""

    code: grpc.StatusCode
    message: str
    trailing_metadata: tuple[tuple[str, str | bytes], ...] = ()


# Messages echo what the caller sent (an id, a name); the status travels in HTTP/2 headers, and a
# client drops headers past 8 KiB with RESOURCE_EXHAUSTED, hiding the real code. So clip them.
MAX_MESSAGE_CHARS = 1000


def clip(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def rpc_status_for(error: BaseException, method: str) -> RpcStatus:
    code, message = status_for(error, method)
    message = clip(message)
    if code is not grpc.StatusCode.INVALID_ARGUMENT:
        return RpcStatus(code, message)
    if isinstance(error, InvalidArgumentError):
        violation = (clip(error.field, 200), clip(error.problem, 500))
    else:  # a value too large to store: which one, the database does not say
        violation = ("request", message)
    return RpcStatus(code, message, bad_request_trailer(message, [violation]))


def bad_request_trailer(
    message: str, violations: list[tuple[str, str]]
) -> tuple[tuple[str, str | bytes], ...]:
    """The `grpc-status-details-bin` trailer of an INVALID_ARGUMENT with field violations."""
    bad_request = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=field, description=description)
            for field, description in violations
        ]
    )
    status = status_pb2.Status(code=grpc.StatusCode.INVALID_ARGUMENT.value[0], message=message)
    status.details.add().Pack(bad_request)
    trailer: tuple[tuple[str, str | bytes], ...] = tuple(
        rpc_status.to_status(status).trailing_metadata
    )
    return trailer
