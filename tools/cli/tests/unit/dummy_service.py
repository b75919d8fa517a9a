"""A stand-in service for the stack tests: gRPC health SERVING on $DUMMY_PORT until SIGTERM.

With DUMMY_GRANDCHILD=1 it also starts a child that ignores SIGTERM and outlives it (as a stuck
combiner would), so `shopstream down` has to clear the whole process group.
"""

import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc


def main() -> int:
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    server.add_insecure_port(f"127.0.0.1:{os.environ['DUMMY_PORT']}")
    if os.environ.get("DUMMY_GRANDCHILD"):
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)",
            ]
        )
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    server.start()
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    server.stop(grace=1).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
