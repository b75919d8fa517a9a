"""Which records a reconcile counts: a start time, and the sellers and creators it is about.

The shared broker holds millions of older records, and other stacks or tests publish beside
ours; a run or a test names the time it started and the ids it created. An aggregate is only
compared when its whole history is inside the window (see `Scope.complete`), so starting late
never reads as a mismatch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Scope:
    """`since`: read each topic from this time (None: from the beginning). `sellers` and
    `creators`: id prefixes (empty: everyone). With `since`, a creator is checked only when the
    caller names it by prefix: a creator has no birth event that says its history is complete."""

    since: datetime | None = None
    sellers: tuple[str, ...] = ()
    creators: tuple[str, ...] = ()

    def seller(self, seller_id: str) -> bool:
        return not self.sellers or seller_id.startswith(self.sellers)

    def creator(self, creator_id: str) -> bool:
        return not self.creators or creator_id.startswith(self.creators)

    @property
    def creators_complete(self) -> bool:
        """Whether every creator in scope has its whole ledger inside the window."""
        return self.since is None or bool(self.creators)

    def describe(self) -> str:
        parts = [f"since {self.since.isoformat()}" if self.since else "from the beginning"]
        if self.sellers:
            parts.append("sellers " + ", ".join(f"{p}*" for p in self.sellers))
        if self.creators:
            parts.append("creators " + ", ".join(f"{p}*" for p in self.creators))
        return "; ".join(parts)
