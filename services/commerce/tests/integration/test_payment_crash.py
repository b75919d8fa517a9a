"""kill -9 of commerce between the provider's charge and the commit of its answer, 10 times.

Commerce runs as a real process with the sandbox provider keeping its records in a file (as a
real provider keeps them elsewhere). Each round pays an order with a card the provider charges
at once but answers only a second later, and kills commerce in that second; in every other round
the buyer cancels the order first, so the charge lands on an order that can no longer be paid.
After the restarts every charge at the provider must be matched: by a paid order (OrderPaid with
its payment id) or by a full refund (PaymentRefunded), and the money per order recounted from
commerce.payments.v1 equals the provider's.
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
from shopstream.commerce.v1 import commerce_service_pb2_grpc, order_events_pb2, order_pb2
from shopstream.commerce.v1 import payment_events_pb2 as pev
from shopstream_commerce.payments.provider import PaymentStatus, balances, read_ledger
from shopstream_platform.grpc.auth import TokenCodec
from shopstream_platform.kafka.cloudevents import headers_dict
from shopstream_platform.settings import AuthSettings, KafkaSettings
from shopstream_platform.testing import (
    HostedService,
    ServiceProcess,
    read_since,
)

pytestmark = pytest.mark.integration
ROUNDS = 10
PRICE = 1_500


async def events_by_id(
    kafka: KafkaSettings, topic: str, keys: set[str], since_ms: int
) -> dict[str, list[object]]:
    """Each order's events on a topic, once per event id (re-sends after a crash share it)."""
    records = [
        r
        for r in await asyncio.to_thread(read_since, kafka, topic, since_ms)
        if (r.key() or b"").decode() in keys
    ]
    seen: set[str] = set()
    found: dict[str, list[object]] = defaultdict(list)
    for record in records:
        headers = headers_dict(record.headers())
        if headers["ce_id"] in seen:
            continue
        seen.add(headers["ce_id"])
        kind = headers["ce_type"].rsplit(".", 1)[-1]
        module = pev if hasattr(pev, kind) else order_events_pb2
        found[(record.key() or b"").decode()].append(
            getattr(module, kind).FromString(record.value() or b"")
        )
    return found


async def test_kill_minus_nine_between_charge_and_commit_leaves_no_charge_unmatched(
    catalog: HostedService,
    kafka_settings: KafkaSettings,
    tmp_path: Path,
    ids: Callable[[str], str],
    service_process: Callable[[str, str, dict[str, str]], ServiceProcess],
) -> None:
    ledger = tmp_path / "sandbox-provider.jsonl"
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
            "SWEEP_INTERVAL_S": "0.2",
            "PAYMENT_RESOLVE_AFTER_S": "1.0",
            "SANDBOX_SLOW_S": "1.5",
            "SANDBOX_LEDGER_PATH": str(ledger),
        },
    )
    started_ms = int(time.time() * 1000) - 5_000
    await commerce.start()
    paid_orders: list[str] = []
    cancelled_orders: list[str] = []
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
        product = await shop.listed_product(seller, stock=100, price=PRICE)
        sku = product.skus[0].sku_id
        auth = shop.auth("buyer", buyer)

        for round_ in range(ROUNDS):
            order = await shop.place(buyer, sku, key=f"crash-pay-{round_}")
            got = await shop.wait_state(
                order,
                order_pb2.ORDER_STATE_RESERVED,
                order_pb2.ORDER_STATE_REJECTED,
                timeout_s=60,
            )
            assert got.order.state == order_pb2.ORDER_STATE_RESERVED, (round_, got)
            paying = asyncio.ensure_future(
                shop.stub.PayOrder(
                    pb.PayOrderRequest(order_id=order.order_id, card_token="tok_slow_visa"),
                    metadata=auth,
                    timeout=10,
                )
            )
            # Wait until the provider charged; its answer is 1.5 s away.
            for _ in range(200):
                if any(e.key.startswith(f"{order.order_id}/") for e in read_ledger(ledger)):
                    break
                await asyncio.sleep(0.02)
            if round_ % 2:
                await shop.stub.CancelOrder(
                    pb.CancelOrderRequest(order_id=order.order_id, reason="changed my mind"),
                    metadata=auth,
                    timeout=10,
                )
                cancelled_orders.append(order.order_id)
            else:
                paid_orders.append(order.order_id)
            commerce.kill()
            with pytest.raises(grpc.aio.AioRpcError):
                await paying
            await commerce.start()

        # After the restarts the sweeper asks the provider about every intent left open.
        for order_id in paid_orders:
            got = await shop.wait_state(
                order_pb2.Order(order_id=order_id, buyer_id=buyer),
                order_pb2.ORDER_STATE_PAID,
                timeout_s=60,
            )
            assert got.order.state == order_pb2.ORDER_STATE_PAID
        for _ in range(300):
            at_provider = balances(read_ledger(ledger))
            if all(at_provider[o][1] == PRICE for o in cancelled_orders):
                break
            await asyncio.sleep(0.1)
        assert all(at_provider[o] == (PRICE, PRICE) for o in cancelled_orders), at_provider
        assert commerce.stop() == 0
        # Paid orders keep their units reserved until shipped; cancelled ones gave them back.
        assert await shop.available(product.product_id) == 100 - len(paid_orders)

    entries = read_ledger(ledger)
    charges = [e for e in entries if e.kind == "charge" and e.status == PaymentStatus.SUCCEEDED]
    refunded = defaultdict(int)
    for e in entries:
        if e.kind == "refund":
            refunded[e.payment_id] += e.amount_minor
    orders = set(paid_orders + cancelled_orders)
    order_events = await events_by_id(kafka_settings, "commerce.orders.v1", orders, started_ms)
    payment_events = await events_by_id(kafka_settings, "commerce.payments.v1", orders, started_ms)
    paid_with = {
        e.payment_id
        for events in order_events.values()
        for e in events
        if isinstance(e, order_events_pb2.OrderPaid)
    }
    refunded_by_event = {
        e.payment_id
        for events in payment_events.values()
        for e in events
        if isinstance(e, pev.PaymentRefunded)
    }
    matched = [
        c
        for c in charges
        if c.payment_id in paid_with
        or (c.payment_id in refunded_by_event and refunded[c.payment_id] == c.amount_minor)
    ]
    print(
        f"\ncharges={len(charges)} matched={len(matched)} "
        f"unmatched={len(charges) - len(matched)} (kill -9 x {ROUNDS})"
    )
    assert len(charges) == ROUNDS and len(matched) == len(charges)
    # The invariant per order, recounted from the topic: charged - refunded at the provider =
    # succeeded attempts - refunds published by commerce.
    at_provider = balances(entries)
    for order_id in orders:
        events = payment_events[order_id]
        paid = sum(
            e.amount.amount_minor
            for e in events
            if isinstance(e, pev.PaymentAttempted) and e.status == pev.PAYMENT_STATUS_SUCCEEDED
        )
        back = sum(e.amount.amount_minor for e in events if isinstance(e, pev.PaymentRefunded))
        assert at_provider[order_id] == (paid, back), order_id
        expected = (PRICE, PRICE) if order_id in cancelled_orders else (PRICE, 0)
        assert at_provider[order_id] == expected
