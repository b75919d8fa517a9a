import grpc

from shopstream_platform.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError
from shopstream_platform.grpc.errors import status_for


def test_domain_errors_map_to_codes_with_their_message() -> None:
    assert status_for(InvalidArgumentError("price", "must be > 0"), "M") == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "price: must be > 0",
    )
    assert status_for(NotFoundError("product", "p1"), "M")[0] == grpc.StatusCode.NOT_FOUND
    assert status_for(FailedPreconditionError("order is paid"), "M")[0] == (
        grpc.StatusCode.FAILED_PRECONDITION
    )


def test_unexpected_errors_hide_details_behind_a_reference() -> None:
    code, message = status_for(KeyError("secret internals"), "M")
    assert code == grpc.StatusCode.INTERNAL
    assert "secret" not in message and message.startswith("internal error (ref ")
