"""Bad requests answer INVALID_ARGUMENT naming the field, never INTERNAL or UNKNOWN (issue 15, 2.7).

A real grpc.aio server built by the platform (GrpcServer with its interceptor), called over a
real channel; the undecodable body is sent as raw bytes with identity serializers.
"""

import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from sqlalchemy import exc as sa

from shopstream.ads.v1 import ads_service_pb2
from shopstream.catalog.v1 import catalog_service_pb2
from shopstream_platform.errors import ConflictError
from shopstream_platform.grpc.auth import AccessPolicy, TokenCodec
from shopstream_platform.grpc.server import GrpcServer, ServiceBinding
from shopstream_platform.metrics import PlatformMetrics
from shopstream_platform.settings import AuthSettings, GrpcSettings

pytestmark = pytest.mark.integration

SERVICE = "shopstream.test.v1.Probe"


def identity(data: bytes) -> bytes:
    return data


async def echo(request: Any, context: Any) -> Any:
    return request


async def overflow(request: Any, context: Any) -> Any:
    raise OverflowError("Python int too large to convert to SQLite INTEGER")


async def sum_overflow(request: Any, context: Any) -> Any:
    raise sa.OperationalError("SELECT sum(...)", {}, sqlite3.OperationalError("integer overflow"))


async def stale(request: Any, context: Any) -> Any:
    raise ConflictError("product p is at version 3, not 2")


async def locked(request: Any, context: Any) -> Any:
    raise sa.OperationalError("UPDATE ...", {}, sqlite3.OperationalError("database is locked"))


def handler(behavior: Any, message: Any) -> Any:
    return grpc.unary_unary_rpc_method_handler(
        behavior,
        request_deserializer=message.FromString,
        response_serializer=lambda m: m.SerializeToString(),
    )


def register(_servicer: object, server: Any) -> None:
    get = catalog_service_pb2.GetProductRequest
    handlers = {
        "Get": handler(echo, get),
        "Create": handler(echo, ads_service_pb2.CreateCampaignRequest),
        "List": handler(echo, ads_service_pb2.ListCampaignsRequest),
        "Overflow": handler(overflow, get),
        "SumOverflow": handler(sum_overflow, get),
        "Locked": handler(locked, get),
        "Stale": handler(stale, get),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


@pytest.fixture
async def channel() -> AsyncIterator[tuple[grpc.aio.Channel, list[tuple[str, str]]]]:
    auth = AuthSettings()
    server = GrpcServer(
        GrpcSettings(port=0, reflection=False, shutdown_grace_s=0),
        auth,
        PlatformMetrics("test"),
        AccessPolicy.of({}),
        [ServiceBinding(SERVICE, register, object())],
    )
    port = await server.start()
    metadata = [("authorization", f"Bearer {TokenCodec(auth).mint('admin', 'ops')}")]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        yield ch, metadata
    await server.stop(0)


async def call(
    channel: tuple[grpc.aio.Channel, list[tuple[str, str]]], method: str, body: bytes
) -> grpc.aio.AioRpcError | bytes:
    ch, metadata = channel
    stub = ch.unary_unary(
        f"/{SERVICE}/{method}", request_serializer=identity, response_deserializer=identity
    )
    try:
        return bytes(await stub(body, metadata=metadata, timeout=10))
    except grpc.aio.AioRpcError as error:
        return error


def invalid(result: object) -> str:
    assert isinstance(result, grpc.aio.AioRpcError), result
    assert result.code() == grpc.StatusCode.INVALID_ARGUMENT, (result.code(), result.details())
    return result.details() or ""


def violations(result: object) -> list[tuple[str, str]]:
    """The google.rpc.BadRequest field violations of an INVALID_ARGUMENT, read as a client does."""
    assert isinstance(result, grpc.aio.AioRpcError), result
    trailer = dict(result.trailing_metadata() or ())
    status = status_pb2.Status.FromString(trailer[rpc_status.GRPC_DETAILS_METADATA_KEY])
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert status.message == result.details()
    bad_request = error_details_pb2.BadRequest()
    [detail] = status.details
    assert detail.Unpack(bad_request)
    return [(v.field, v.description) for v in bad_request.field_violations]


async def test_invalid_utf8_in_a_string_field_is_invalid_argument(channel: Any) -> None:
    # Field 1 (product_id), wire type 2, three bytes that are not UTF-8.
    result = await call(channel, "Get", b"\x0a\x03\xff\xfe\xfd")
    details = invalid(result)
    assert details.startswith("request: the body is not a valid protobuf message")
    [(field, description)] = violations(result)
    assert field == "request" and description.startswith("the body is not a valid protobuf")


async def test_truncated_body_is_invalid_argument(channel: Any) -> None:
    invalid(await call(channel, "Get", b"\x0a\x10abc"))


async def test_a_valid_body_still_works(channel: Any) -> None:
    body = catalog_service_pb2.GetProductRequest(product_id="prd-1").SerializeToString()
    assert await call(channel, "Get", body) == body


@pytest.mark.parametrize(
    ("seconds", "nanos", "field"),
    [
        (2**62, 0, "starts_at"),
        (-(2**40), 0, "starts_at"),
        (253_402_300_800, 0, "starts_at"),  # one second after 9999-12-31T23:59:59Z
        (0, -1, "starts_at.nanos"),
        (0, 1_000_000_000, "starts_at.nanos"),
    ],
)
async def test_out_of_range_timestamp_is_invalid_argument_naming_it(
    channel: Any, seconds: int, nanos: int, field: str
) -> None:
    request = ads_service_pb2.CreateCampaignRequest()
    request.starts_at.seconds = seconds
    request.starts_at.nanos = nanos
    details = invalid(await call(channel, "Create", request.SerializeToString()))
    assert details.startswith(f"{field}:")


async def test_timestamps_at_the_edges_of_the_range_pass(channel: Any) -> None:
    request = ads_service_pb2.CreateCampaignRequest()
    request.starts_at.seconds = -62_135_596_800
    request.ends_at.seconds = 253_402_300_799
    request.ends_at.nanos = 999_999_999
    body = request.SerializeToString()
    assert await call(channel, "Create", body) == body


async def test_negative_page_size_is_invalid_argument_naming_it(channel: Any) -> None:
    request = ads_service_pb2.ListCampaignsRequest()
    request.page.page_size = -1
    result = await call(channel, "List", request.SerializeToString())
    assert invalid(result) == "page.page_size: must not be negative"
    assert violations(result) == [("page.page_size", "must not be negative")]


async def test_values_too_large_to_store_are_invalid_argument(channel: Any) -> None:
    body = catalog_service_pb2.GetProductRequest(product_id="p").SerializeToString()
    assert "out of range" in invalid(await call(channel, "Overflow", body))
    assert "out of range" in invalid(await call(channel, "SumOverflow", body))


async def test_a_locked_database_is_unavailable_not_internal(channel: Any) -> None:
    body = catalog_service_pb2.GetProductRequest(product_id="p").SerializeToString()
    result = await call(channel, "Locked", body)
    assert isinstance(result, grpc.aio.AioRpcError)
    assert result.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_stale_version_is_aborted(channel: Any) -> None:
    body = catalog_service_pb2.GetProductRequest(product_id="p").SerializeToString()
    result = await call(channel, "Stale", body)
    assert isinstance(result, grpc.aio.AioRpcError)
    assert result.code() == grpc.StatusCode.ABORTED
    assert result.details() == "product p is at version 3, not 2"
