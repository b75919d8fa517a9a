"""gRPC fuzzing at the issue's volume: every RPC of every service, 1,000 generated requests each
(`SHOPSTREAM_FUZZ_PER_METHOD`), through the platform's fuzzer (shopstream_platform/fuzz.py: edge
and negative numbers, out-of-range timestamps, negative page sizes, huge and invalid-UTF-8
strings, unknown enum values, deep and long repeated fields, truncated and random bodies, every
role and none). The services' own fuzz tests (`services/*/tests/integration/test_fuzz_rpcs.py`)
run 300 per RPC with valid seeds in `make test-integration`; this one is the volume run.

Passing means: no INTERNAL or UNKNOWN and no status too large to read; a request above the
server's 8 MiB receive limit answers RESOURCE_EXHAUSTED; health stays SERVING; and afterwards the
outbox of each SQL service drains to 0 (whatever the fuzzing wrote is published)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import grpc
import pytest
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from shopstream_platform.fuzz import FuzzReport, fuzz_service, health_status
from shopstream_platform.grpc.auth import ROLES

if TYPE_CHECKING:
    from conftest import Endpoint, Services

# In the session's event loop, where the session's services run (conftest.py).
pytestmark = [pytest.mark.security, pytest.mark.asyncio(loop_scope="session")]

PER_METHOD = int(os.environ.get("SHOPSTREAM_FUZZ_PER_METHOD", "1000"))
OVERSIZED = 9 * 1024 * 1024  # above the server's grpc.max_receive_message_length (8 MiB)


async def fuzz(api: Endpoint) -> FuzzReport:
    report = await fuzz_service(
        api.channel, api.service, api.tokens.mint, sorted(ROLES), per_method=PER_METHOD
    )
    print(report.summary())
    methods = descriptor_pool.Default().FindServiceByName(api.service).methods
    assert {m.name for m in methods} == {m for m, _ in report.codes}, "a method was not called"
    assert all(report.calls(m.name) == PER_METHOD for m in methods)
    return report


async def oversized_code(api: Endpoint) -> str:
    """The answer to a request of 9 MiB (one string field) on the first method that has one."""
    for method in descriptor_pool.Default().FindServiceByName(api.service).methods:
        text = [f for f in method.input_type.fields if f.type == FieldDescriptor.TYPE_STRING]
        if not text or text[0].is_repeated or method.server_streaming:
            continue
        request: Message = GetMessageClass(method.input_type)()
        setattr(request, text[0].name, "x" * OVERSIZED)
        call = api.channel.unary_unary(
            f"/{api.service}/{method.name}", request_serializer=lambda m: m.SerializeToString()
        )
        metadata = (("authorization", f"Bearer {api.tokens.mint('admin', 'fuzz')}"),)
        try:
            await call(request, metadata=metadata, timeout=30)
        except grpc.aio.AioRpcError as exc:
            return exc.code().name
        return "OK"
    raise AssertionError(f"{api.service} has no method with a string field")


async def survives_fuzzing(api: Endpoint) -> None:
    report = await fuzz(api)
    assert not report.failures, report.summary()
    assert await oversized_code(api) == "RESOURCE_EXHAUSTED"
    assert await health_status(api.channel) == "SERVING"


async def test_catalog_and_commerce_survive_every_generated_request(services: Services) -> None:
    await survives_fuzzing(services.catalog)
    await survives_fuzzing(services.commerce)
    await services.shop.catalog.published(timeout_s=60)
    await services.shop.commerce.published(timeout_s=60)


async def test_ads_survives_every_generated_request(services: Services) -> None:
    await survives_fuzzing(services.ads)
    await services.ads_world.service.published(timeout_s=60)


async def test_creator_score_survives_every_generated_request(services: Services) -> None:
    await survives_fuzzing(services.creators)
