"""Every ads RPC, 300 hostile requests each (edge numbers, unknown enums, invalid UTF-8,
truncated and random bodies, every role): no INTERNAL or UNKNOWN, and health stays SERVING."""

import grpc
import pytest
from ads_steps import AdsWorld

from shopstream_platform.fuzz import fuzz_service, health_status
from shopstream_platform.grpc.auth import ROLES

pytestmark = pytest.mark.integration


async def test_no_request_makes_ads_fail(ads: AdsWorld) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{ads.service.port}") as channel:
        report = await fuzz_service(
            channel, "shopstream.ads.v1.AdsService", ads.tokens.mint, sorted(ROLES), per_method=300
        )
        print(report.summary())
        assert not report.failures, report.summary()
        assert all(report.calls(m) == 300 for m, _ in report.codes)
        assert await health_status(channel) == "SERVING"
