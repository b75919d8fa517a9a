"""W3C trace context carried across Kafka and gRPC, and OpenTelemetry spans when tracing is on.

Off (the default), the `traceparent` of the work in progress is carried as it always was: a gRPC
call or a consumed record sets it, records and calls made meanwhile carry a child of it, and
`tracestate` travels along untouched. Nothing is recorded and the per-record cost stays a
context-variable read.

On (`SHOPSTREAM_TRACING__ENABLED=true`), each gRPC call (SERVER), outbox publish (PRODUCER, from
produce to the broker's ack) and record handling (CONSUMER, the Faust agents' included) is an
OpenTelemetry span whose parent is the incoming `traceparent`; the span's own context becomes the
current `traceparent`, so the records a handler writes point at that span and the next service's
span joins the same trace. The tracer provider is process-wide, like OpenTelemetry's own: the hot
paths check one module attribute instead of carrying a tracer through every call.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")

current_traceparent: ContextVar[str | None] = ContextVar("current_traceparent", default=None)
current_tracestate: ContextVar[str | None] = ContextVar("current_tracestate", default=None)


class TracingSettings(BaseModel):
    """SHOPSTREAM_TRACING__ENABLED=true turns spans on; they go to an OTLP collector over gRPC."""

    enabled: bool = False
    exporter: Literal["otlp", "console"] = "otlp"
    otlp_endpoint: str = "http://127.0.0.1:4317"
    # The share of new traces recorded; a trace started upstream follows its caller's decision.
    sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)


def new_traceparent() -> str:
    # Ids need to be unique, not unguessable: the module PRNG, not two urandom syscalls per
    # record (they showed in the stream workers' profile).
    return f"00-{random.getrandbits(128) or 1:032x}-{random.getrandbits(64) or 1:016x}-01"


def child_traceparent(parent: str | None) -> str:
    """Same trace, new span id; a fresh trace when the parent is missing or malformed."""
    if parent:
        match = _TRACEPARENT.match(parent)
        if match:
            return f"00-{match.group(1)}-{random.getrandbits(64) or 1:016x}-{match.group(3)}"
    return new_traceparent()


def outgoing_traceparent() -> str:
    """The traceparent to stamp on a record or call made now: with tracing on, the current span
    itself (so the receiver's span is its child); off, a child of the incoming context."""
    current = current_traceparent.get()
    if _state.tracer is not None and current:
        return current
    return child_traceparent(current)


# --- OpenTelemetry (imported only when tracing is configured) --------------------------------


@dataclass
class _State:
    tracer: Tracer | None = None
    provider: TracerProvider | None = None


_state = _State()


def tracing_enabled() -> bool:
    return _state.tracer is not None


def configure_tracing(
    service_name: str,
    exporter: SpanExporter,
    *,
    sample_ratio: float = 1.0,
    batch: bool = True,
) -> None:
    """Record spans to `exporter` from now on (once per process; later calls are ignored)."""
    if _state.provider is not None:
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    provider = TracerProvider(
        resource=Resource.create({"service.name": service_name}),
        sampler=ParentBased(TraceIdRatioBased(sample_ratio)),
    )
    processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    _state.provider = provider
    _state.tracer = provider.get_tracer("shopstream_platform")


def configure_from_settings(settings: TracingSettings, service_name: str) -> None:
    if not settings.enabled or _state.provider is not None:
        return
    exporter: SpanExporter
    if settings.exporter == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=settings.otlp_endpoint, insecure=True)
    configure_tracing(service_name, exporter, sample_ratio=settings.sample_ratio)


def flush_tracing(timeout_s: float = 5.0) -> None:
    if _state.provider is not None:
        _state.provider.force_flush(int(timeout_s * 1000))


def shutdown_tracing() -> None:
    """Flush and forget the provider (tests that configure their own exporter call this)."""
    provider = _state.provider
    _state.tracer = None
    _state.provider = None
    if provider is not None:
        provider.shutdown()


def format_traceparent(span: Span) -> str:
    context = span.get_span_context()
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def _parent_context(traceparent: str | None, tracestate: str | None) -> Any:
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier = {"traceparent": traceparent or ""}
    if tracestate:
        carrier["tracestate"] = tracestate
    return TraceContextTextMapPropagator().extract(carrier)


class SpanScope:
    """An open span that is the current trace context until `end` (which must run in the same
    context it was started in: the interceptor's and dispatcher's try/finally)."""

    __slots__ = ("_attached", "_span", "_tokens")

    def __init__(
        self,
        name: str,
        kind: str,
        traceparent: str | None,
        tracestate: str | None,
        attributes: Mapping[str, str | int | float | bool],
    ) -> None:
        from opentelemetry import context as otel_context
        from opentelemetry.trace import SpanKind, set_span_in_context

        assert _state.tracer is not None
        self._span = _state.tracer.start_span(
            name,
            context=_parent_context(traceparent, tracestate),
            kind=SpanKind[kind.upper()],
            attributes=dict(attributes),
        )
        trace_state = self._span.get_span_context().trace_state.to_header()
        self._tokens: tuple[Token[str | None], Token[str | None]] = (
            current_traceparent.set(format_traceparent(self._span)),
            current_tracestate.set(trace_state or tracestate),
        )
        self._attached = otel_context.attach(set_span_in_context(self._span))

    @property
    def span(self) -> Span:
        return self._span

    def end(self, error: str | None = None) -> None:
        from opentelemetry import context as otel_context
        from opentelemetry.trace import Status, StatusCode

        if error is not None:
            self._span.set_status(Status(StatusCode.ERROR, error))
        self._span.end()
        otel_context.detach(self._attached)
        current_traceparent.reset(self._tokens[0])
        current_tracestate.reset(self._tokens[1])


def start_span(
    name: str,
    kind: str,
    traceparent: str | None,
    tracestate: str | None = None,
    attributes: Mapping[str, str | int | float | bool] | None = None,
) -> SpanScope | None:
    """A span that is current until its `end`; None when tracing is off."""
    if _state.tracer is None:
        return None
    return SpanScope(name, kind, traceparent, tracestate, attributes or {})


@contextmanager
def span(
    name: str,
    kind: str,
    traceparent: str | None,
    tracestate: str | None = None,
    attributes: Mapping[str, str | int | float | bool] | None = None,
) -> Iterator[SpanScope | None]:
    scope = start_span(name, kind, traceparent, tracestate, attributes)
    if scope is None:
        yield None
        return
    error: str | None = None
    try:
        yield scope
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"[:200]
        raise
    finally:
        scope.end(error)


def record_span(
    name: str,
    kind: str,
    traceparent: str | None,
    tracestate: str | None,
    start_ns: int,
    attributes: Mapping[str, str | int | float | bool],
    error: str | None = None,
) -> None:
    """A finished span from `start_ns` to now (the relay's produce-to-ack), when tracing is on."""
    tracer = _state.tracer
    if tracer is None:
        return
    from opentelemetry.trace import SpanKind, Status, StatusCode

    finished = tracer.start_span(
        name,
        context=_parent_context(traceparent, tracestate),
        kind=SpanKind[kind.upper()],
        attributes=dict(attributes),
        start_time=start_ns,
    )
    if error is not None:
        finished.set_status(Status(StatusCode.ERROR, error))
    finished.end(time.time_ns())
