from shopstream_platform.tracing import child_traceparent, new_traceparent


def test_child_keeps_trace_id_and_changes_span() -> None:
    parent = new_traceparent()
    child = child_traceparent(parent)
    assert child.split("-")[1] == parent.split("-")[1]
    assert child.split("-")[2] != parent.split("-")[2]


def test_malformed_parent_starts_a_new_trace() -> None:
    assert len(child_traceparent("garbage").split("-")) == 4


def test_off_records_carry_a_child_of_the_current_context_and_its_tracestate() -> None:
    from datetime import UTC, datetime

    from shopstream_platform.kafka.cloudevents import CloudEventMeta, parse_meta
    from shopstream_platform.tracing import (
        current_traceparent,
        current_tracestate,
        outgoing_traceparent,
        tracing_enabled,
    )

    assert not tracing_enabled()
    parent = new_traceparent()
    tokens = current_traceparent.set(parent), current_tracestate.set("vendor=1")
    try:
        outgoing = outgoing_traceparent()
        assert outgoing.split("-")[1] == parent.split("-")[1] and outgoing != parent
        meta = CloudEventMeta(
            "id-1",
            "t",
            "s",
            datetime.now(UTC),
            traceparent=outgoing,
            tracestate=current_tracestate.get(),
        )
        assert ("tracestate", "vendor=1") in meta.text_headers()
        assert parse_meta(dict(meta.text_headers())).tracestate == "vendor=1"
    finally:
        current_traceparent.reset(tokens[0])
        current_tracestate.reset(tokens[1])


def test_on_a_span_is_the_current_context_and_its_records_point_at_it() -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    from shopstream_platform.tracing import (
        configure_tracing,
        current_traceparent,
        outgoing_traceparent,
        record_span,
        shutdown_tracing,
        span,
    )

    exporter = InMemorySpanExporter()
    configure_tracing("test", exporter, batch=False)
    try:
        parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        with span("work", "consumer", parent, "vendor=7", {"k": "v"}) as scope:
            assert scope is not None
            inside = current_traceparent.get()
            assert inside is not None and outgoing_traceparent() == inside
            record_span("t publish", "producer", inside, None, 1, {})
        assert current_traceparent.get() is None
        published, work = exporter.get_finished_spans()
        assert work.kind == SpanKind.CONSUMER and work.name == "work"
        assert work.context.trace_id == int(parent.split("-")[1], 16)
        assert work.parent is not None and work.parent.span_id == int(parent.split("-")[2], 16)
        assert work.context.trace_state.get("vendor") == "7"
        assert published.parent is not None and published.parent.span_id == work.context.span_id
        assert f"{work.context.span_id:016x}" in (inside or "")
    finally:
        shutdown_tracing()
