"""Catalog's use cases: one transaction per RPC or consumed event, outbox writes, cache drops."""
