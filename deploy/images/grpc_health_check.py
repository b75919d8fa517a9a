"""Container health check: asks the service's standard gRPC health service whether it is SERVING.

Docker's HEALTHCHECK (and compose) run it over plaintext. On Kubernetes the prod overlay runs it
as the exec probe of pods that serve gRPC over TLS: the kubelet's built-in gRPC probe speaks
plaintext only, so it cannot ask a TLS-only server anything.

    grpc_health_check.py [PORT_ENV] [--tls-ca FILE --server-name NAME]

PORT_ENV names the environment variable that holds the service's gRPC port, so the check follows
the same setting the service reads (SHOPSTREAM_<SERVICE>_GRPC__PORT, default 50051). With
--tls-ca the check speaks TLS and verifies the server's certificate as any client would: against
that CA, for NAME (one of the certificate's DNS names; the check dials 127.0.0.1, which no
certificate names). A certificate that expired, was issued by another CA or does not name NAME
fails the check, so a pod still serving a certificate past its end is restarted by liveness.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

DEFAULT_PORT = "50051"
# Below the probes' timeoutSeconds, which also has to cover this interpreter's start.
RPC_TIMEOUT_S = 2.0


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=Path(argv[0]).name if argv else "grpc_health_check")
    parser.add_argument("port_env", nargs="?", help="variable holding the gRPC port")
    parser.add_argument("--tls-ca", type=Path, help="PEM CA bundle: speak TLS, trust this CA")
    parser.add_argument("--server-name", help="the name to verify the certificate for")
    args = parser.parse_args(argv[1:])
    # Without a name the check would verify the certificate for "127.0.0.1": a certificate that
    # names the service's DNS names only would fail every probe.
    if (args.tls_ca is None) != (args.server_name is None):
        parser.error("--tls-ca and --server-name go together")
    return args


def channel(address: str, args: argparse.Namespace) -> grpc.Channel:
    if args.tls_ca is None:
        return grpc.insecure_channel(address)
    credentials = grpc.ssl_channel_credentials(root_certificates=args.tls_ca.read_bytes())
    return grpc.secure_channel(
        address, credentials, options=[("grpc.ssl_target_name_override", args.server_name)]
    )


def main(argv: list[str]) -> int:
    args = parse(argv)
    port = os.environ.get(args.port_env, DEFAULT_PORT) if args.port_env else DEFAULT_PORT
    try:
        with channel(f"127.0.0.1:{port}", args) as ch:
            response = health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=RPC_TIMEOUT_S
            )
    except OSError as exc:
        # The CA file is missing or unreadable (the secret is not mounted).
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    except grpc.RpcError as exc:
        # A failed handshake (wrong CA, wrong name, expired certificate, plaintext against TLS)
        # surfaces as UNAVAILABLE once the deadline passes; the details say which.
        print(f"unhealthy: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    print(status)
    return 0 if response.status == health_pb2.HealthCheckResponse.SERVING else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
