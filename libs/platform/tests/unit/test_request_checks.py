"""The generic request checks the gRPC interceptor runs before every servicer (grpc/requests.py)."""

import pytest
from google.protobuf.message import DecodeError

from shopstream.catalog.v1 import catalog_service_pb2 as catalog
from shopstream.commerce.v1 import order_events_pb2
from shopstream.common.v1 import paging_pb2
from shopstream_platform.errors import InvalidArgumentError
from shopstream_platform.grpc.requests import (
    UndecodableRequest,
    check_request,
    tolerant_deserializer,
)
from shopstream_platform.paging import page_size


def field_of(request: object) -> str:
    with pytest.raises(InvalidArgumentError) as error:
        check_request(request)
    return error.value.field


def test_timestamps_are_found_in_nested_and_repeated_messages() -> None:
    nested = order_events_pb2.OrderPlaced()
    nested.order.placed_at.seconds = 2**60
    assert field_of(nested) == "order.placed_at"
    repeated = catalog.BatchGetProductsResponse()
    repeated.products.add()
    repeated.products.add().created_at.nanos = -1
    assert field_of(repeated) == "products[1].created_at.nanos"


def test_valid_and_unset_fields_pass() -> None:
    check_request(order_events_pb2.OrderPlaced())
    placed = order_events_pb2.OrderPlaced()
    placed.order.placed_at.GetCurrentTime()
    check_request(placed)
    check_request(catalog.GetProductRequest(product_id="p"))
    check_request(catalog.SearchProductsRequest(page=paging_pb2.PageRequest(page_size=0)))


def test_negative_page_size_names_the_field() -> None:
    request = catalog.SearchProductsRequest(page=paging_pb2.PageRequest(page_size=-1))
    assert field_of(request) == "page.page_size"


def test_undecodable_body_becomes_a_value_the_check_refuses() -> None:
    deserialize = tolerant_deserializer(catalog.GetProductRequest.FromString)
    assert deserialize is not None
    request = deserialize(b"\x0a\x02\xc3\x28")  # product_id with invalid UTF-8
    assert isinstance(request, UndecodableRequest)
    assert isinstance(request.error, DecodeError)
    assert field_of(request) == "request"
    assert deserialize(b"\x0a\x01p") == catalog.GetProductRequest(product_id="p")
    assert tolerant_deserializer(None) is None


def test_page_size_helper() -> None:
    assert page_size(0, 20, 100) == 20
    assert page_size(500, 20, 100) == 100
    assert page_size(7, 20, 100) == 7
    with pytest.raises(InvalidArgumentError) as error:
        page_size(-1, 20, 100)
    assert error.value.field == "page.page_size"
