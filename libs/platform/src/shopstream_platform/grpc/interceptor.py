"""The server interceptor: trace context, auth, request checks, error mapping, metrics and an
access log per RPC. Requests that do not decode, or carry out-of-range timestamps or negative page
sizes, answer INVALID_ARGUMENT before the servicer runs (grpc/requests.py).

All cross-cutting behaviour wraps the servicer method once here, so servicers hold domain calls
only. The principal is put in a context variable the servicer reads via `current_principal()`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeAlias

import grpc

from shopstream_platform.grpc import auth
from shopstream_platform.grpc.errors import rpc_status_for
from shopstream_platform.grpc.requests import check_request, tolerant_deserializer
from shopstream_platform.metrics import PlatformMetrics
from shopstream_platform.tracing import (
    SpanScope,
    child_traceparent,
    current_traceparent,
    current_tracestate,
    start_span,
    tracing_enabled,
)

log = logging.getLogger("shopstream.access")

# Infrastructure services every client may call without a token.
_OPEN_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
_SLOW_S = 0.5


# Subscripted only for the type checker: the runtime classes are not generic.
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


def _aborted_code(context: Context) -> grpc.StatusCode:
    """The code a servicer aborted with (grpc stubs claim code() is never None; it can be)."""
    code: grpc.StatusCode | None = context.code()
    return code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN


class PlatformInterceptor(grpc.aio.ServerInterceptor):
    def __init__(
        self, metrics: PlatformMetrics, codec: auth.TokenCodec, policy: auth.AccessPolicy
    ) -> None:
        self._metrics = metrics
        self._codec = codec
        self._policy = policy

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(details)
        full_method: str = details.method
        if handler is None or full_method.startswith(_OPEN_SERVICES):
            return handler
        method = full_method.rsplit("/", 1)[-1]
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(handler.unary_unary, method, full_method),
                # An undecodable body reaches the wrapper (INVALID_ARGUMENT), not grpc (UNKNOWN).
                request_deserializer=tolerant_deserializer(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(handler.unary_stream, method, full_method),  # type: ignore[arg-type]
                request_deserializer=tolerant_deserializer(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        # Client-streaming RPCs are not used by shopstream; pass them through unchanged.
        return handler

    def _open(self, full_method: str, context: Context) -> tuple[dict[str, str], SpanScope | None]:
        """The call's text metadata, and its SERVER span when tracing is on (which then is the
        current trace context; off, the context is a child of the caller's)."""
        metadata = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
        if not tracing_enabled():
            return metadata, None
        service, _, method = full_method.lstrip("/").rpartition("/")
        attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": method}
        scope = start_span(
            full_method.lstrip("/"),
            "server",
            metadata.get("traceparent"),
            metadata.get("tracestate"),
            attributes,
        )
        return metadata, scope

    def _enter(self, method: str, metadata: dict[str, str], scope: SpanScope | None) -> list[Any]:
        principal = auth.authorize(self._codec, self._policy, method, metadata.get("authorization"))
        if scope is not None:
            if principal is not None:
                scope.span.set_attribute("enduser.role", principal.role)
            traceparent = current_traceparent.get()
            tracestate = current_tracestate.get()
        else:
            traceparent = child_traceparent(metadata.get("traceparent"))
            tracestate = metadata.get("tracestate")
        return [
            auth._current.set(principal),
            current_traceparent.set(traceparent),
            current_tracestate.set(tracestate),
            principal,
        ]

    def _exit(self, tokens: list[Any]) -> None:
        auth._current.reset(tokens[0])
        current_traceparent.reset(tokens[1])
        current_tracestate.reset(tokens[2])

    @staticmethod
    def _close(scope: SpanScope | None, code: grpc.StatusCode) -> None:
        if scope is not None:
            scope.span.set_attribute("rpc.grpc.status_code", code.value[0])
            scope.end(None if code == grpc.StatusCode.OK else code.name)

    def _wrap_unary(
        self, behavior: Callable[..., Awaitable[Any]], method: str, full_method: str
    ) -> Callable[..., Awaitable[Any]]:
        async def wrapped(request: Any, context: Context) -> Any:
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            tokens: list[Any] | None = None
            principal = None
            metadata, scope = self._open(full_method, context)
            try:
                tokens = self._enter(method, metadata, scope)
                principal = tokens[3]
                check_request(request)
                return await behavior(request, context)
            except grpc.aio.AbortError:
                code = _aborted_code(context)
                raise
            except Exception as exc:
                status = rpc_status_for(exc, method)
                code = status.code
                await context.abort(status.code, status.message, status.trailing_metadata)
            finally:
                if tokens is not None:
                    self._exit(tokens)
                self._close(scope, code)
                self._record(method, code, started, principal)

        return wrapped

    def _wrap_stream(
        self, behavior: Callable[..., AsyncIterator[Any]], method: str, full_method: str
    ) -> Callable[..., AsyncIterator[Any]]:
        async def wrapped(request: Any, context: Context) -> AsyncIterator[Any]:
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            tokens: list[Any] | None = None
            principal = None
            metadata, scope = self._open(full_method, context)
            try:
                tokens = self._enter(method, metadata, scope)
                principal = tokens[3]
                check_request(request)
                async for item in behavior(request, context):
                    yield item
            except grpc.aio.AbortError:
                code = _aborted_code(context)
                raise
            except Exception as exc:
                status = rpc_status_for(exc, method)
                code = status.code
                await context.abort(status.code, status.message, status.trailing_metadata)
            finally:
                if tokens is not None:
                    self._exit(tokens)
                self._close(scope, code)
                self._record(method, code, started, principal)

        return wrapped

    def _record(
        self, method: str, code: grpc.StatusCode, started: float, principal: auth.Principal | None
    ) -> None:
        elapsed = time.perf_counter() - started
        m = self._metrics
        m.rpc_requests.labels(m.service, method, code.name).inc()
        m.rpc_duration.labels(m.service, method).observe(elapsed)
        # Successful fast calls log at DEBUG: at thousands of calls a second INFO would drown the rest.
        level = logging.DEBUG if code == grpc.StatusCode.OK and elapsed < _SLOW_S else logging.INFO
        if log.isEnabledFor(level):
            log.log(
                level,
                "rpc",
                extra={
                    "method": method,
                    "code": code.name,
                    "ms": round(elapsed * 1000, 2),
                    "caller": f"{principal.role}:{principal.id}" if principal else None,
                },
            )
