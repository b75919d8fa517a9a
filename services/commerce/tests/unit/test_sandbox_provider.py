import asyncio

import pytest

from shopstream_commerce.payments.provider import PaymentStatus, SandboxProvider


async def test_outcomes_by_card_token_are_deterministic() -> None:
    provider = SandboxProvider(timeout_s=0.05)
    ok = await provider.charge(
        amount_minor=100, currency="GBP", card_token="tok_visa", idempotency_key="o1"
    )
    again = await provider.charge(
        amount_minor=100, currency="GBP", card_token="tok_visa", idempotency_key="o1"
    )
    assert ok.status == PaymentStatus.SUCCEEDED and ok == again
    declined = await provider.charge(
        amount_minor=100, currency="GBP", card_token="tok_decline", idempotency_key="o2"
    )
    assert declined.status == PaymentStatus.DECLINED and declined.message == "card declined"
    funds = await provider.charge(
        amount_minor=1, currency="GBP", card_token="tok_insufficient", idempotency_key="o3"
    )
    assert funds.message == "insufficient funds"


async def test_timeout_token_hangs_until_the_callers_deadline() -> None:
    provider = SandboxProvider(timeout_s=5)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(
            provider.charge(
                amount_minor=1, currency="GBP", card_token="tok_timeout", idempotency_key="o4"
            ),
            0.05,
        )
