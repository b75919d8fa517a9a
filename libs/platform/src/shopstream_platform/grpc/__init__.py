"""gRPC plumbing: server bootstrap, auth, error mapping, metrics and access logs, clients."""
