"""The payment provider interface and the deterministic sandbox provider.

Sandbox card tokens:
- `tok_decline...` is declined, `tok_insufficient...` is declined for funds;
- `tok_timeout...` never answers and charges nothing (the caller's time-out decides);
- `tok_charge_timeout...` charges, then never answers (a provider that charged and timed out);
- `tok_slow...` charges, then answers after `slow_s` (a window to crash in between);
- `tok_stuck...` never answers and charges nothing yet: the request is stuck in the provider's
  network and reaches it `stuck_s` later, when it charges unless the intent was cancelled;
- `tok_stuck_race...` is stuck in the provider's network like `tok_stuck...`, and reaches the
  provider at the worst moment: right after a `retrieve` of its key answered "no such charge",
  before the caller's `cancel` arrives (the race `cancel` exists for);
- anything else starting `tok_` succeeds; anything else is declined as invalid.

The same idempotency key always gets the same answer, as real providers promise, and `retrieve`
tells by idempotency key whether (and how) a charge happened so far. Only `cancel` makes "no
charge" final: it cancels the intent under the key so that no request can charge it any more, or,
when a charge got there first, answers with that charge. Refunds are full or partial, never
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
class CancelResult:
    """`cancel`'s answer: cancelled (nothing was charged under the key and nothing can be any
    more), or the attempt that reached the provider first (`charge`: charged or declined)."""

    cancelled: bool
    charge: PaymentResult | None = None


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
        """The answer to the charge made under this key; None when no charge was made *so far*
        (a request still in the provider's network may yet charge: only `cancel` is final)."""
        ...

    async def cancel(self, *, idempotency_key: str) -> CancelResult:
        """Cancel the payment intent under this key (idempotent): afterwards no request can
        charge it. Not cancelled when an attempt got there first: its answer comes back."""
        ...

    async def refund(
        self, *, payment_id: str, amount_minor: int, idempotency_key: str
    ) -> RefundResult:
        """Give back `amount_minor` of a charge (all of it or part); idempotent by key."""
        ...


@dataclass(frozen=True)
class LedgerEntry:
    """One line of the sandbox's own records: a charge attempt's answer or a refund."""

    # "charge", "refund", "cancel" (the intent under `key` was cancelled) or "refused" (a
    # request that reached the provider after its intent was cancelled: nothing charged)
    kind: str
    key: str  # the idempotency key of the call
    payment_id: str
    status: int  # PaymentStatus for charges, 1 for a refund
    amount_minor: int
    currency: str = ""
    message: str = ""
    refund_id: str = ""


@dataclass(frozen=True)
class _Stuck:
    """A charge request stuck in the provider's network."""

    amount_minor: int
    currency: str
    card_token: str
    race: bool  # lands right after a retrieve answered "no such charge"


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
        self,
        timeout_s: float,
        *,
        slow_s: float = 1.0,
        stuck_s: float = 30.0,
        ledger_path: Path | None = None,
    ) -> None:
        self._timeout_s = timeout_s
        self._slow_s = slow_s
        self._stuck_s = stuck_s
        self._path = ledger_path
        self._answers: dict[str, PaymentResult] = {}
        self._cancelled: set[str] = set()  # keys whose intent was cancelled
        # Requests stuck in the network, by key: they reach the provider later (in memory: they
        # die with the process that made them, like a connection).
        self._stuck: dict[str, _Stuck] = {}
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
        if entry.kind == "cancel":
            self._cancelled.add(entry.key)
        elif entry.kind == "refused":
            pass  # a record of a late request; nothing was charged
        elif entry.kind == "charge":
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
        if idempotency_key in self._cancelled:
            return self._refuse(idempotency_key, amount_minor, currency)
        if card_token.startswith("tok_stuck"):
            # Stuck in the network: no answer, and the provider hears of it only later.
            self._stuck[idempotency_key] = _Stuck(
                amount_minor, currency, card_token, card_token.startswith("tok_stuck_race")
            )
            asyncio.get_running_loop().call_later(self._stuck_s, self._arrive, idempotency_key)
            await asyncio.sleep(self._timeout_s)
            return PaymentResult(
                PaymentStatus.TIMED_OUT, payment_id, "provider did not answer in time"
            )
        if card_token.startswith("tok_timeout"):
            # Like a provider that hangs before charging: the caller's time-out decides.
            await asyncio.sleep(self._timeout_s)
            return PaymentResult(
                PaymentStatus.TIMED_OUT, payment_id, "provider did not answer in time"
            )
        result = self._charge_now(idempotency_key, amount_minor, currency, card_token)
        if card_token.startswith("tok_charge_timeout"):
            # Charged, and then the answer never comes.
            await asyncio.sleep(self._timeout_s)
            return PaymentResult(
                PaymentStatus.TIMED_OUT, payment_id, "provider did not answer in time"
            )
        if card_token.startswith("tok_slow"):
            await asyncio.sleep(self._slow_s)
        return result

    def _charge_now(
        self, key: str, amount_minor: int, currency: str, card_token: str
    ) -> PaymentResult:
        """The provider decides on a request that reached it, and records the answer."""
        payment_id = _payment_id(key)
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
                key,
                payment_id,
                int(result.status),
                amount_minor,
                currency,
                result.message,
            )
        )
        return result

    def _refuse(self, key: str, amount_minor: int, currency: str) -> PaymentResult:
        """A request for a cancelled intent: recorded as refused, nothing charged."""
        message = "payment intent was cancelled"
        payment_id = _payment_id(key)
        self._record(
            LedgerEntry(
                "refused",
                key,
                payment_id,
                int(PaymentStatus.DECLINED),
                amount_minor,
                currency,
                message,
            )
        )
        return PaymentResult(PaymentStatus.DECLINED, payment_id, message)

    def _arrive(self, key: str) -> None:
        """A stuck request reaches the provider: it charges unless its intent was cancelled."""
        stuck = self._stuck.pop(key, None)
        if stuck is None or key in self._answers:
            return
        if key in self._cancelled:
            self._refuse(key, stuck.amount_minor, stuck.currency)
            return
        self._charge_now(key, stuck.amount_minor, stuck.currency, stuck.card_token)

    async def retrieve(self, *, idempotency_key: str) -> PaymentResult | None:
        answer = self._answers.get(idempotency_key)
        stuck = self._stuck.get(idempotency_key)
        if answer is None and stuck is not None and stuck.race:
            # The answer "no such charge" is on its way back as the stuck request lands.
            self._arrive(idempotency_key)
        return answer

    async def cancel(self, *, idempotency_key: str) -> CancelResult:
        if idempotency_key in self._answers:
            return CancelResult(False, self._answers[idempotency_key])
        if idempotency_key not in self._cancelled:
            self._record(
                LedgerEntry(
                    "cancel",
                    idempotency_key,
                    _payment_id(idempotency_key),
                    0,
                    0,
                    message="cancelled",
                )
            )
        return CancelResult(True)

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
