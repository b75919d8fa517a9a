"""Container health check: asks the service's standard gRPC health service whether it is SERVING.

Docker's HEALTHCHECK (and compose) run it; Kubernetes uses its built-in gRPC probe instead. The
argument names the environment variable that holds the service's gRPC port, so the check follows
the same setting the service reads (SHOPSTREAM_<SERVICE>_GRPC__PORT, default 50051).
"""

from __future__ import annotations

import os
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def main(argv: list[str]) -> int:
    port = os.environ.get(argv[1], "50051") if len(argv) > 1 else "50051"
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=2.0
            )
    except grpc.RpcError as exc:
        print(f"unhealthy: {exc.code().name}", file=sys.stderr)
        return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    print(status)
    return 0 if response.status == health_pb2.HealthCheckResponse.SERVING else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
