"""The framework floor for GetProduct on this machine: a bare grpc.aio server (no interceptor,
no app, no database) whose GetProduct returns one pre-built response of the real size, loaded
by the same generator and settings as get_product_bench. What the catalog reaches relative
to this floor is the cost of our code; the floor itself is the cost of Python gRPC here.

Also times, in-process and single-threaded, the Python pieces of one real GetProduct on the
server side (interceptor entry/exit, cache lookup, view -> protobuf, serialization, metrics).

Not part of `make bench`; a diagnostic for when the GetProduct target is missed:

    uv run python bench/grpc_floor.py [-c 32] [-d 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import sys
import time
import timeit
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO, free_port, percentile, proc_cpu_seconds
from get_product_bench import _load_process


def sample_view() -> Any:
    from shopstream_catalog.domain.model import (
        ListingStatus,
        Money,
        ProductView,
        Reason,
        SkuView,
        StockView,
    )

    now = datetime.now(UTC)
    return ProductView(
        product_id="prd-0123456789abcdef",
        seller_id="bench-seller",
        title="Merino wool scarf no. 1",
        description="Soft merino wool, 180 x 30 cm, hand-finished fringes. " * 3,
        category_id="fashion",
        brand="Acme",
        attributes={"material": "merino wool", "care": "hand wash"},
        status=ListingStatus.ACTIVE,
        reasons=[Reason("REVIEW_APPROVED", "approved by review")],
        created_at=now,
        updated_at=now,
        version=2,
        skus=[
            SkuView(
                sku_id=f"sku-0123456789abcd{k}",
                sku_code=f"scarf-1-{c}",
                variant_attributes={"colour": c},
                price=Money(2_500 + k * 100, "GBP"),
                stock=[StockView("w1", 50, 0), StockView("w2", 20, 0)],
            )
            for k, c in enumerate(["red", "green", "blue"])
        ],
    )


MODES = {
    "bare": "grpc.aio server, GetProduct returns a pre-built response",
    "noop-interceptor": "+ a server interceptor that only calls continuation()",
    "platform-interceptor": "+ the real PlatformInterceptor (auth, trace, metrics) instead",
    "platform+convert": "+ view -> protobuf per call (convert.product_pb), as the catalog does",
}


def _serve(port: int, ready: Any, mode: str) -> None:
    import grpc

    from shopstream.catalog.v1 import catalog_service_pb2 as pb
    from shopstream.catalog.v1 import catalog_service_pb2_grpc
    from shopstream_catalog import convert
    from shopstream_catalog.api.policy import POLICY
    from shopstream_platform.grpc.auth import TokenCodec
    from shopstream_platform.grpc.interceptor import PlatformInterceptor
    from shopstream_platform.metrics import PlatformMetrics
    from shopstream_platform.settings import AuthSettings

    view = sample_view()
    response = pb.GetProductResponse(product=convert.product_pb(view))
    convert_each = mode == "platform+convert"

    class Floor(catalog_service_pb2_grpc.CatalogServiceServicer):
        async def GetProduct(self, request: Any, context: Any) -> Any:
            if convert_each:
                return pb.GetProductResponse(product=convert.product_pb(view))
            return response

    class Noop(grpc.aio.ServerInterceptor):
        async def intercept_service(self, continuation: Any, details: Any) -> Any:
            return await continuation(details)

    interceptors: list[Any] = []
    if mode == "noop-interceptor":
        interceptors = [Noop()]
    elif mode in ("platform-interceptor", "platform+convert"):
        metrics = PlatformMetrics("catalog")
        interceptors = [PlatformInterceptor(metrics, TokenCodec(AuthSettings()), POLICY)]

    async def main() -> None:
        server = grpc.aio.server(interceptors=interceptors, options=[("grpc.so_reuseport", 0)])
        catalog_service_pb2_grpc.add_CatalogServiceServicer_to_server(Floor(), server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        ready.set()
        await server.wait_for_termination()

    asyncio.run(main())


def micro_costs() -> dict[str, float]:
    """Microseconds per call of the server-side Python steps of one cached GetProduct."""
    import grpc

    from shopstream.catalog.v1 import catalog_service_pb2 as pb
    from shopstream_catalog import convert
    from shopstream_catalog.api.policy import POLICY
    from shopstream_catalog.cache import ProductCache
    from shopstream_platform.grpc import auth
    from shopstream_platform.grpc.interceptor import PlatformInterceptor
    from shopstream_platform.metrics import PlatformMetrics
    from shopstream_platform.settings import AuthSettings

    view = sample_view()
    cache = ProductCache(1000)
    cache.put(view, 0)
    metrics = PlatformMetrics("catalog")
    interceptor = PlatformInterceptor(metrics, auth.TokenCodec(AuthSettings()), POLICY)

    class Ctx:
        def invocation_metadata(self) -> Any:
            return (("user-agent", "grpc-python-asyncio/1"),)

    ctx = Ctx()
    metadata = dict(ctx.invocation_metadata())
    product = convert.product_pb(view)
    response = pb.GetProductResponse(product=product)
    steps = {
        "interceptor enter+exit (auth, traceparent)": lambda: interceptor._exit(
            interceptor._enter("GetProduct", metadata, None)
        ),
        "interceptor metrics+log (_record)": lambda: interceptor._record(
            "GetProduct", grpc.StatusCode.OK, time.perf_counter(), None
        ),
        "cache.get": lambda: cache.get(view.product_id),
        "convert.product_pb (view -> Product, 3 SKUs)": lambda: convert.product_pb(view),
        "GetProductResponse(product=...) (copy)": lambda: pb.GetProductResponse(product=product),
        "response.SerializeToString": response.SerializeToString,
        "GetProductRequest parse": lambda: pb.GetProductRequest.FromString(
            b"\n\x14prd-0123456789abcdef"
        ),
    }
    n = 20_000
    return {name: round(timeit.timeit(fn, number=n) / n * 1e6, 2) for name, fn in steps.items()}


def run_mode(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    if mode not in MODES:
        raise SystemExit(f"unknown mode {mode!r}")
    ctx = mp.get_context("spawn")
    port = free_port()
    ready = ctx.Event()
    server = ctx.Process(target=_serve, args=(port, ready, mode), name="grpc-floor-server")
    server.start()
    try:
        if not ready.wait(30):
            raise RuntimeError("floor server did not start")
        out = ctx.Queue()
        start_at = time.monotonic() + 4.0
        per = [args.concurrency // args.clients] * args.clients
        per[0] += args.concurrency - sum(per)
        loaders, offset = [], 0
        for c in per:
            address = f"127.0.0.1:{port}"
            load_args = (
                address,
                ["prd-0123456789abcdef"],
                c,
                start_at,
                args.warmup,
                args.duration,
                offset,
            )
            p = ctx.Process(target=_load_process, args=(load_args, out))
            p.start()
            loaders.append(p)
            offset += c
        measure_from = start_at + args.warmup
        time.sleep(max(0.0, measure_from - time.monotonic()))
        cpu0 = proc_cpu_seconds(server.pid)  # type: ignore[arg-type]
        time.sleep(max(0.0, measure_from + args.duration - time.monotonic()))
        cpu1 = proc_cpu_seconds(server.pid)  # type: ignore[arg-type]
        results = [out.get(timeout=60) for _ in loaders]
        for p in loaders:
            p.join(10)
    finally:
        server.kill()
        server.join(10)
    if any("failure" in r for r in results):
        raise RuntimeError(str([r.get("failure") for r in results]))
    lat = sorted(x * 1000 for r in results for x in r["latencies_s"])
    return {
        "mode": mode,
        "description": MODES[mode],
        "concurrency": args.concurrency,
        "clients": args.clients,
        "requests_per_s": round(len(lat) / args.duration, 1),
        "latency_ms": {q: round(percentile(lat, v), 3) for q, v in (("p50", 50), ("p99", 99))},
        "errors": sum(sum(r["errors"].values()) for r in results),
        "server_cpu_cores": round((cpu1 - cpu0) / args.duration, 2),
        "server_cpu_us_per_request": round((cpu1 - cpu0) / max(1, len(lat)) * 1e6, 1),
        "client_cpu_cores": round(sum(r["cpu_s"] for r in results) / args.duration, 2),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--concurrency", type=int, default=32)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("-d", "--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument(
        "--modes", default=",".join(MODES), help="comma list of: " + ", ".join(MODES)
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    print("server-side Python steps of one cached GetProduct (us per call, in-process):")
    costs = micro_costs()
    for name, us in costs.items():
        print(f"  {name:48s} {us:7.2f}")

    runs = []
    for mode in args.modes.split(","):
        run = run_mode(mode, args)
        runs.append(run)
        print(
            f"  {mode:22s} C={args.concurrency}: {run['requests_per_s']:>7,.0f} req/s, "
            f"p50 {run['latency_ms']['p50']:.2f} p99 {run['latency_ms']['p99']:.2f} ms, "
            f"server CPU {run['server_cpu_cores']} cores = {run['server_cpu_us_per_request']} "
            f"us/req, client CPU {run['client_cpu_cores']} cores"
        )
    result = {"name": "grpc_floor", "micro_us": costs, "runs": runs}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    os.chdir(REPO)
    main()
