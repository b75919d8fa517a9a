"""A real service process: NOT_SERVING until Kafka answers, SERVING after, clean exit on SIGTERM."""

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shopstream_platform.settings import KafkaSettings
from shopstream_platform.testing import free_port

pytestmark = pytest.mark.integration


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def start_proxy(listen_port: int, target: str) -> asyncio.Server:
    """A TCP forwarder to Kafka: the service's bootstrap address starts answering when it starts."""
    host, port = target.split(",")[0].rsplit(":", 1)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    return await asyncio.start_server(handle, "127.0.0.1", listen_port)


async def health(port: int) -> int | None:
    """The overall health status, or None while the server does not answer."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            response = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=1
            )
        except grpc.aio.AioRpcError:
            return None
        return int(response.status)


async def wait_for_status(port: int, status: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await health(port) == status:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"health never became {status}; last {await health(port)}")


async def test_health_follows_kafka_and_sigterm_exits_zero(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    grpc_port, metrics_port, kafka_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "SHOPSTREAM_SAMPLE_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{kafka_port}",
        "SHOPSTREAM_SAMPLE_GRPC__PORT": str(grpc_port),
        "SHOPSTREAM_SAMPLE_METRICS_PORT": str(metrics_port),
        "SHOPSTREAM_SAMPLE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/sample.db",
        "SHOPSTREAM_SAMPLE_HEARTBEAT_INTERVAL_S": "0.5",
        "SHOPSTREAM_SAMPLE_LOG_FORMAT": "text",
    }
    service = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("sample_service.py"))],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    proxy = None
    try:
        # Up and answering, but Kafka is unreachable: NOT_SERVING, and it stays so.
        await wait_for_status(grpc_port, health_pb2.HealthCheckResponse.NOT_SERVING, 30)
        await asyncio.sleep(3)
        assert await health(grpc_port) == health_pb2.HealthCheckResponse.NOT_SERVING
        proxy = await start_proxy(kafka_port, kafka_settings.bootstrap_servers)
        await wait_for_status(grpc_port, health_pb2.HealthCheckResponse.SERVING, 60)
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics").read().decode()
        assert 'shopstream_ready{service="sample"} 1.0' in metrics

        # It consumes its own heartbeats through the inbox, visible in its metrics.
        deadline = time.monotonic() + 30
        while 'outcome="processed"' not in metrics and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            metrics = (
                urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics").read().decode()
            )
        assert "shopstream_events_consumed_total" in metrics and 'outcome="processed"' in metrics

        # A watcher sees SERVING flip to NOT_SERVING on SIGTERM, before the process exits.
        async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            watch = health_pb2_grpc.HealthStub(channel).Watch(
                health_pb2.HealthCheckRequest(service=""), timeout=30
            )
            first = await watch.read()
            assert first.status == health_pb2.HealthCheckResponse.SERVING
            service.send_signal(signal.SIGTERM)
            second = await watch.read()
            assert second.status == health_pb2.HealthCheckResponse.NOT_SERVING
            assert service.poll() is None
            watch.cancel()
        assert service.wait(30) == 0
    finally:
        if service.poll() is None:
            service.kill()
        stderr = service.stderr.read() if service.stderr else ""
        if proxy is not None:
            proxy.close()
    assert "shutting down" in stderr and "stopped" in stderr, stderr[-3000:]
