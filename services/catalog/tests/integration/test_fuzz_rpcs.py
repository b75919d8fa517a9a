"""Every catalog RPC, 300 hostile requests each (edge numbers, unknown enums, invalid UTF-8,
truncated and random bodies, every role): no INTERNAL or UNKNOWN, and health stays SERVING."""

import pytest
from catalog_steps import RunningCatalog

from shopstream_platform.fuzz import fuzz_service, health_status
from shopstream_platform.grpc.auth import ROLES

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_no_request_makes_catalog_fail(catalog: RunningCatalog) -> None:
    report = await fuzz_service(
        catalog.channel,
        "shopstream.catalog.v1.CatalogService",
        lambda role, ident: catalog.tokens.mint(role, ident),
        sorted(ROLES),
        per_method=300,
    )
    print(report.summary())
    assert not report.failures, report.summary()
    assert all(report.calls(m) == 300 for m, _ in report.codes)
    assert await health_status(catalog.channel) == "SERVING"
