"""kill -9 of the commerce process mid-saga: no order lost, no effect applied twice.

Catalog runs in this test's event loop; commerce runs as a real process that is killed with
SIGKILL while orders stream in, then restarted on the same database. Clients retry with their
idempotency keys, as real clients do after an error.
"""

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from commerce_steps import Shop, own_commerce_name

from shopstream.catalog.v1 import catalog_service_pb2_grpc
from shopstream.commerce.v1 import commerce_service_pb2 as pb
from shopstream.commerce.v1 import commerce_service_pb2_grpc, order_pb2
from shopstream_platform.grpc.auth import TokenCodec
from shopstream_platform.kafka.cloudevents import headers_dict
from shopstream_platform.settings import AuthSettings, KafkaSettings
from shopstream_platform.testing import (
    HostedService,
    ServiceProcess,
    read_since,
)

pytestmark = pytest.mark.integration
ORDERS = 40


async def test_kill_minus_nine_mid_saga_loses_nothing_and_doubles_nothing(
    catalog: HostedService,
    kafka_settings: KafkaSettings,
    tmp_path: Path,
    ids: Callable[[str], str],
    service_process: Callable[[str, str, dict[str, str]], ServiceProcess],
) -> None:
    commerce = service_process(
        "shopstream_commerce",
        "SHOPSTREAM_COMMERCE_",
        {
            "KAFKA__BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
            # Its own consumer groups, and only its own catalog's answers (a shared broker).
            "SERVICE_NAME": own_commerce_name(kafka_settings),
            "CATALOG_SOURCE": f"shopstream/{catalog.runtime.name}",
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'commerce.db'}",
            "CONSUMER__POLL_TIMEOUT_S": "0.05",
            # The broker's least session: a killed process's members leave its groups after
            # 6 s instead of 10 s, so each restart's rebalance waits that much less.
            "CONSUMER__SESSION_TIMEOUT_MS": "6000",
            "OUTBOX_POLL_INTERVAL_S": "0.02",
        },
    )
    started_ms = int(time.time() * 1000) - 5_000
    await commerce.start()
    async with (
        grpc.aio.insecure_channel(f"127.0.0.1:{catalog.port}") as catalog_channel,
        grpc.aio.insecure_channel(f"127.0.0.1:{commerce.port}") as channel,
    ):
        shop = Shop(
            catalog,
            catalog,
            catalog_service_pb2_grpc.CatalogServiceStub(catalog_channel),
            commerce_service_pb2_grpc.CommerceServiceStub(channel),
            TokenCodec(AuthSettings()),
        )
        seller, buyer = ids("seller"), ids("buyer")
        product = await shop.listed_product(seller, stock=1_000)
        sku = product.skus[0].sku_id
        await shop.place(buyer, sku, key="warm-up")

        async def place(i: int) -> str | None:
            """One client: PlaceOrder with its key; None when the server died under it."""
            request = pb.PlaceOrderRequest(
                buyer_id=buyer,
                idempotency_key=f"crash-{i}",
                lines=[pb.OrderLineRequest(sku_id=sku, quantity=1)],
            )
            try:
                reply = await shop.stub.PlaceOrder(
                    request, metadata=shop.auth("buyer", buyer), timeout=5
                )
                return str(reply.order.order_id)
            except grpc.aio.AioRpcError:
                return None

        first_half = [asyncio.create_task(place(i)) for i in range(ORDERS // 2)]
        await asyncio.sleep(0.05)
        commerce.kill()  # mid-stream: some placed, some answered by catalog, some in flight
        await asyncio.gather(*first_half)
        await commerce.start()
        # Clients retry everything (same keys), and the rest of the orders arrive.
        order_ids = await asyncio.gather(*(place(i) for i in range(ORDERS)))
        assert None not in order_ids and len(set(order_ids)) == ORDERS

        for order_id in order_ids:
            got = await shop.wait_state(
                order_pb2.Order(order_id=str(order_id), buyer_id=buyer),
                order_pb2.ORDER_STATE_RESERVED,
                timeout_s=60,
            )
            assert got.order.state == order_pb2.ORDER_STATE_RESERVED
        listed = await shop.stub.ListOrders(
            pb.ListOrdersRequest(buyer_id=buyer, page={"page_size": 100}),
            metadata=shop.auth("buyer", buyer),
            timeout=10,
        )
        assert len(listed.orders) == ORDERS + 1  # + the warm-up order
        assert commerce.stop() == 0
        # Catalog reserved each order exactly once (warm-up included).
        assert await shop.available(product.product_id) == 1_000 - ORDERS - 1

    # On the topic, each order's effects appear under one event id each (re-sends share it).
    wanted = set(order_ids)
    # Read from the test's start: the shared broker's topic holds millions of older records.
    records = [
        r
        for r in await asyncio.to_thread(
            read_since, kafka_settings, "commerce.orders.v1", started_ms
        )
        if (r.key() or b"").decode() in wanted
    ]
    ids_by_kind: dict[tuple[str, str], set[str]] = defaultdict(set)
    for record in records:
        headers = headers_dict(record.headers())
        ids_by_kind[((record.key() or b"").decode(), headers["ce_type"])].add(headers["ce_id"])
    for order_id in wanted:
        assert len(ids_by_kind[(str(order_id), "shopstream.commerce.v1.OrderPlaced")]) == 1
        assert len(ids_by_kind[(str(order_id), "shopstream.commerce.v1.OrderReserved")]) == 1
