"""Order saga: PlaceOrder -> RESERVED -> paid, end to end through catalog and commerce over Kafka.

Targets (design): the order saga >= 500 orders/s; PlaceOrder -> RESERVED p99 <= 100 ms at
200 orders/s. Measured on SQLite and on PostgreSQL (both services on the one database kind).

1. A Kafka broker of the bench's own (bench/_broker.py); catalog and commerce as service
   processes (`python -m shopstream_catalog`, `python -m shopstream_commerce`) with their
   default settings but free ports and fresh databases; a seller, --products approved products
   with a large stock each, and commerce told of every SKU.
2. **Floor (same run): two bare Kafka hops.** The saga crosses Kafka twice (commerce's
   OrderPlaced to catalog, catalog's StockReserved back); the floor sends records at the same
   rate through a bare confluent-kafka echo process (consume topic A, produce to topic B, our
   producer settings) and times send -> seen on B, and its closed-loop rate at the same
   concurrency.
3. **Throughput**: --concurrency callers in a closed loop, each PlaceOrder -> wait for the
   order's OrderReserved on commerce.orders.v1 -> PayOrder (sandbox card) -> PAID, for
   --seconds; orders/s = orders paid in the window / window.
4. **Latency at --rate orders/s** (open loop, --seconds): PlaceOrder sent on a fixed schedule;
   PlaceOrder -> RESERVED = the OrderReserved event's ce_time (commerce's time of the state
   change) minus the send time, same clock; also when the bench saw the event.

    uv run python bench/order_saga_bench.py [--dbs sqlite,postgres] [--concurrency 64] [--rate 200]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _broker import bench_bootstrap
from _common import REPO, free_port, machine_facts, percentile, proc_cpu_seconds
from confluent_kafka import OFFSET_END, Consumer, Producer, TopicPartition

from shopstream_platform.kafka.admin import ensure_topics
from shopstream_platform.kafka.cloudevents import headers_dict, parse_time
from shopstream_platform.kafka.producer import producer_config
from shopstream_platform.settings import KafkaSettings
from shopstream_platform.testing import scratch_topic_spec

TARGET_ORDERS_PER_S = 500
TARGET_P99_MS = 100.0
ORDERS_TOPIC = "commerce.orders.v1"
RESERVED = "shopstream.commerce.v1.OrderReserved"
REJECTED = "shopstream.commerce.v1.OrderRejected"
DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5433/postgres"
STOCK_TOPIC = "catalog.stock.v1"
PLACED = "shopstream.commerce.v1.OrderPlaced"
STOCK_RESERVED = "shopstream.catalog.v1.StockReserved"
STEPS = {PLACED: "placed", STOCK_RESERVED: "stock", RESERVED: "reserved"}
# Where PlaceOrder -> RESERVED goes: (name, from, to), from the events' ce_time (the state
# change) and record timestamps (the outbox relay's produce).
BREAKDOWN = (
    ("PlaceOrder -> OrderPlaced written (commerce API)", "sent", "placed_changed"),
    ("commerce outbox relay", "placed_changed", "placed_sent"),
    ("Kafka + catalog reserves", "placed_sent", "stock_changed"),
    ("catalog outbox relay", "stock_changed", "stock_sent"),
    ("Kafka + commerce applies", "stock_sent", "reserved_changed"),
)


# --- the services ------------------------------------------------------------------------------


class ServiceProcess:
    """`python -m <module>` on free loopback ports, its settings from the environment."""

    def __init__(self, module: str, prefix: str, env: dict[str, str], workdir: Path) -> None:
        self.grpc_port, self.metrics_port = free_port(), free_port()
        self.address = f"127.0.0.1:{self.grpc_port}"
        self.log_path = workdir / f"{module}.log"
        full = {k: v for k, v in os.environ.items() if not k.startswith(prefix)}
        full.update(
            {
                f"{prefix}GRPC__HOST": "127.0.0.1",
                f"{prefix}GRPC__PORT": str(self.grpc_port),
                f"{prefix}METRICS_PORT": str(self.metrics_port),
                f"{prefix}LOG_LEVEL": "WARNING",
                **env,
            }
        )
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=REPO,
            env=full,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])

    async def wait_serving(self, timeout_s: float = 120) -> None:
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        deadline = time.monotonic() + timeout_s
        async with grpc.aio.insecure_channel(self.address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.proc.args} exited:\n{self.tail()}")
                with contextlib.suppress(grpc.aio.AioRpcError):
                    answer = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if answer.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                await asyncio.sleep(0.25)
        raise RuntimeError(f"{self.proc.args} not SERVING:\n{self.tail()}")

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        return self.proc.returncode


@contextlib.asynccontextmanager
async def shop(bootstrap: str, db: str, pg_url: str) -> AsyncIterator[dict[str, Any]]:
    """Catalog and commerce on fresh databases of the given kind."""
    from shopstream_platform.testing import _fresh_pg_database

    with tempfile.TemporaryDirectory(prefix="saga-bench-") as tmp:
        work = Path(tmp)
        async with contextlib.AsyncExitStack() as stack:
            if db == "postgres":
                catalog_db = await stack.enter_async_context(_fresh_pg_database(pg_url))
                commerce_db = await stack.enter_async_context(_fresh_pg_database(pg_url))
            else:
                catalog_db = f"sqlite+aiosqlite:///{work}/catalog.db"
                commerce_db = f"sqlite+aiosqlite:///{work}/commerce.db"
            common = {"SHOPSTREAM_KAFKA__BOOTSTRAP_SERVERS": bootstrap}
            catalog = ServiceProcess(
                "shopstream_catalog",
                "SHOPSTREAM_CATALOG_",
                {**common, "SHOPSTREAM_CATALOG_DATABASE_URL": catalog_db},
                work,
            )
            commerce = ServiceProcess(
                "shopstream_commerce",
                "SHOPSTREAM_COMMERCE_",
                {**common, "SHOPSTREAM_COMMERCE_DATABASE_URL": commerce_db},
                work,
            )
            info: dict[str, Any] = {"catalog": catalog, "commerce": commerce}
            try:
                await asyncio.gather(catalog.wait_serving(), commerce.wait_serving())
                yield info
            finally:
                codes = {"commerce": commerce.stop(), "catalog": catalog.stop()}
                print(f"  services stopped: exit codes {codes}")
                info["exit_codes"] = codes
                # A service that did not end cleanly: keep the end of its log in the result.
                info["log_tails"] = {
                    name: service.tail()
                    for name, service in (("commerce", commerce), ("catalog", catalog))
                    if codes[name] != 0
                }


# --- the order events --------------------------------------------------------------------------


class ReservedWatch:
    """Reads commerce.orders.v1 from its end in a thread: settles each order's future with
    (ce_time of OrderReserved, when seen), or an error for OrderRejected."""

    def __init__(self, bootstrap: str, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.waiting: dict[str, asyncio.Future[tuple[float, float]]] = {}
        self.early: dict[str, tuple[float, float] | str] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"bench-saga-watch-{uuid.uuid4().hex[:6]}",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 5,
                "isolation.level": "read_uncommitted",
            }
        )
        topics = self._consumer.list_topics(timeout=10).topics
        self._consumer.assign(
            [
                TopicPartition(topic, p, OFFSET_END)
                for topic in (ORDERS_TOPIC, STOCK_TOPIC)
                for p in topics[topic].partitions
            ]
        )
        # Per order, the times of each step (epoch seconds): where the latency goes.
        self.stages: dict[str, dict[str, float]] = {}
        self._thread = threading.Thread(target=self._run, name="saga-watch", daemon=True)
        self._thread.start()

    def expect(self, order_id: str) -> asyncio.Future[tuple[float, float]]:
        future: asyncio.Future[tuple[float, float]] = self._loop.create_future()
        with self._lock:
            early = self.early.pop(order_id, None)
            if early is None:
                self.waiting[order_id] = future
        if early is not None:
            _settle(future, early)
        return future

    def _run(self) -> None:
        from shopstream.commerce.v1 import order_events_pb2

        while not self._stop.is_set():
            for msg in self._consumer.consume(num_messages=1_000, timeout=0.05):
                if msg.error():
                    continue
                seen = time.time()
                headers = headers_dict(msg.headers())
                kind = headers.get("ce_type")
                step = STEPS.get(kind or "")
                if step is not None:
                    self._stage(kind or "", step, msg, headers)
                if kind not in (RESERVED, REJECTED):
                    continue
                event = (
                    order_events_pb2.OrderReserved
                    if kind == RESERVED
                    else order_events_pb2.OrderRejected
                ).FromString(msg.value() or b"")
                outcome: tuple[float, float] | str = (
                    (parse_time(headers["ce_time"]).timestamp(), seen)
                    if kind == RESERVED
                    else f"rejected: {getattr(event, 'reason', '')}"
                )
                with self._lock:
                    future = self.waiting.pop(event.order.order_id, None)
                    if future is None:
                        self.early[event.order.order_id] = outcome
                if future is not None:
                    self._loop.call_soon_threadsafe(_settle, future, outcome)

    def _stage(self, kind: str, step: str, msg: Any, headers: dict[str, str]) -> None:
        from shopstream.catalog.v1 import events_pb2
        from shopstream.commerce.v1 import order_events_pb2

        value = msg.value() or b""
        if kind == STOCK_RESERVED:
            order_id = events_pb2.StockReserved.FromString(value).order_id
        elif kind == PLACED:
            order_id = order_events_pb2.OrderPlaced.FromString(value).order.order_id
        else:
            order_id = order_events_pb2.OrderReserved.FromString(value).order.order_id
        times = self.stages.setdefault(order_id, {})
        # ce_time: the service's state change; the record's timestamp: its relay's produce.
        times[f"{step}_changed"] = parse_time(headers["ce_time"]).timestamp()
        times[f"{step}_sent"] = msg.timestamp()[1] / 1000

    def breakdown(self, sent: dict[str, float]) -> dict[str, dict[str, float]]:
        """Median and p99 of each step over the given orders (order id -> PlaceOrder sent)."""
        parts: dict[str, list[float]] = {name: [] for name, _, _ in BREAKDOWN}
        for order_id, t0 in sent.items():
            times = {"sent": t0, **self.stages.get(order_id, {})}
            for name, start, end in BREAKDOWN:
                if start in times and end in times:
                    parts[name].append((times[end] - times[start]) * 1000)
        out = {}
        for name, values in parts.items():
            ordered = sorted(values)
            out[name] = {
                "n": len(ordered),
                "p50_ms": round(percentile(ordered, 50), 1),
                "p99_ms": round(percentile(ordered, 99), 1),
            }
        return out

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._consumer.close()


def _settle(
    future: asyncio.Future[tuple[float, float]], outcome: tuple[float, float] | str
) -> None:
    if future.done():
        return
    if isinstance(outcome, str):
        future.set_exception(RuntimeError(outcome))
    else:
        future.set_result(outcome)


# --- the load ---------------------------------------------------------------------------------


class Buyers:
    def __init__(self, commerce_address: str, catalog_address: str) -> None:
        import grpc

        from shopstream.catalog.v1 import catalog_service_pb2_grpc
        from shopstream.commerce.v1 import commerce_service_pb2_grpc
        from shopstream_commerce.settings import CommerceSettings
        from shopstream_platform.grpc.auth import TokenCodec

        self.tokens = TokenCodec(CommerceSettings().auth)
        self._channels = [
            grpc.aio.insecure_channel(commerce_address),
            grpc.aio.insecure_channel(catalog_address),
        ]
        self.commerce = commerce_service_pb2_grpc.CommerceServiceStub(self._channels[0])
        self.catalog = catalog_service_pb2_grpc.CatalogServiceStub(self._channels[1])
        self._auth: dict[tuple[str, str], tuple[tuple[str, str]]] = {}

    def auth(self, role: str, who: str) -> tuple[tuple[str, str]]:
        token = self._auth.get((role, who))
        if token is None:
            token = self._auth[(role, who)] = (
                ("authorization", f"Bearer {self.tokens.mint(role, who)}"),
            )
        return token

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close()


async def seed(b: Buyers, products: int, stock: int) -> list[str]:
    """One seller, approved products with one SKU each; returns the SKU ids once commerce
    accepts an order for each (it learns of SKUs from catalog's events)."""
    from shopstream.catalog.v1 import catalog_service_pb2 as cpb
    from shopstream.common.v1 import money_pb2

    seller = "bench-seller"
    await b.catalog.RegisterSeller(
        cpb.RegisterSellerRequest(seller_id=seller, display_name="Bench", country="GB"),
        metadata=b.auth("seller", seller),
        timeout=10,
    )
    skus = []
    for i in range(products):
        created = await b.catalog.CreateProduct(
            cpb.CreateProductRequest(
                seller_id=seller,
                title=f"Merino scarf {i}",
                category_id="fashion",
                brand="Acme",
                attributes={"material": "merino"},
                skus=[
                    cpb.NewSku(
                        sku_code="one",
                        price=money_pb2.Money(amount_minor=2_500, currency="GBP"),
                        stock={"w1": stock},
                    )
                ],
                idempotency_key=f"bench-{i}",
            ),
            metadata=b.auth("seller", seller),
            timeout=10,
        )
        await b.catalog.ReviewListing(
            cpb.ReviewListingRequest(
                product_id=created.product.product_id, decision=cpb.REVIEW_DECISION_APPROVE
            ),
            metadata=b.auth("admin", "bench"),
            timeout=10,
        )
        skus.append(created.product.skus[0].sku_id)
    return skus


async def place(b: Buyers, sku: str, n: int, tag: str) -> str:
    from shopstream.commerce.v1 import commerce_service_pb2 as pb

    buyer = f"buyer-{n % 997}"
    answer = await b.commerce.PlaceOrder(
        pb.PlaceOrderRequest(
            buyer_id=buyer,
            idempotency_key=f"{tag}-{n}",
            lines=[pb.OrderLineRequest(sku_id=sku, quantity=1)],
        ),
        metadata=b.auth("buyer", buyer),
        timeout=10,
    )
    return str(answer.order.order_id)


async def wait_known(b: Buyers, watch: ReservedWatch, skus: list[str]) -> None:
    """Commerce has heard of every SKU: an order of each is accepted and reserved."""
    import grpc

    for k, sku in enumerate(skus):
        for _ in range(300):
            try:
                order_id = await place(b, sku, k, "warm")
                await asyncio.wait_for(watch.expect(order_id), 30)
                break
            except grpc.aio.AioRpcError as exc:
                if "unknown SKU" not in (exc.details() or ""):
                    raise
                await asyncio.sleep(0.1)


async def throughput(
    b: Buyers, watch: ReservedWatch, skus: list[str], concurrency: int, seconds: float
) -> dict[str, Any]:
    from shopstream.commerce.v1 import commerce_service_pb2 as pb
    from shopstream.commerce.v1 import order_pb2

    start = time.monotonic() + 1.0
    end = start + seconds
    paid, errors = 0, 0
    first_error = ""
    counter = iter(range(10**9))

    async def caller() -> None:
        nonlocal paid, errors, first_error
        while time.monotonic() < end:
            n = next(counter)
            try:
                order_id = await place(b, skus[n % len(skus)], n, "tp")
                await asyncio.wait_for(watch.expect(order_id), 30)
                buyer = f"buyer-{n % 997}"
                answer = await b.commerce.PayOrder(
                    pb.PayOrderRequest(order_id=order_id, card_token="tok_visa"),
                    metadata=b.auth("buyer", buyer),
                    timeout=10,
                )
                if answer.order.state != order_pb2.ORDER_STATE_PAID:
                    raise RuntimeError(order_pb2.OrderState.Name(answer.order.state))
                if start <= time.monotonic() < end:
                    paid += 1
            except Exception as exc:  # counted, and the first one kept for the report
                errors += 1
                first_error = first_error or repr(exc)[:300]

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return {
        "concurrency": concurrency,
        "seconds": seconds,
        "orders_paid": paid,
        "orders_per_s": round(paid / seconds, 1),
        "errors": errors,
        "first_error": first_error,
    }


async def latency(
    b: Buyers, watch: ReservedWatch, skus: list[str], rate: float, seconds: float
) -> dict[str, Any]:
    n_orders = int(rate * seconds)
    t0 = time.monotonic() + 0.5
    to_reserved: list[float] = []
    to_seen: list[float] = []
    errors: list[str] = []
    sent_at: dict[str, float] = {}

    async def one(n: int) -> None:
        await asyncio.sleep(max(0.0, t0 + n / rate - time.monotonic()))
        sent = time.time()
        try:
            order_id = await place(b, skus[n % len(skus)], n, "lat")
            sent_at[order_id] = sent
            changed, seen = await asyncio.wait_for(watch.expect(order_id), 120)
            to_reserved.append((changed - sent) * 1000)
            to_seen.append((seen - sent) * 1000)
        except Exception as exc:
            errors.append(repr(exc)[:300])

    late = 0.0
    tasks = [asyncio.ensure_future(one(n)) for n in range(n_orders)]
    await asyncio.gather(*tasks)
    late = time.monotonic() - (t0 + n_orders / rate)
    reserved, seen = sorted(to_reserved), sorted(to_seen)
    return {
        "rate_per_s": rate,
        "orders": n_orders,
        "reserved": len(reserved),
        "errors": len(errors),
        "first_error": errors[0] if errors else "",
        "place_to_reserved_ms": {
            q: round(percentile(reserved, v), 1) for q, v in (("p50", 50), ("p99", 99))
        },
        "place_to_seen_ms": {
            q: round(percentile(seen, v), 1) for q, v in (("p50", 50), ("p99", 99))
        },
        "max_ms": round(reserved[-1], 1) if reserved else None,
        "finished_s_after_schedule": round(late, 1),
        "breakdown": watch.breakdown(sent_at),
    }


# --- the floor: two bare Kafka hops --------------------------------------------------------------


def _echo(bootstrap: str, source: str, sink: str, stop: threading.Event) -> None:
    """Consume `source`, produce each record to `sink` (a bare hop, our producer settings)."""
    kafka = KafkaSettings(bootstrap_servers=bootstrap)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-echo-{uuid.uuid4().hex[:6]}",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 5,
        }
    )
    consumer.assign([TopicPartition(source, p, OFFSET_END) for p in range(6)])
    producer = Producer(producer_config(kafka, "bench-echo"))
    while not stop.is_set():
        for msg in consumer.consume(num_messages=1_000, timeout=0.05):
            if not msg.error():
                producer.produce(sink, msg.value(), msg.key())
        producer.poll(0)
    producer.flush(10)
    consumer.close()


def kafka_floor(bootstrap: str, rate: float, seconds: float, concurrency: int) -> dict[str, Any]:
    """Records through two bare hops (A -> echo -> B -> echo -> C): latency at `rate`, and the
    closed-loop rate with `concurrency` records in flight."""
    kafka = KafkaSettings(bootstrap_servers=bootstrap)
    tag = uuid.uuid4().hex[:6]
    a, b2, c = (f"bench.saga-floor-{x}.{tag}.v1" for x in "abc")
    ensure_topics(kafka, [scratch_topic_spec(t, 6) for t in (a, b2, c)])
    stop = threading.Event()
    echoes = [
        threading.Thread(target=_echo, args=(bootstrap, a, b2, stop), daemon=True),
        threading.Thread(target=_echo, args=(bootstrap, b2, c, stop), daemon=True),
    ]
    for e in echoes:
        e.start()
    sink = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-floor-{tag}",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 5,
        }
    )
    sink.assign([TopicPartition(c, p, OFFSET_END) for p in range(6)])
    arrived: dict[bytes, float] = {}
    slots = threading.Semaphore(concurrency)

    def read_sink() -> None:
        while not stop.is_set():
            for msg in sink.consume(num_messages=1_000, timeout=0.05):
                if not msg.error():
                    arrived[msg.key() or b""] = time.monotonic()
                    slots.release()

    reader = threading.Thread(target=read_sink, daemon=True)
    reader.start()
    producer = Producer(producer_config(kafka, "bench-floor"))
    # Warm-up, not timed: the idempotent producers' ids, the echoes' fetches in place.
    for i in range(20):
        producer.produce(a, b"x" * 200, f"w{i}".encode())
    producer.flush(30)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(f"w{i}".encode() not in arrived for i in range(20)):
        time.sleep(0.05)

    # Latency at the rate (open loop).
    n = int(rate * seconds)
    sent: dict[bytes, float] = {}
    t0 = time.monotonic()
    for i in range(n):
        time.sleep(max(0.0, t0 + i / rate - time.monotonic()))
        key = f"l{i}".encode()
        sent[key] = time.monotonic()
        producer.produce(a, b"x" * 200, key)
        producer.poll(0)
    producer.flush(10)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(k not in arrived for k in sent):
        time.sleep(0.1)
    lat = [(arrived[k] - t) * 1000 for k, t in sent.items() if k in arrived]
    # Closed loop: `concurrency` records in flight for `seconds`.
    slots = threading.Semaphore(concurrency)
    begin = len(arrived)
    end = time.monotonic() + seconds
    k = 0
    while time.monotonic() < end:
        if slots.acquire(timeout=0.05):
            producer.produce(a, b"x" * 200, f"c{k}".encode())
            producer.poll(0)
            k += 1
    done = len(arrived) - begin
    stop.set()
    for thread in (*echoes, reader):
        thread.join(10)
    sink.close()
    ordered = sorted(lat)
    return {
        "what": "two bare Kafka hops (produce, consume + produce, consume + produce, consume)",
        "rate_per_s": rate,
        "records": n,
        "seen": len(ordered),
        "latency_ms": {q: round(percentile(ordered, v), 1) for q, v in (("p50", 50), ("p99", 99))},
        "closed_loop_concurrency": concurrency,
        "closed_loop_records_per_s": round(done / seconds, 1),
    }


# --- main ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def cpu_of(procs: dict[str, int]) -> Iterator[dict[str, float]]:
    before = {k: proc_cpu_seconds(p) for k, p in procs.items()}
    out: dict[str, float] = {}
    yield out
    out.update({k: round(proc_cpu_seconds(p) - before[k], 2) for k, p in procs.items()})


async def run_db(args: argparse.Namespace, db: str) -> dict[str, Any]:
    print(f"  {db}: starting catalog and commerce")
    async with shop(args.bootstrap, db, args.pg_url) as services:
        b = Buyers(services["commerce"].address, services["catalog"].address)
        watch = ReservedWatch(args.bootstrap, asyncio.get_running_loop())
        try:
            skus = await seed(b, args.products, args.stock)
            await wait_known(b, watch, skus)
            pids = {k: s.proc.pid for k, s in services.items()}
            with cpu_of(pids) as cpu_tp:
                tp = await throughput(b, watch, skus, args.concurrency, args.seconds)
            tp["cpu_s"] = cpu_tp
            print(f"  {db}: {tp['orders_per_s']:,} orders/s paid at C={args.concurrency}")
            with cpu_of(pids) as cpu_lat:
                lat = await latency(b, watch, skus, args.rate, args.seconds)
            lat["cpu_s"] = cpu_lat
            for step, q in lat["breakdown"].items():
                print(f"    {step:50s} p50 {q['p50_ms']:>9,.1f}  p99 {q['p99_ms']:>9,.1f} ms")
            print(
                f"  {db}: at {args.rate:g}/s PlaceOrder -> RESERVED p50 "
                f"{lat['place_to_reserved_ms']['p50']} ms, p99 {lat['place_to_reserved_ms']['p99']}"
                f" ms ({lat['reserved']}/{lat['orders']}, errors {lat['errors']})"
            )
        finally:
            watch.close()
            await b.close()
    return {
        "throughput": tp,
        "latency": lat,
        "exit_codes": services["exit_codes"],
        "log_tails": services["log_tails"],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--bootstrap", default=None, help="a broker to use (default: one of the bench's own)"
    )
    parser.add_argument("--dbs", default="sqlite,postgres")
    parser.add_argument("--pg-url", default=os.environ.get("SHOPSTREAM_BENCH_PG_URL", DEFAULT_PG))
    parser.add_argument("--products", type=int, default=20)
    parser.add_argument("--stock", type=int, default=1_000_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rate", type=float, default=200.0, help="orders/s of the latency run")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    args.bootstrap = bench_bootstrap(args.bootstrap)
    result: dict[str, Any] = {
        "name": "order_saga",
        "machine": machine_facts(),
        "loadavg_1m_before": round(os.getloadavg()[0], 2),
        "target": f">= {TARGET_ORDERS_PER_S} orders/s; PlaceOrder -> RESERVED p99 <= "
        f"{TARGET_P99_MS:g} ms at 200 orders/s",
        "started": datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    print(f"order saga bench: broker {args.bootstrap}, dbs {args.dbs}")
    result["floor"] = kafka_floor(
        args.bootstrap, args.rate, min(args.seconds, 10), args.concurrency
    )
    f = result["floor"]
    print(
        f"  floor (two bare hops): p50 {f['latency_ms']['p50']} ms, p99 {f['latency_ms']['p99']}"
        f" ms at {args.rate:g}/s; {f['closed_loop_records_per_s']:,}/s closed loop"
    )
    result["runs"] = {}
    for db in [d.strip() for d in args.dbs.split(",") if d.strip()]:
        try:
            result["runs"][db] = asyncio.run(run_db(args, db))
        except Exception as exc:
            result["runs"][db] = {"failed": repr(exc)[:2_000]}
            print(f"  {db}: FAILED {exc!r}"[:2_000])
    result["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    os.chdir(REPO)
    main()
