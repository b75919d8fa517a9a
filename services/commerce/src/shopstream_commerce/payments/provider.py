"""The payment provider interface and the deterministic sandbox provider.

Sandbox card tokens: `tok_decline...` is declined, `tok_insufficient...` is declined for funds,
`tok_timeout...` never answers (the call times out), anything else starting `tok_` succeeds.
The same idempotency key always gets the same answer, as real providers promise.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
from dataclasses import dataclass
from typing import Protocol


class PaymentStatus(enum.IntEnum):
    """Numbers equal shopstream.commerce.v1.PaymentStatus."""

    SUCCEEDED = 1
    DECLINED = 2
    TIMED_OUT = 3


@dataclass(frozen=True)
class PaymentResult:
    status: PaymentStatus
    payment_id: str
    message: str = ""


class PaymentProvider(Protocol):
    name: str

    async def charge(
        self, *, amount_minor: int, currency: str, card_token: str, idempotency_key: str
    ) -> PaymentResult: ...


class SandboxProvider:
    name = "sandbox"

    def __init__(self, timeout_s: float) -> None:
        self._timeout_s = timeout_s
        self._answers: dict[str, PaymentResult] = {}

    async def charge(
        self, *, amount_minor: int, currency: str, card_token: str, idempotency_key: str
    ) -> PaymentResult:
        if idempotency_key in self._answers:
            return self._answers[idempotency_key]
        payment_id = "pay_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:20]
        if card_token.startswith("tok_timeout"):
            # Like a provider that hangs: the caller's time-out decides.
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
        self._answers[idempotency_key] = result
        return result
