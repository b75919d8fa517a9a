"""kill -9 of the commerce process mid-saga: no order lost, no effect applied twice.

Catalog runs in this test's event loop; commerce runs as a real process that is killed with
SIGKILL while orders stream in, then restarted on the same database. Clients retry with their
idempotency keys, as real clients do after an error.
"""

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import grpc
import pytest
from commerce_steps import Shop
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shopstream.catalog.v1 import catalog_service_pb2_grpc
from shopstream.commerce.v1 import commerce_service_pb2 as pb
from shopstream.commerce.v1 import commerce_service_pb2_grpc, order_pb2
from shopstream_catalog.api.policy import POLICY as CATALOG_POLICY
from shopstream_catalog.settings import CatalogSettings
from shopstream_catalog.store.tables import MIGRATIONS as CATALOG_MIGRATIONS
from shopstream_catalog.wiring import wire as wire_catalog
from shopstream_platform.grpc.auth import TokenCodec
from shopstream_platform.kafka.cloudevents import headers_dict
from shopstream_platform.settings import AuthSettings, KafkaSettings
from shopstream_platform.testing import (
    HostedService,
    fast_test_settings,
    hosted_service,
    read_all_async,
)

pytestmark = pytest.mark.integration
ORDERS = 40


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_started: list["CommerceProcess"] = []


@pytest.fixture(autouse=True)
def _no_leftover_processes() -> Iterator[None]:
    """A failed assertion must not leave a service process running into later tests."""
    yield
    while _started:
        _started.pop().cleanup()


class CommerceProcess:
    def __init__(self, kafka: KafkaSettings, db: Path, port: int) -> None:
        self.env = {
            **os.environ,
            "SHOPSTREAM_COMMERCE_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            "SHOPSTREAM_COMMERCE_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
            "SHOPSTREAM_COMMERCE_GRPC__PORT": str(port),
            "SHOPSTREAM_COMMERCE_METRICS_PORT": "0",
            "SHOPSTREAM_COMMERCE_LOG_FORMAT": "text",
            "SHOPSTREAM_COMMERCE_LOG_LEVEL": "WARNING",
            "SHOPSTREAM_COMMERCE_CONSUMER__POLL_TIMEOUT_S": "0.05",
            "SHOPSTREAM_COMMERCE_OUTBOX_POLL_INTERVAL_S": "0.02",
        }
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None
        _started.append(self)

    async def start(self) -> None:
        """Start and wait for SERVING; like a supervisor, start again if the process exits."""
        for _attempt in range(3):
            self.process = subprocess.Popen(
                [sys.executable, "-m", "shopstream_commerce"], env=self.env
            )
            async with grpc.aio.insecure_channel(f"127.0.0.1:{self.port}") as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                for _ in range(600):
                    if self.process.poll() is not None:
                        break
                    try:
                        reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                        if reply.status == health_pb2.HealthCheckResponse.SERVING:
                            return
                    except grpc.aio.AioRpcError:
                        pass
                    await asyncio.sleep(0.1)
            if self.process.poll() is None:
                break
        raise AssertionError("commerce did not start")

    def cleanup(self) -> None:
        """Never leave the process behind, whatever the test's outcome."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(60)


@pytest.fixture
async def catalog(kafka_settings: KafkaSettings, tmp_path: Path) -> AsyncIterator[HostedService]:
    settings = CatalogSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/catalog.db",
        **fast_test_settings(kafka_settings),
    )
    async with hosted_service(
        settings, wire_catalog, policy=CATALOG_POLICY, migrations=CATALOG_MIGRATIONS
    ) as hosted:
        yield hosted


async def test_kill_minus_nine_mid_saga_loses_nothing_and_doubles_nothing(
    catalog: HostedService, kafka_settings: KafkaSettings, tmp_path: Path, ids: Callable[[str], str]
) -> None:
    port = free_port()
    commerce = CommerceProcess(kafka_settings, tmp_path / "commerce.db", port)
    await commerce.start()
    async with (
        grpc.aio.insecure_channel(f"127.0.0.1:{catalog.port}") as catalog_channel,
        grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
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
    records = await read_all_async(
        kafka_settings,
        "commerce.orders.v1",
        expect=10**6,
        timeout_s=5,
        match=lambda r: (r.key() or b"").decode() in wanted,
    )
    ids_by_kind: dict[tuple[str, str], set[str]] = defaultdict(set)
    for record in records:
        headers = headers_dict(record.headers())
        ids_by_kind[((record.key() or b"").decode(), headers["ce_type"])].add(headers["ce_id"])
    for order_id in wanted:
        assert len(ids_by_kind[(str(order_id), "shopstream.commerce.v1.OrderPlaced")]) == 1
        assert len(ids_by_kind[(str(order_id), "shopstream.commerce.v1.OrderReserved")]) == 1
