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


async def test_cancel_makes_no_charge_final_and_refuses_later_requests(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.jsonl"
    provider = SandboxProvider(timeout_s=0.05, ledger_path=path)
    first = await provider.cancel(idempotency_key="o9/a")
    assert first.cancelled and first.charge is None
    assert await provider.cancel(idempotency_key="o9/a") == first  # idempotent
    late = await provider.charge(
        amount_minor=400, currency="GBP", card_token="tok_visa", idempotency_key="o9/a"
    )
    assert late.status == PaymentStatus.DECLINED and "cancelled" in late.message
    assert await provider.retrieve(idempotency_key="o9/a") is None
    assert [e.kind for e in provider.entries] == ["cancel", "refused"]
    # The cancel is part of the provider's records: a new process refuses the key too.
    again = SandboxProvider(timeout_s=0.05, ledger_path=path)
    refused = await again.charge(
        amount_minor=400, currency="GBP", card_token="tok_visa", idempotency_key="o9/a"
    )
    assert refused.status == PaymentStatus.DECLINED
    assert again.balances() == {} == balances(read_ledger(path))


async def test_cancel_after_a_charge_answers_with_the_charge() -> None:
    provider = SandboxProvider(timeout_s=0.05)
    charged = await provider.charge(
        amount_minor=300, currency="GBP", card_token="tok_visa", idempotency_key="o10/a"
    )
    declined = await provider.charge(
        amount_minor=300, currency="GBP", card_token="tok_decline", idempotency_key="o10/b"
    )
    for key, answer in (("o10/a", charged), ("o10/b", declined)):
        found = await provider.cancel(idempotency_key=key)
        assert not found.cancelled and found.charge == answer
    assert provider.balances() == {"o10": (300, 0)}


async def test_a_stuck_request_charges_later_unless_its_intent_was_cancelled() -> None:
    provider = SandboxProvider(timeout_s=0.05, stuck_s=0.2)
    for key in ("o11/a", "o11/b"):
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(
                provider.charge(
                    amount_minor=600, currency="GBP", card_token="tok_stuck", idempotency_key=key
                ),
                0.02,
            )
        assert await provider.retrieve(idempotency_key=key) is None
    assert (await provider.cancel(idempotency_key="o11/b")).cancelled
    await asyncio.sleep(0.3)
    landed = await provider.retrieve(idempotency_key="o11/a")
    assert landed is not None and landed.status == PaymentStatus.SUCCEEDED
    assert await provider.retrieve(idempotency_key="o11/b") is None
    assert [(e.kind, e.key) for e in provider.entries] == [
        ("cancel", "o11/b"),
        ("charge", "o11/a"),
        ("refused", "o11/b"),
    ]
    assert provider.balances() == {"o11": (600, 0)}


async def test_a_stuck_race_request_lands_between_retrieve_and_cancel() -> None:
    provider = SandboxProvider(timeout_s=0.05, stuck_s=60)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(
            provider.charge(
                amount_minor=800,
                currency="GBP",
                card_token="tok_stuck_race",
                idempotency_key="o12/a",
            ),
            0.02,
        )
    # "No such charge" ... and the request reaches the provider right after that answer.
    assert await provider.retrieve(idempotency_key="o12/a") is None
    too_late = await provider.cancel(idempotency_key="o12/a")
    assert not too_late.cancelled and too_late.charge is not None
    assert too_late.charge.status == PaymentStatus.SUCCEEDED
    assert provider.balances() == {"o12": (800, 0)}
