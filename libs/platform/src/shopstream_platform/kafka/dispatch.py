"""One record's way through a consumer: decode by ce_type, route, handle with retries, or DLQ.

Shared by the confluent-kafka consumer loop (consumer.py) and Faust agents (faust_app.py), so a
poison pill is treated the same whichever reads it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf import symbol_database
from google.protobuf.message import Message as ProtoMessage

from shopstream_platform.db.errors import DbFailure, classify_db_error
from shopstream_platform.errors import DomainError, UnavailableError
from shopstream_platform.kafka.cloudevents import MissingHeaderError, headers_dict, parse_meta
from shopstream_platform.kafka.codec import (
    ProtobufCodec,
    UndecodableEventError,
    UnknownEventTypeError,
    type_name,
)
from shopstream_platform.kafka.dlq import DeadLetterPublisher
from shopstream_platform.kafka.events import (
    Event,
    Handler,
    InvalidEventError,
    Outcome,
    TransientError,
)
from shopstream_platform.kafka.topics import load_registry
from shopstream_platform.metrics import PlatformMetrics
from shopstream_platform.settings import ConsumerSettings
from shopstream_platform.tracing import (
    current_traceparent,
    current_tracestate,
    span,
    tracing_enabled,
)

log = logging.getLogger(__name__)

_UNPROCESSABLE = (
    MissingHeaderError,
    UnknownEventTypeError,
    UndecodableEventError,
    InvalidEventError,
)


# Python errors that a second attempt with the same input raises again.
_DETERMINISTIC = (ArithmeticError, ValueError, TypeError, LookupError, AttributeError)


def is_transient(error: BaseException, transient: tuple[type[BaseException], ...]) -> bool:
    """Whether a handler's failure is worth a retry: only when a retry can succeed.

    `transient` lists the types a consumer declared retryable (TransientError and timeouts
    always are). A declared type still is not transient when the failure is deterministic: an
    SQLAlchemy OperationalError is declared for a locked SQLite file or a lost connection, but
    SQLite also reports an overflowing SUM as one, and that fails again on every retry and after
    every restart; so do constraint violations, data errors and Python's value/arithmetic errors.
    A deterministic failure goes to the DLQ with its reason instead of into a crash loop.
    """
    if isinstance(error, TransientError):
        return True
    return isinstance(error, transient) and not _is_deterministic(error)


def _is_deterministic(error: BaseException) -> bool:
    if isinstance(error, (InvalidEventError, *_DETERMINISTIC)):
        return True
    if isinstance(error, DomainError) and not isinstance(error, UnavailableError):
        return True  # the domain's own verdict on this input; "unavailable" may heal
    kind = classify_db_error(error)
    return kind is not None and kind is not DbFailure.TRANSIENT


@dataclass(frozen=True)
class RawRecord:
    """A consumed record, whichever client read it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, Any]] | Mapping[str, Any] | None


class ConsumerStalledError(RuntimeError):
    """A transient failure outlasted every retry; the record was not acknowledged."""


class Dispatcher:
    def __init__(
        self,
        *,
        group_id: str,
        routes: Mapping[type[ProtoMessage], Handler],
        dead_letters: DeadLetterPublisher,
        metrics: PlatformMetrics,
        settings: ConsumerSettings,
        transient: tuple[type[BaseException], ...] = (),
    ) -> None:
        self.group_id = group_id
        self._handlers = {type_name(t): h for t, h in routes.items()}
        self._codec = ProtobufCodec(routes)
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._settings = settings
        self._transient: tuple[type[BaseException], ...] = (
            TransientError,
            asyncio.TimeoutError,
            *transient,
        )

    async def dispatch(self, record: RawRecord) -> Outcome:
        """Handle one record; raises ConsumerStalledError when transient retries run out."""
        headers = headers_dict(record.headers)
        try:
            meta = parse_meta(headers)
            handler = self._handlers.get(meta.type)
            if handler is None:
                if declared_on(record.topic, meta.type):
                    return Outcome.IGNORED
                raise UnknownEventTypeError(
                    f"ce_type {meta.type!r} is not a known shopstream event"
                )
            message = self._codec.decode(meta.type, record.value)
        except _UNPROCESSABLE as exc:
            await self._dead_letters.send(record, self.group_id, exc)
            return Outcome.DEAD_LETTERED
        event: Event[ProtoMessage] = Event(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key.decode("utf-8", "replace") if record.key is not None else None,
            meta=meta,
            message=message,
            headers=headers,
        )
        if tracing_enabled():
            return await self._traced(handler, event, record)
        tokens = (
            current_traceparent.set(meta.traceparent),
            current_tracestate.set(meta.tracestate),
        )
        try:
            return await self._call_with_retries(handler, event, record)
        finally:
            current_traceparent.reset(tokens[0])
            current_tracestate.reset(tokens[1])

    async def _traced(
        self, handler: Handler, event: Event[ProtoMessage], record: RawRecord
    ) -> Outcome:
        """The handling as a CONSUMER span, child of the record's traceparent."""
        attributes: dict[str, str | int | float | bool] = {
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.destination.name": event.topic,
            "messaging.destination.partition.id": str(event.partition),
            "messaging.kafka.offset": event.offset,
            "messaging.consumer.group.name": self.group_id,
            "messaging.message.id": event.meta.id,
            "cloudevents.event_type": event.meta.type,
        }
        with span(
            f"{event.topic} process",
            "consumer",
            event.meta.traceparent,
            event.meta.tracestate,
            attributes,
        ) as scope:
            outcome = await self._call_with_retries(handler, event, record)
            if scope is not None:
                scope.span.set_attribute("shopstream.outcome", outcome.value)
            return outcome

    async def _call_with_retries(
        self, handler: Handler, event: Event[ProtoMessage], record: RawRecord
    ) -> Outcome:
        delay = self._settings.backoff_initial_s
        for attempt in range(1, self._settings.max_attempts + 1):
            try:
                return await handler(event) or Outcome.PROCESSED
            except Exception as exc:
                if not is_transient(exc, self._transient):
                    return await self._dead_letter(record, event, exc)
                if attempt == self._settings.max_attempts:
                    raise ConsumerStalledError(
                        f"{event.topic}[{event.partition}]@{event.offset} failed {attempt} times: {exc!r}"
                    ) from exc
                m = self._metrics
                m.handler_retries.labels(m.service, event.topic, self.group_id).inc()
                log.warning(
                    "transient failure, retrying",
                    extra={
                        "topic": event.topic,
                        "offset": event.offset,
                        "attempt": attempt,
                        "error": repr(exc),
                    },
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._settings.backoff_max_s)
        raise AssertionError("unreachable")

    async def _dead_letter(
        self, record: RawRecord, event: Event[ProtoMessage], error: BaseException
    ) -> Outcome:
        """Park a record whose handling fails deterministically, with the reason, and move on
        rather than block the partition behind it forever."""
        if not isinstance(error, InvalidEventError):
            # Not declared invalid by the handler: possibly a bug, so keep the traceback.
            log.error(
                "handler failed deterministically; dead-lettering",
                extra={"topic": event.topic, "offset": event.offset, "error": repr(error)[:500]},
                exc_info=error,
            )
        await self._dead_letters.send(record, self.group_id, error)
        return Outcome.DEAD_LETTERED


def declared_on(topic: str, ce_type: str) -> bool:
    """A type the registry lists for the topic (or any generated shopstream type) is legitimate."""
    try:
        if ce_type in load_registry().get(topic).values:
            return True
    except KeyError:
        pass
    try:
        symbol_database.Default().GetSymbol(ce_type)
    except KeyError:
        return False
    return True
