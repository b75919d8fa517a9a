"""The payment provider interface and the deterministic sandbox provider.

Sandbox card tokens:
- `tok_decline...` is declined, `tok_insufficient...` is declined for funds;
- `tok_timeout...` never answers and charges nothing (the caller's time-out decides);
- `tok_charge_timeout...` charges, then never answers (a provider that charged and timed out);
- `tok_slow...` charges, then answers after `slow_s` (a window to crash in between);
- anything else starting `tok_` succeeds; anything else is declined as invalid.

The same idempotency key always gets the same answer, as real providers promise, and `retrieve`
tells by idempotency key whether (and how) a charge happened. Refunds are full or partial, never
more than what is left of the charge, and idempotent by their own key. With `ledger_path` the
sandbox keeps its charges and refunds in an append-only file, so they survive a crash of the
commerce process the way a real provider's records do.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol


class PaymentStatus(enum.IntEnum):
    """Numbers equal shopstream.commerce.v1.PaymentStatus."""

    SUCCEEDED = 1
    DECLINED = 2
    TIMED_OUT = 3
    NOT_CHARGED = 4


@dataclass(frozen=True)
class PaymentResult:
    status: PaymentStatus
    payment_id: str
    message: str = ""


@dataclass(frozen=True)
class RefundResult:
    succeeded: bool
    refund_id: str
    payment_id: str
    amount_minor: int
    message: str = ""


class PaymentProvider(Protocol):
    name: str

    async def charge(
        self, *, amount_minor: int, currency: str, card_token: str, idempotency_key: str
    ) -> PaymentResult: ...

    async def retrieve(self, *, idempotency_key: str) -> PaymentResult | None:
        """The answer to the charge made under this key; None when no charge was made."""
        ...

    async def refund(
        self, *, payment_id: str, amount_minor: int, idempotency_key: str
    ) -> RefundResult:
        """Give back `amount_minor` of a charge (all of it or part); idempotent by key."""
        ...


@dataclass(frozen=True)
class LedgerEntry:
    """One line of the sandbox's own records: a charge attempt's answer or a refund."""

    kind: str  # "charge" or "refund"
    key: str  # the idempotency key of the call
    payment_id: str
    status: int  # PaymentStatus for charges, 1 for a refund
    amount_minor: int
    currency: str = ""
    message: str = ""
    refund_id: str = ""


def _payment_id(key: str) -> str:
    return "pay_" + hashlib.sha256(key.encode()).hexdigest()[:20]


def read_ledger(path: Path) -> list[LedgerEntry]:
    """The entries of a sandbox ledger file (a torn last line from a crash is skipped)."""
    if not path.exists():
        return []
    entries = []
    for line in path.read_text().splitlines():
        try:
            entries.append(LedgerEntry(**json.loads(line)))
        except (ValueError, TypeError):
            continue
    return entries


class SandboxProvider:
    name = "sandbox"

    def __init__(
        self, timeout_s: float, *, slow_s: float = 1.0, ledger_path: Path | None = None
    ) -> None:
        self._timeout_s = timeout_s
        self._slow_s = slow_s
        self._path = ledger_path
        self._answers: dict[str, PaymentResult] = {}
        self._amounts: dict[str, int] = {}  # payment id → amount charged
        self._refunded: dict[str, int] = {}  # payment id → amount refunded
        self._refunds: dict[str, RefundResult] = {}  # refund key → answer
        self.entries: list[LedgerEntry] = []
        if ledger_path is not None:
            ledger_path.parent.mkdir(parents=True, exist_ok=True)
            for entry in read_ledger(ledger_path):
                self._apply(entry)

    def _apply(self, entry: LedgerEntry) -> None:
        self.entries.append(entry)
        if entry.kind == "charge":
            self._answers[entry.key] = PaymentResult(
                PaymentStatus(entry.status), entry.payment_id, entry.message
            )
            if entry.status == PaymentStatus.SUCCEEDED:
                self._amounts[entry.payment_id] = entry.amount_minor
        else:
            self._refunds[entry.key] = RefundResult(
                True, entry.refund_id, entry.payment_id, entry.amount_minor
            )
            self._refunded[entry.payment_id] = (
                self._refunded.get(entry.payment_id, 0) + entry.amount_minor
            )

    def _record(self, entry: LedgerEntry) -> None:
        if self._path is not None:
            # One write per entry, flushed to disk before anyone hears the answer.
            fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, (json.dumps(asdict(entry)) + "\n").encode())
                os.fsync(fd)
            finally:
                os.close(fd)
        self._apply(entry)

    async def charge(
        self, *, amount_minor: int, currency: str, card_token: str, idempotency_key: str
    ) -> PaymentResult:
        if idempotency_key in self._answers:
            return self._answers[idempotency_key]
        payment_id = _payment_id(idempotency_key)
        if card_token.startswith("tok_timeout"):
            # Like a provider that hangs before charging: the caller's time-out decides.
            await asyncio.sleep(self._timeout_s)
            return PaymentResult(
                PaymentStatus.TIMED_OUT, payment_id, "provider did not answer in time"
            )
        if not card_token.startswith("tok_"):
            result = PaymentResult(PaymentStatus.DECLINED, payment_id, "invalid card token")
        elif card_token.startswith("tok_decline"):
            result = PaymentResult(PaymentStatus.DECLINED, payment_id, "card declined")
        elif card_token.startswith("tok_insufficient"):
            result = PaymentResult(PaymentStatus.DECLINED, payment_id, "insufficient funds")
        else:
            result = PaymentResult(PaymentStatus.SUCCEEDED, payment_id)
        self._record(
            LedgerEntry(
                "charge",
                idempotency_key,
                payment_id,
                int(result.status),
                amount_minor,
                currency,
                result.message,
            )
        )
        if card_token.startswith("tok_charge_timeout"):
            # Charged, and then the answer never comes.
            await asyncio.sleep(self._timeout_s)
            return PaymentResult(
                PaymentStatus.TIMED_OUT, payment_id, "provider did not answer in time"
            )
        if card_token.startswith("tok_slow"):
            await asyncio.sleep(self._slow_s)
        return result

    async def retrieve(self, *, idempotency_key: str) -> PaymentResult | None:
        return self._answers.get(idempotency_key)

    async def refund(
        self, *, payment_id: str, amount_minor: int, idempotency_key: str
    ) -> RefundResult:
        if idempotency_key in self._refunds:
            return self._refunds[idempotency_key]
        refund_id = "re_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:20]
        charged = self._amounts.get(payment_id)
        if charged is None:
            return RefundResult(False, refund_id, payment_id, amount_minor, "no such charge")
        left = charged - self._refunded.get(payment_id, 0)
        if not 0 < amount_minor <= left:
            return RefundResult(
                False, refund_id, payment_id, amount_minor, f"amount must be 1..{left}"
            )
        self._record(
            LedgerEntry("refund", idempotency_key, payment_id, 1, amount_minor, refund_id=refund_id)
        )
        return self._refunds[idempotency_key]

    def balances(self) -> dict[str, tuple[int, int]]:
        return balances(self.entries)


def balances(entries: list[LedgerEntry]) -> dict[str, tuple[int, int]]:
    """(charged, refunded) per idempotency-key prefix before '/' (commerce's keys: the order id)."""
    owners: dict[str, str] = {}
    totals: dict[str, tuple[int, int]] = {}
    for entry in entries:
        if entry.kind == "charge" and entry.status == PaymentStatus.SUCCEEDED:
            owner = entry.key.split("/", 1)[0]
            owners[entry.payment_id] = owner
            charged, refunded = totals.get(owner, (0, 0))
            totals[owner] = (charged + entry.amount_minor, refunded)
        elif entry.kind == "refund":
            owner = owners[entry.payment_id]
            charged, refunded = totals[owner]
            totals[owner] = (charged, refunded + entry.amount_minor)
    return totals
