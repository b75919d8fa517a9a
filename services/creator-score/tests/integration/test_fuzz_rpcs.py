"""Every creator-score RPC, 300 hostile requests each (edge numbers, unknown enums, invalid
UTF-8, truncated and random bodies, every role; the WatchScores stream too): no INTERNAL or
UNKNOWN, and health stays SERVING."""

import grpc
import pytest
from creator_steps import Market

from shopstream_platform.fuzz import fuzz_service, health_status
from shopstream_platform.grpc.auth import ROLES

pytestmark = pytest.mark.integration


async def test_no_request_makes_creator_score_fail(market: Market) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{market.service.port}") as channel:
        report = await fuzz_service(
            channel,
            "shopstream.creators.v1.CreatorScoreService",
            market.tokens.mint,
            sorted(ROLES),
            per_method=300,
        )
        print(report.summary())
        assert not report.failures, report.summary()
        assert all(report.calls(m) == 300 for m, _ in report.codes)
        assert await health_status(channel) == "SERVING"
