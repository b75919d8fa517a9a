"""Batched table writes: nothing reaches the store or the changelog before the outputs it
accounts for are acknowledged."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shopstream.platform.v1 import heartbeat_pb2
from shopstream_platform.faust_batch import BatchedTable, OutputFailedError, StreamOutputs
from shopstream_platform.kafka.cloudevents import CloudEventMeta


class FakeProducer:
    """publish_acked returns a future the test settles, like a broker acknowledgement."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, asyncio.Future[None]]] = []

    def publish_acked(
        self, topic: str, key: str, message: Any, meta: CloudEventMeta
    ) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sent.append((topic, key, future))
        return future


class FakeTable:
    """The parts of a Faust table BatchedTable uses: data (the store) and send_changelog."""

    name = "fake"
    partitions = 6

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.changelog: list[tuple[int, str, Any]] = []

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def send_changelog(self, partition: int, key: str, value: Any) -> None:
        self.changelog.append((partition, key, value))

    def values(self) -> Any:
        return self.data.values()

    def items(self) -> Any:
        return self.data.items()

    def __len__(self) -> int:
        return len(self.data)


def meta() -> CloudEventMeta:
    from datetime import UTC, datetime

    return CloudEventMeta(
        "id", "t", "s", datetime.now(UTC), "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
    )


@pytest.fixture
def parts() -> tuple[FakeProducer, StreamOutputs, FakeTable, BatchedTable]:
    producer = FakeProducer()
    outputs = StreamOutputs(producer)  # type: ignore[arg-type]
    table = FakeTable()
    return producer, outputs, table, BatchedTable(table, outputs)


async def test_writes_are_visible_at_once_but_stored_only_after_the_outputs_are_acked(
    parts: tuple[FakeProducer, StreamOutputs, FakeTable, BatchedTable],
) -> None:
    producer, outputs, table, batched = parts
    outputs.publish("out", "k", heartbeat_pb2.Heartbeat(), meta())
    batched.set("k", {"n": 1}, partition=2)
    assert batched.get("k") == {"n": 1}
    assert table.data == {} and table.changelog == []

    flush = asyncio.create_task(batched.flush())
    await asyncio.sleep(0.01)
    assert not flush.done() and table.changelog == []  # waiting for the ack
    producer.sent[0][2].set_result(None)
    await flush
    assert table.data == {"k": {"n": 1}}
    assert table.changelog == [(2, "k", {"n": 1})]


async def test_several_writes_of_a_key_in_a_batch_are_one_changelog_record(
    parts: tuple[FakeProducer, StreamOutputs, FakeTable, BatchedTable],
) -> None:
    _, _, table, batched = parts
    for n in range(5):
        batched.set("k", {"n": n}, partition=1)
    await batched.flush()
    assert table.changelog == [(1, "k", {"n": 4})]
    await batched.flush()  # nothing dirty: nothing sent again
    assert len(table.changelog) == 1


async def test_a_value_set_during_the_flush_waits_for_the_next_one(
    parts: tuple[FakeProducer, StreamOutputs, FakeTable, BatchedTable],
) -> None:
    producer, outputs, table, batched = parts
    outputs.publish("out", "k", heartbeat_pb2.Heartbeat(), meta())
    batched.set("k", {"n": 1}, partition=0)
    flush = asyncio.create_task(batched.flush())
    await asyncio.sleep(0.01)
    # Another agent changes the key (and publishes) while the first flush waits.
    outputs.publish("out", "k", heartbeat_pb2.Heartbeat(), meta())
    batched.set("k", {"n": 2}, partition=0)
    producer.sent[0][2].set_result(None)
    await flush
    # The first flush wrote what it snapshotted; the newer value is still pending.
    assert table.changelog == [(0, "k", {"n": 1})]
    assert batched.get("k") == {"n": 2}
    second = asyncio.create_task(batched.flush())
    await asyncio.sleep(0.01)
    assert not second.done()
    producer.sent[1][2].set_result(None)
    await second
    assert table.changelog[-1] == (0, "k", {"n": 2})


async def test_a_failed_output_fails_the_flush_and_nothing_is_written(
    parts: tuple[FakeProducer, StreamOutputs, FakeTable, BatchedTable],
) -> None:
    producer, outputs, table, batched = parts
    outputs.publish("out", "k", heartbeat_pb2.Heartbeat(), meta())
    batched.set("k", {"n": 1}, partition=0)
    producer.sent[0][2].set_exception(RuntimeError("broker said no"))
    with pytest.raises(OutputFailedError, match="broker said no"):
        await batched.flush()
    assert table.data == {} and table.changelog == []


def test_a_partition_outside_the_table_is_refused(
    parts: tuple[FakeProducer, StreamOutputs, FakeTable, BatchedTable],
) -> None:
    _, _, _, batched = parts
    with pytest.raises(ValueError, match="co-partitioned"):
        batched.set("k", 1, partition=6)


async def test_flush_if_over_writes_only_past_the_limit() -> None:
    outputs = StreamOutputs(FakeProducer())  # type: ignore[arg-type]  # fake: publish_acked only
    table = FakeTable()
    batched = BatchedTable(table, outputs)
    batched.set("a", 1, 0)
    batched.set("b", 2, 1)
    await batched.flush_if_over(2)
    assert table.changelog == [] and batched.get("a") == 1
    batched.set("c", 3, 2)
    await batched.flush_if_over(2)
    assert sorted(key for _, key, _ in table.changelog) == ["a", "b", "c"]
    assert table.data == {"a": 1, "b": 2, "c": 3}


async def test_a_flush_waits_for_a_writer_holding_the_lock() -> None:
    outputs = StreamOutputs(FakeProducer())  # type: ignore[arg-type]  # fake: publish_acked only
    table = FakeTable()
    batched = BatchedTable(table, outputs)
    batched.set("a", {"n": 1}, 0)
    async with batched.lock:
        flushing = asyncio.create_task(batched.flush())
        await asyncio.sleep(0.01)
        assert not flushing.done() and table.changelog == []
        batched.get("a")["n"] = 2  # changed in place by the lock's holder
    await flushing
    assert table.changelog == [(0, "a", {"n": 2})]
