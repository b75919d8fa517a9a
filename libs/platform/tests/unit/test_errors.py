import grpc
from google.rpc import error_details_pb2, status_pb2

from shopstream_platform.errors import (
    ConflictError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
)
from shopstream_platform.grpc.errors import rpc_status_for, status_for


def test_domain_errors_map_to_codes_with_their_message() -> None:
    assert status_for(InvalidArgumentError("price", "must be > 0"), "M") == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "price: must be > 0",
    )
    assert status_for(NotFoundError("product", "p1"), "M")[0] == grpc.StatusCode.NOT_FOUND
    assert status_for(FailedPreconditionError("order is paid"), "M")[0] == (
        grpc.StatusCode.FAILED_PRECONDITION
    )


def test_a_conflict_is_aborted_not_a_failed_precondition() -> None:
    assert status_for(ConflictError("product p1 is at version 3, not 2"), "M") == (
        grpc.StatusCode.ABORTED,
        "product p1 is at version 3, not 2",
    )


def _bad_request(trailer: tuple[tuple[str, str | bytes], ...]) -> tuple[int, list[tuple[str, str]]]:
    [(key, value)] = trailer
    assert key == "grpc-status-details-bin" and isinstance(value, bytes)
    status = status_pb2.Status.FromString(value)
    [detail] = status.details
    bad_request = error_details_pb2.BadRequest()
    assert detail.Unpack(bad_request)
    return status.code, [(v.field, v.description) for v in bad_request.field_violations]


def test_invalid_argument_carries_a_bad_request_naming_the_field() -> None:
    status = rpc_status_for(InvalidArgumentError("lines[0].quantity", "must be 1..999"), "M")
    assert (status.code, status.message) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "lines[0].quantity: must be 1..999",
    )
    assert _bad_request(status.trailing_metadata) == (
        grpc.StatusCode.INVALID_ARGUMENT.value[0],
        [("lines[0].quantity", "must be 1..999")],
    )
    # A value too large to store: the database does not say which, so the request is named.
    overflow = rpc_status_for(OverflowError("int too large"), "M")
    assert _bad_request(overflow.trailing_metadata)[1] == [
        ("request", "a number in the request is out of range")
    ]
    # Other codes carry no details.
    assert rpc_status_for(PermissionDeniedError("no"), "M").trailing_metadata == ()


def test_unexpected_errors_hide_details_behind_a_reference() -> None:
    code, message = status_for(KeyError("secret internals"), "M")
    assert code == grpc.StatusCode.INTERNAL
    assert "secret" not in message and message.startswith("internal error (ref ")


def test_messages_echoing_the_request_are_clipped_below_the_header_limit() -> None:
    long_id = "a" * 10_000
    status = rpc_status_for(NotFoundError("campaign", long_id), "M")
    assert status.code == grpc.StatusCode.NOT_FOUND
    assert len(status.message) == 1000 and status.message.endswith("…")
    invalid = rpc_status_for(InvalidArgumentError("name", f"{long_id} is too long"), "M")
    assert len(invalid.message) == 1000
    [(_, trailer)] = invalid.trailing_metadata
    assert isinstance(trailer, bytes) and len(trailer) < 2_000
