"""The Faust producer's flush is a barrier for table changelog records (platform faust_app.py).

Faust commits source offsets right after `producer.flush()`. Its own flush returned while a
changelog record was taken off its buffer but not yet handed to aiokafka, so a kill -9 right after
the commit lost the table update of an event whose offset was committed.
"""

import asyncio
from pathlib import Path
from typing import Any, cast

import pytest
from faust.exceptions import ProducerSendError
from faust.transport.drivers.aiokafka import Producer as AIOKafkaProducer
from faust.types.tuples import FutureMessage

from shopstream_platform.faust_app import ChangelogBarrierProducer, make_faust_app
from shopstream_platform.settings import KafkaSettings


def producer_with_record_in_flight(tmp_path: Path) -> tuple[ChangelogBarrierProducer, Any]:
    """The app's producer (never started: no broker needed) and a record handed to send_soon
    that Faust's buffer no longer holds, as when its sender task has just taken it."""
    app = make_faust_app(
        "unit-barrier",
        KafkaSettings(bootstrap_servers="127.0.0.1:9"),
        store="memory",
        data_dir=tmp_path,
    )
    producer = app.producer
    assert isinstance(producer, ChangelogBarrierProducer)
    producer.buffer.put = lambda fut: None  # type: ignore[method-assign]
    record = FutureMessage(cast(Any, None))
    producer.send_soon(record)
    return producer, record


async def test_flush_waits_until_every_record_sent_before_it_is_acknowledged(
    tmp_path: Path,
) -> None:
    producer, record = producer_with_record_in_flight(tmp_path)
    # Faust's own flush sees an empty buffer and returns at once: the bug.
    await asyncio.wait_for(AIOKafkaProducer.flush(producer), 1)

    flushing = asyncio.create_task(producer.flush())
    await asyncio.sleep(0.3)
    assert not flushing.done()
    record.set_result(None)
    await asyncio.wait_for(flushing, 1)
    # Settled records are not waited for again.
    await asyncio.wait_for(producer.flush(), 1)


async def test_a_failed_record_fails_the_flush_so_no_offset_is_committed(
    tmp_path: Path,
) -> None:
    producer, record = producer_with_record_in_flight(tmp_path)
    flushing = asyncio.create_task(producer.flush())
    await asyncio.sleep(0)
    record.set_exception(RuntimeError("broker said no"))
    with pytest.raises(ProducerSendError):
        await asyncio.wait_for(flushing, 1)
    # And every later flush (the next commit) too: the worker must restart and reprocess.
    with pytest.raises(ProducerSendError):
        await producer.flush()
