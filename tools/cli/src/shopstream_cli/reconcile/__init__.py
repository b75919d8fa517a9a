"""`shopstream reconcile`: every reported number recounted from the published topics alone.

The recount reads the topics (from a start time or the beginning), recomputes each number per
domain (one module each: orders, sellers, stock, commissions, live) independently of the
services' state, then asks the services over gRPC and lists every mismatch. Tests and the
simulator call `reconcile`; the CLI command is `shopstream_cli.reconcile.command`.
"""

from shopstream_cli.reconcile.report import Check, Mismatch, Report
from shopstream_cli.reconcile.run import reconcile
from shopstream_cli.reconcile.scope import Scope

__all__ = ["Check", "Mismatch", "Report", "Scope", "reconcile"]
