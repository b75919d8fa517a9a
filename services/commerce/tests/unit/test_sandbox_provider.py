import asyncio
from pathlib import Path

import pytest

from shopstream_commerce.payments.provider import (
    PaymentStatus,
    SandboxProvider,
    balances,
    read_ledger,
)


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


async def test_retrieve_tells_by_key_whether_a_charge_happened() -> None:
    provider = SandboxProvider(timeout_s=5)
    ok = await provider.charge(
        amount_minor=500, currency="GBP", card_token="tok_visa", idempotency_key="o5/a"
    )
    assert await provider.retrieve(idempotency_key="o5/a") == ok
    declined = await provider.charge(
        amount_minor=500, currency="GBP", card_token="tok_decline", idempotency_key="o5/b"
    )
    assert await provider.retrieve(idempotency_key="o5/b") == declined
    # A charge that hung before charging leaves nothing behind.
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(
            provider.charge(
                amount_minor=500, currency="GBP", card_token="tok_timeout", idempotency_key="o5/c"
            ),
            0.05,
        )
    assert await provider.retrieve(idempotency_key="o5/c") is None
    assert provider.balances() == {"o5": (500, 0)}


async def test_charge_timeout_token_charges_and_then_never_answers() -> None:
    provider = SandboxProvider(timeout_s=5)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(
            provider.charge(
                amount_minor=700,
                currency="GBP",
                card_token="tok_charge_timeout",
                idempotency_key="o6/a",
            ),
            0.05,
        )
    found = await provider.retrieve(idempotency_key="o6/a")
    assert found is not None and found.status == PaymentStatus.SUCCEEDED
    assert provider.balances() == {"o6": (700, 0)}


async def test_refunds_full_and_partial_never_more_than_charged_and_idempotent() -> None:
    provider = SandboxProvider(timeout_s=5)
    charge = await provider.charge(
        amount_minor=1_000, currency="GBP", card_token="tok_visa", idempotency_key="o7/a"
    )
    part = await provider.refund(
        payment_id=charge.payment_id, amount_minor=300, idempotency_key="r1"
    )
    assert part.succeeded and part.amount_minor == 300
    # The same key is the same refund, not a second one.
    assert (
        await provider.refund(payment_id=charge.payment_id, amount_minor=300, idempotency_key="r1")
        == part
    )
    too_much = await provider.refund(
        payment_id=charge.payment_id, amount_minor=701, idempotency_key="r2"
    )
    assert not too_much.succeeded and "1..700" in too_much.message
    rest = await provider.refund(
        payment_id=charge.payment_id, amount_minor=700, idempotency_key="r3"
    )
    assert rest.succeeded
    unknown = await provider.refund(payment_id="pay_nope", amount_minor=1, idempotency_key="r4")
    assert not unknown.succeeded
    assert provider.balances() == {"o7": (1_000, 1_000)}


async def test_ledger_file_survives_a_new_provider(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.jsonl"
    first = SandboxProvider(timeout_s=5, ledger_path=path)
    charge = await first.charge(
        amount_minor=900, currency="GBP", card_token="tok_slow", idempotency_key="o8/a"
    )
    await first.refund(payment_id=charge.payment_id, amount_minor=100, idempotency_key="r")
    with path.open("a") as torn:
        torn.write('{"kind": "charge", "key"')  # a crash mid-write
    second = SandboxProvider(timeout_s=5, ledger_path=path)
    assert await second.retrieve(idempotency_key="o8/a") == charge
    assert second.balances() == {"o8": (900, 100)} == balances(read_ledger(path))
    refused = await second.refund(
        payment_id=charge.payment_id, amount_minor=801, idempotency_key="x"
    )
    assert not refused.succeeded
