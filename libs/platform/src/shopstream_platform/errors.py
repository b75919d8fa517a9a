"""Domain errors: raised by pure domain code, mapped to gRPC status codes in one place (grpc/)."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a caller is meant to see; the message is safe to show them."""


class InvalidArgumentError(DomainError):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class NotFoundError(DomainError):
    def __init__(self, kind: str, ident: str) -> None:
        super().__init__(f"{kind} {ident!r} not found")
        self.kind = kind
        self.ident = ident


class AlreadyExistsError(DomainError):
    def __init__(self, kind: str, ident: str) -> None:
        super().__init__(f"{kind} {ident!r} already exists")


class FailedPreconditionError(DomainError):
    """The request is well-formed but the entity's state does not allow it now."""


class ConflictError(DomainError):
    """The entity changed since the caller read it (a stale version, a lost optimistic lock).

    ABORTED, not FAILED_PRECONDITION: gRPC's guidance is that the caller retries the whole
    read-modify-write sequence, whereas a failed precondition is not fixed by retrying.
    """


class UnauthenticatedError(DomainError):
    pass


class PermissionDeniedError(DomainError):
    pass


class ResourceExhaustedError(DomainError):
    """A budget or quota is spent."""


class UnavailableError(DomainError):
    """A dependency (payment provider, another service) did not answer; the call may be retried."""
