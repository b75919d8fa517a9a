"""GetProduct throughput and latency of one catalog service process.

Target (design): GetProduct >= 5,000 requests/s per process, p99 <= 5 ms.

Starts `python -m shopstream_catalog` on free loopback ports with a temporary SQLite database
(it needs the Kafka broker given by --bootstrap, like in production), waits for gRPC health
SERVING, creates one seller and --products products (--skus SKUs each), then runs a load
generator in separate process(es): grpc.aio, C concurrent in-flight GetProduct calls (closed
loop: each caller sends its next request when the previous answer arrives) over the product
ids, --warmup seconds discarded, then --duration seconds measured. Reports requests/s,
client-observed latency percentiles, errors, the service's CPU use (from /proc) and its own
server-side latency histogram (from /metrics); then stops the service with SIGTERM and checks
it exits 0.

Client and server share this machine's cores: the load generator's CPU is not available to
the service, so on a small machine the result is a lower bound for the service alone.

    uv run python bench/get_product_bench.py [--bootstrap 127.0.0.1:9092] [-c 32] [-d 15]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _broker import bench_bootstrap
from _common import (
    REPO,
    free_port,
    percentile,
    proc_cpu_seconds,
)

TARGET_RPS = 5_000
TARGET_P99_MS = 5.0


# --- load generator (runs in its own process) ------------------------------------------------


async def _load(
    address: str,
    product_ids: list[str],
    concurrency: int,
    start_at: float,
    warmup_s: float,
    duration_s: float,
    offset: int,
) -> dict[str, Any]:
    import grpc

    from shopstream.catalog.v1 import catalog_service_pb2 as pb
    from shopstream.catalog.v1 import catalog_service_pb2_grpc

    measure_from = start_at + warmup_s
    end = measure_from + duration_s
    requests = [pb.GetProductRequest(product_id=p) for p in product_ids]
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    warm = 0
    cpu: dict[str, float] = {}

    async with grpc.aio.insecure_channel(address) as channel:
        await asyncio.wait_for(channel.channel_ready(), timeout=10)
        stub = catalog_service_pb2_grpc.CatalogServiceStub(channel)
        call = stub.GetProduct

        async def caller(k: int) -> None:
            nonlocal warm
            i = offset + k
            n = len(requests)
            clock = time.monotonic
            while True:
                t0 = clock()
                if t0 >= end:
                    return
                request = requests[i % n]
                i += concurrency
                code = "OK"
                try:
                    await call(request, timeout=5)
                except grpc.aio.AioRpcError as exc:
                    code = exc.code().name
                t1 = clock()
                if measure_from <= t1 < end:
                    if code == "OK":
                        latencies.append(t1 - t0)
                    else:
                        errors[code] += 1
                elif t1 < measure_from:
                    warm += 1

        async def cpu_sampler() -> None:
            await asyncio.sleep(max(0.0, measure_from - time.monotonic()))
            r = resource.getrusage(resource.RUSAGE_SELF)
            cpu["start"] = r.ru_utime + r.ru_stime
            await asyncio.sleep(max(0.0, end - time.monotonic()))
            r = resource.getrusage(resource.RUSAGE_SELF)
            cpu["end"] = r.ru_utime + r.ru_stime

        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        await asyncio.gather(cpu_sampler(), *(caller(k) for k in range(concurrency)))

    return {
        "ok": len(latencies),
        "errors": dict(errors),
        "warmup_calls": warm,
        "latencies_s": latencies,
        "cpu_s": cpu.get("end", 0.0) - cpu.get("start", 0.0),
    }


def _load_process(args: tuple[Any, ...], out: Any) -> None:
    try:
        out.put(asyncio.run(_load(*args)))
    except BaseException as exc:  # report, never hang the parent
        out.put({"failure": repr(exc)})


# --- the service under test ------------------------------------------------------------------


class CatalogProcess:
    def __init__(self, bootstrap: str, workdir: Path, profile_to: Path | None = None) -> None:
        self.grpc_port = free_port()
        self.metrics_port = free_port()
        self.address = f"127.0.0.1:{self.grpc_port}"
        self.log_path = workdir / "catalog.log"
        env = {
            k: v
            for k, v in os.environ.items()
            # Our settings win over any the caller's shell exported for a dev catalog.
            if not k.startswith(("SHOPSTREAM_CATALOG_GRPC", "SHOPSTREAM_CATALOG_METRICS"))
        }
        env.update(
            {
                "SHOPSTREAM_CATALOG_GRPC__HOST": "127.0.0.1",
                "SHOPSTREAM_CATALOG_GRPC__PORT": str(self.grpc_port),
                "SHOPSTREAM_CATALOG_METRICS_HOST": "127.0.0.1",
                "SHOPSTREAM_CATALOG_METRICS_PORT": str(self.metrics_port),
                "SHOPSTREAM_CATALOG_DATABASE_URL": f"sqlite+aiosqlite:///{workdir}/catalog.db",
                "SHOPSTREAM_CATALOG_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
                "SHOPSTREAM_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
                "SHOPSTREAM_CATALOG_LOG_LEVEL": "WARNING",
                "SHOPSTREAM_LOG_LEVEL": "WARNING",
            }
        )
        self._log = self.log_path.open("wb")
        # Profiling the service (main thread: the event loop with the gRPC server) costs speed:
        # use it to see where time goes, not for the numbers.
        profile = ["-m", "cProfile", "-o", str(profile_to)] if profile_to else []
        self.proc = subprocess.Popen(
            [sys.executable, *profile, "-m", "shopstream_catalog"],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_serving(self, timeout_s: float) -> float:
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        started = time.monotonic()
        with grpc.insecure_channel(self.address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() - started < timeout_s:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"catalog exited with {self.proc.returncode} during start-up:\n{self.log_tail()}"
                    )
                try:
                    status = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1).status
                    if status == health_pb2.HealthCheckResponse.SERVING:
                        return time.monotonic() - started
                except grpc.RpcError:
                    pass
                time.sleep(0.25)
        raise RuntimeError(f"catalog not SERVING after {timeout_s:.0f}s:\n{self.log_tail()}")

    def cpu_seconds(self) -> float:
        return proc_cpu_seconds(self.proc.pid)

    def metrics_text(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())

    def stop(self, timeout_s: float = 60.0) -> tuple[int | None, float]:
        """SIGTERM, wait; SIGKILL if it does not exit. Returns (exit code, seconds taken)."""
        started = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                self._log.close()
                return None, time.monotonic() - started
        self._log.close()
        return self.proc.returncode, time.monotonic() - started


async def seed(address: str, products: int, skus: int) -> list[str]:
    """One seller and its products, every listing approved; returns the product ids."""
    import grpc

    from shopstream.catalog.v1 import catalog_pb2, catalog_service_pb2_grpc
    from shopstream.catalog.v1 import catalog_service_pb2 as pb
    from shopstream.common.v1 import money_pb2
    from shopstream_catalog.settings import CatalogSettings
    from shopstream_platform.grpc.auth import TokenCodec

    # The same auth settings (env included) the service reads, so the tokens verify.
    tokens = TokenCodec(CatalogSettings().auth)
    seller_id = "bench-seller"
    as_seller = [("authorization", f"Bearer {tokens.mint('seller', seller_id)}")]
    as_admin = [("authorization", f"Bearer {tokens.mint('admin', 'bench-admin')}")]
    colours = ["red", "green", "blue", "black", "white", "grey", "navy", "olive"]
    ids = []
    async with grpc.aio.insecure_channel(address) as channel:
        stub = catalog_service_pb2_grpc.CatalogServiceStub(channel)
        await stub.RegisterSeller(
            pb.RegisterSellerRequest(seller_id=seller_id, display_name="Bench Shop", country="GB"),
            metadata=as_seller,
            timeout=10,
        )
        for i in range(products):
            response = await stub.CreateProduct(
                pb.CreateProductRequest(
                    seller_id=seller_id,
                    title=f"Merino wool scarf no. {i}",
                    description="Soft merino wool, 180 x 30 cm, hand-finished fringes. " * 3,
                    category_id="fashion",
                    brand="Acme",
                    attributes={"material": "merino wool", "care": "hand wash"},
                    skus=[
                        pb.NewSku(
                            sku_code=f"scarf-{i}-{colours[k % len(colours)]}",
                            variant_attributes={"colour": colours[k % len(colours)]},
                            price=money_pb2.Money(amount_minor=2_500 + k * 100, currency="GBP"),
                            stock={"w1": 50, "w2": 20},
                        )
                        for k in range(skus)
                    ],
                    idempotency_key=f"bench-{i}",
                ),
                metadata=as_seller,
                timeout=10,
            )
            product = response.product
            if product.status == catalog_pb2.LISTING_STATUS_PENDING_REVIEW:
                await stub.ReviewListing(
                    pb.ReviewListingRequest(
                        product_id=product.product_id, decision=pb.REVIEW_DECISION_APPROVE
                    ),
                    metadata=as_admin,
                    timeout=10,
                )
            ids.append(product.product_id)
        # Every id answers before the load starts.
        for product_id in ids:
            await stub.GetProduct(pb.GetProductRequest(product_id=product_id), timeout=10)
    return ids


# --- server-side histogram from /metrics -----------------------------------------------------

_BUCKET = re.compile(
    r"^shopstream_rpc_duration_seconds_bucket\{(?P<labels>[^}]*)\} (?P<value>[0-9.e+-]+)$",
    re.MULTILINE,
)


def get_product_buckets(metrics_text: str) -> dict[float, float]:
    buckets = {}
    for m in _BUCKET.finditer(metrics_text):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m["labels"]))
        if labels.get("method") == "GetProduct":
            le = labels["le"]
            buckets[float("inf") if le == "+Inf" else float(le)] = float(m["value"])
    return buckets


def histogram_summary(before: dict[float, float], after: dict[float, float]) -> dict[str, Any]:
    """Server-side GetProduct handling times in the window (the interceptor's histogram: from
    the handler's start to its return, without gRPC transport and queueing). Quantiles are
    given as the bucket bound they fall under, i.e. upper bounds."""
    bounds = sorted(after)
    cumulative = [after[b] - before.get(b, 0.0) for b in bounds]
    total = cumulative[-1] if cumulative else 0.0
    if total <= 0:
        return {"count": 0}

    def bucket_bound_ms(q: float) -> float:
        for bound, count in zip(bounds, cumulative, strict=True):
            if count >= q * total:
                return bound * 1000
        return float("inf")

    under_5ms = next((c for b, c in zip(bounds, cumulative, strict=True) if b == 0.005), 0.0)
    return {
        "count": int(total),
        "p50_le_ms": bucket_bound_ms(0.50),
        "p99_le_ms": bucket_bound_ms(0.99),
        "share_under_5ms": round(under_5ms / total, 5),
    }


# --- one load level --------------------------------------------------------------------------


def run_level(
    catalog: CatalogProcess,
    ids: list[str],
    concurrency: int,
    clients: int,
    warmup_s: float,
    duration_s: float,
) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    # Spawned interpreters take ~1-2 s to import grpc and the protos: start together later.
    start_at = time.monotonic() + 4.0
    per_client = [
        concurrency // clients + (1 if k < concurrency % clients else 0) for k in range(clients)
    ]
    procs: list[Any] = []
    offset = 0
    for c in per_client:
        p = ctx.Process(
            target=_load_process,
            args=((catalog.address, ids, c, start_at, warmup_s, duration_s, offset), out),
            name=f"getproduct-load-{len(procs)}",
        )
        p.start()
        procs.append(p)
        offset += c
    measure_from, end = start_at + warmup_s, start_at + warmup_s + duration_s
    time.sleep(max(0.0, measure_from - time.monotonic()))
    server_cpu0, hist0 = catalog.cpu_seconds(), get_product_buckets(catalog.metrics_text())
    time.sleep(max(0.0, end - time.monotonic()))
    server_cpu1, hist1 = catalog.cpu_seconds(), get_product_buckets(catalog.metrics_text())
    results = []
    deadline = end + 30
    for _ in procs:
        results.append(out.get(timeout=max(1.0, deadline - time.monotonic())))
    for p in procs:
        p.join(timeout=max(1.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
    failures = [r["failure"] for r in results if "failure" in r]
    if failures:
        raise RuntimeError(f"load generator failed: {failures[0]}")

    latencies = sorted(x * 1000 for r in results for x in r["latencies_s"])
    errors: Counter[str] = Counter()
    for r in results:
        errors.update(r["errors"])
    ok = len(latencies)
    rps = ok / duration_s
    p99 = percentile(latencies, 99)
    n_errors = sum(errors.values())
    return {
        "concurrency": concurrency,
        "clients": clients,
        "duration_s": duration_s,
        "warmup_s": warmup_s,
        "requests_ok": ok,
        "errors": n_errors,
        "errors_by_code": dict(errors),
        "requests_per_s": round(rps, 1),
        "latency_ms": {
            "p50": round(percentile(latencies, 50), 3),
            "p95": round(percentile(latencies, 95), 3),
            "p99": round(p99, 3),
            "p999": round(percentile(latencies, 99.9), 3),
            "max": round(latencies[-1], 3) if latencies else float("nan"),
            "mean": round(sum(latencies) / ok, 3) if ok else float("nan"),
        },
        "server_cpu_cores": round((server_cpu1 - server_cpu0) / duration_s, 2),
        "server_cpu_us_per_request": round((server_cpu1 - server_cpu0) / ok * 1e6, 1)
        if ok
        else None,
        "client_cpu_cores": round(sum(r["cpu_s"] for r in results) / duration_s, 2),
        "server_histogram": histogram_summary(hist0, hist1),
        "target_met": rps >= TARGET_RPS and p99 <= TARGET_P99_MS and n_errors == 0,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--bootstrap", default=None, help="a broker to use (default: one of the bench's own)"
    )
    parser.add_argument(
        "-c",
        "--concurrency",
        default="32",
        help="in-flight calls; a comma list runs one level after another (default %(default)s)",
    )
    parser.add_argument("--clients", type=int, default=1, help="load generator processes")
    parser.add_argument("-d", "--duration", type=float, default=15.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=3.0, help="discarded seconds")
    parser.add_argument("--products", type=int, default=100)
    parser.add_argument("--skus", type=int, default=3)
    parser.add_argument("--startup-timeout", type=float, default=120.0)
    parser.add_argument(
        "--profile-server",
        type=Path,
        help="run the service under cProfile and write its stats here (slows it down)",
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    bootstrap = args.bootstrap = bench_bootstrap(args.bootstrap)
    levels = [int(c) for c in str(args.concurrency).split(",") if c.strip()]
    if not levels or min(levels) < 1 or args.clients < 1:
        raise SystemExit("concurrency and clients must be >= 1")

    print(
        f"GetProduct bench: catalog service + {args.products} products x {args.skus} SKUs, "
        f"concurrency {levels}, {args.clients} client process(es), "
        f"{args.warmup:g} s warm-up + {args.duration:g} s, Kafka {bootstrap}"
    )
    print(f"  note: client and server share this machine's {os.cpu_count()} cores")
    result: dict[str, Any] = {
        "name": "get_product",
        "target": f">= {TARGET_RPS} requests/s per process, p99 <= {TARGET_P99_MS} ms, 0 errors",
        "products": args.products,
        "skus_per_product": args.skus,
        "levels": [],
    }
    with tempfile.TemporaryDirectory(prefix="shopstream-bench-") as workdir:
        profile_to = args.profile_server.resolve() if args.profile_server else None
        catalog = CatalogProcess(bootstrap, Path(workdir), profile_to)
        exit_code: int | None = None
        try:
            ready_s = catalog.wait_serving(args.startup_timeout)
            seed_started = time.monotonic()
            ids = asyncio.run(seed(catalog.address, args.products, args.skus))
            print(
                f"  service SERVING after {ready_s:.1f} s (pid {catalog.proc.pid}, "
                f"{catalog.address}); seeded {len(ids)} products in "
                f"{time.monotonic() - seed_started:.1f} s"
            )
            for c in levels:
                level = run_level(catalog, ids, c, args.clients, args.warmup, args.duration)
                result["levels"].append(level)
                lat = level["latency_ms"]
                hist = level["server_histogram"]
                print(
                    f"  C={c:<3} {level['requests_per_s']:>8,.0f} req/s  p50 {lat['p50']:.2f}  "
                    f"p95 {lat['p95']:.2f}  p99 {lat['p99']:.2f}  max {lat['max']:.1f} ms  "
                    f"errors {level['errors']}  | CPU: service {level['server_cpu_cores']:.2f}, "
                    f"client {level['client_cpu_cores']:.2f} cores | in-handler p99 <= "
                    f"{hist.get('p99_le_ms', float('nan')):g} ms, "
                    f"{hist.get('share_under_5ms', 0) * 100:.2f}% under 5 ms"
                )
        finally:
            exit_code, stop_s = catalog.stop()
        result["exit_code"] = exit_code
        result["stop_s"] = round(stop_s, 2)
        print(f"  service stopped with SIGTERM: exit code {exit_code} in {stop_s:.1f} s")
        if exit_code != 0:
            print(catalog.log_tail())

    headline = result["levels"][0]
    result["requests_per_s"] = headline["requests_per_s"]
    result["latency_ms"] = headline["latency_ms"]
    result["errors"] = sum(level["errors"] for level in result["levels"])
    result["target_met"] = headline["target_met"] and exit_code == 0
    print(
        f"  result (C={headline['concurrency']}): {headline['requests_per_s']:,.0f} req/s, "
        f"p99 {headline['latency_ms']['p99']:.2f} ms, errors {headline['errors']}, exit {exit_code}"
        f" -> {'MET' if result['target_met'] else 'NOT MET'}"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    os.chdir(REPO)
    main()
