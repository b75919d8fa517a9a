"""Payments that cannot be lost: intents before charges, a sweeper for open ones, refunds.

`charge` commits a payment intent (with the idempotency key the provider will see) before the
provider is called, then completes it with the answer in one transaction: the attempt row and
`PaymentAttempted`, and on success the order's PAID transition. When no answer comes (time-out,
crash), the intent stays OPEN and `sweep` asks the provider by idempotency key later; when the
provider has no charge under the key, the sweeper cancels the provider-side intent before it
declares NOT_CHARGED (a request stuck in the provider's network could still charge after "no such
charge"), and a cancel that finds a charge completes the intent with it like any charge. A charge
for an order that can no longer be paid is recorded and refunded in full; refunds are queued in
the deciding transaction and sent after it commits (and again by `sweep` until the provider
confirms), each confirmed one published as `PaymentRefunded`.

Invariant, per order and in total, once the sweeper has run: charged - refunded at the provider
= succeeded attempts - confirmed refunds in commerce (`store.payments.money_by_order`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shopstream.commerce.v1 import payment_events_pb2 as pev
from shopstream_commerce import convert
from shopstream_commerce.domain import payments as intents
from shopstream_commerce.domain.payments import Answer, IntentState
from shopstream_commerce.domain.records import OrderRecord
from shopstream_commerce.payments.provider import PaymentProvider, PaymentResult, PaymentStatus
from shopstream_commerce.store import payments as store
from shopstream_commerce.store import repository as repo
from shopstream_commerce.usecases.context import Deps
from shopstream_commerce.usecases.transitions import OrderTransitions
from shopstream_platform.errors import FailedPreconditionError, UnavailableError
from shopstream_platform.ids import new_id

log = logging.getLogger(__name__)

PAYMENTS_TOPIC = "commerce.payments.v1"

# (session, order id, payment id, now) → the order after the attempt to mark it PAID, and whether
# it was payable (False: expired or cancelled meanwhile; nothing was changed).
SettleCharge = Callable[
    [AsyncSession, str, str, datetime], Awaitable[tuple[OrderRecord | None, bool]]
]

_ANSWERS = {
    PaymentStatus.SUCCEEDED: Answer.CHARGED,
    PaymentStatus.DECLINED: Answer.DECLINED,
    # Only ever the provider's confirmed cancel (`_ask_provider`): never "not found".
    PaymentStatus.NOT_CHARGED: Answer.CANCELLED,
    PaymentStatus.TIMED_OUT: Answer.UNKNOWN,
}


class _AlreadyCompleted(Exception):
    """Someone else completed the intent first (pay's late answer vs. the sweeper)."""


class Payments:
    def __init__(
        self,
        deps: Deps,
        transitions: OrderTransitions,
        provider: PaymentProvider,
        settle_charge: SettleCharge,
    ) -> None:
        self.deps = deps
        self.transitions = transitions
        self.provider = provider
        self._settle_charge = settle_charge

    # --- paying ---------------------------------------------------------------------------

    async def charge(
        self, order: OrderRecord, card_token: str, payable: Callable[[OrderRecord], None]
    ) -> tuple[OrderRecord, str]:
        """Charge the order's total: the paid order and payment id, or a domain error.

        `payable` re-checks the order inside the intent's transaction (raises when it may not
        be paid); the intent is committed before the provider hears of the charge.
        """
        intent_id = new_id("pi")
        intent = store.Intent(
            intent_id=intent_id,
            order_id=order.order_id,
            buyer_id=order.buyer_id,
            idempotency_key=f"{order.order_id}/{intent_id}",
            state=IntentState.OPEN,
            amount_minor=order.total_minor,
            currency=order.currency,
        )
        try:
            async with self.deps.db.transaction() as session:
                current = await self.transitions.load(session, order.order_id)
                payable(current)
                await store.insert_intent(session, intent, self.deps.now())
        except IntegrityError:
            raise FailedPreconditionError(
                f"a payment of order {order.order_id} is already in progress; "
                "it completes or is resolved with the provider shortly"
            ) from None
        try:
            result: PaymentResult | None = await asyncio.wait_for(
                self.provider.charge(
                    amount_minor=intent.amount_minor,
                    currency=intent.currency,
                    card_token=card_token,
                    idempotency_key=intent.idempotency_key,
                ),
                self.deps.settings.payment_timeout_s,
            )
        except TimeoutError:
            result = None
        except Exception as exc:
            log.warning("payment provider failed", extra={"error": repr(exc)})
            result = None
        if result is None or result.status == PaymentStatus.TIMED_OUT:
            await self._record_timeout(intent)
            raise UnavailableError(
                "payment provider did not answer in time; the payment is being resolved with "
                "the provider: the order becomes PAID if it was charged, or payable again"
            )
        state, paid = await self.complete(intent, result)
        if state == IntentState.SUCCEEDED and paid is not None:
            return paid, result.payment_id
        if state == IntentState.DECLINED:
            raise FailedPreconditionError(f"payment declined: {result.message}")
        if state in (IntentState.REFUND_DUE, IntentState.REFUNDED):
            raise FailedPreconditionError(
                f"order {order.order_id} can no longer be paid; "
                f"the charge {result.payment_id} is refunded"
            )
        raise UnavailableError(f"payment of order {order.order_id} is {state.name}; retry")

    async def _record_timeout(self, intent: store.Intent) -> None:
        now = self.deps.now()
        async with self.deps.db.transaction() as session:
            await self._attempted(
                session,
                intent,
                PaymentStatus.TIMED_OUT,
                "",
                "provider did not answer in time; resolving by idempotency key",
                now,
            )
            await store.touch_intent(session, intent.intent_id, now)

    async def complete(
        self, intent: store.Intent, result: PaymentResult
    ) -> tuple[IntentState, OrderRecord | None]:
        """Complete an OPEN intent with the provider's answer (NOT_CHARGED only once the provider
        cancelled the intent). Returns the intent's state and, when paid, the paid order."""
        status, payment_id, message = result.status, result.payment_id, result.message
        answer = _ANSWERS[status]
        if answer == Answer.UNKNOWN:
            return IntentState.OPEN, None
        now = self.deps.now()
        refund: store.ProviderRefund | None = None
        paid: OrderRecord | None = None
        try:
            async with self.deps.db.transaction() as session:
                order_payable = False
                if answer == Answer.CHARGED:
                    paid, order_payable = await self._settle_charge(
                        session, intent.order_id, payment_id, now
                    )
                target = intents.complete(intent.state, answer, order_payable)
                if target == IntentState.REFUND_DUE:
                    state_name = paid.state.name if paid is not None else "gone"
                    message = f"order is {state_name}: charge refunded in full"
                    paid = None
                    refund = store.ProviderRefund(
                        refund_key=f"{intent.intent_id}/refund",
                        order_id=intent.order_id,
                        buyer_id=intent.buyer_id,
                        payment_id=payment_id,
                        intent_id=intent.intent_id,
                        refund_id="",
                        cause=pev.REFUND_CAUSE_ORDER_NOT_PAYABLE,
                        state=store.REFUND_PENDING,
                        amount_minor=intent.amount_minor,
                        currency=intent.currency,
                    )
                    await store.insert_provider_refund(session, refund, now)
                if not await store.move_intent(
                    session, intent, target, now, payment_id=payment_id, message=message
                ):
                    raise _AlreadyCompleted
                await self._attempted(session, intent, status, payment_id, message, now)
        except _AlreadyCompleted:
            async with self.deps.db.read() as session:
                latest = await store.load_intent(session, intent.intent_id)
                assert latest is not None
                order = (await repo.load_orders(session, [intent.order_id])).get(intent.order_id)
            return latest.state, order if latest.state == IntentState.SUCCEEDED else None
        if refund is not None:
            self.deps.metrics.unpayable_charges.inc()
            log.warning(
                "charge for an order no longer payable; refunding",
                extra={"order_id": intent.order_id, "payment_id": payment_id},
            )
            return await self.send_refund(refund), None
        return target, paid

    async def _attempted(
        self,
        session: AsyncSession,
        intent: store.Intent,
        status: PaymentStatus,
        payment_id: str,
        message: str,
        at: datetime,
    ) -> None:
        await repo.record_payment(
            session,
            attempt_id=new_id("att"),
            payment_id=payment_id,
            order_id=intent.order_id,
            status=int(status),
            amount_minor=intent.amount_minor,
            currency=intent.currency,
            message=message[:500],
            at=at,
        )
        await self.deps.outbox.add(
            session,
            PAYMENTS_TOPIC,
            intent.order_id,
            pev.PaymentAttempted(
                payment_id=payment_id,
                order_id=intent.order_id,
                buyer_id=intent.buyer_id,
                amount=convert.money(intent.amount_minor, intent.currency),
                status=convert.payment_status_pb(status),
                message=message,
                provider=self.provider.name,
                at=convert.timestamp(at),
                intent_id=intent.intent_id,
                idempotency_key=intent.idempotency_key,
            ),
        )
        self.deps.metrics.payments.labels(status.name).inc()

    # --- refunds --------------------------------------------------------------------------

    async def queue_buyer_refund(
        self, session: AsyncSession, order: OrderRecord, refund_id: str, amount_minor: int
    ) -> store.ProviderRefund | None:
        """In the approving transaction: owe the buyer `amount_minor` of the order's charge."""
        if not order.payment_id or amount_minor <= 0:
            return None
        refund = store.ProviderRefund(
            refund_key=f"{order.order_id}/{refund_id}",
            order_id=order.order_id,
            buyer_id=order.buyer_id,
            payment_id=order.payment_id,
            intent_id="",
            refund_id=refund_id,
            cause=pev.REFUND_CAUSE_BUYER_REFUND,
            state=store.REFUND_PENDING,
            amount_minor=amount_minor,
            currency=order.currency,
        )
        await store.insert_provider_refund(session, refund, self.deps.now())
        return refund

    async def send_refund(self, refund: store.ProviderRefund) -> IntentState:
        """Ask the provider for the refund (idempotent by its key) and record the answer; it
        stays pending for the sweeper when the provider does not answer."""
        try:
            answer = await asyncio.wait_for(
                self.provider.refund(
                    payment_id=refund.payment_id,
                    amount_minor=refund.amount_minor,
                    idempotency_key=refund.refund_key,
                ),
                self.deps.settings.payment_timeout_s,
            )
        except Exception as exc:
            log.warning(
                "refund at provider did not complete; retrying later",
                extra={"order_id": refund.order_id, "error": repr(exc)},
            )
            return IntentState.REFUND_DUE
        now = self.deps.now()
        async with self.deps.db.transaction() as session:
            if not answer.succeeded:
                log.error(
                    "provider refused a refund",
                    extra={"order_id": refund.order_id, "error": answer.message},
                )
                await store.finish_refund(
                    session, refund.refund_key, store.REFUND_REFUSED, "", answer.message, now
                )
                return IntentState.REFUND_DUE
            if not await store.finish_refund(
                session, refund.refund_key, store.REFUND_DONE, answer.refund_id, "", now
            ):
                return IntentState.REFUNDED  # recorded by a concurrent sender
            if refund.intent_id:
                intent = await store.load_intent(session, refund.intent_id)
                if intent is not None and intent.state == IntentState.REFUND_DUE:
                    await store.move_intent(
                        session,
                        intent,
                        intents.refunded(intent.state),
                        now,
                        message="charge refunded in full",
                    )
            await self.deps.outbox.add(
                session,
                PAYMENTS_TOPIC,
                refund.order_id,
                pev.PaymentRefunded(
                    payment_id=refund.payment_id,
                    order_id=refund.order_id,
                    buyer_id=refund.buyer_id,
                    amount=convert.money(refund.amount_minor, refund.currency),
                    # Stored as the RefundCause number.
                    cause=cast("pev.RefundCause.ValueType", refund.cause),
                    refund_id=refund.refund_id,
                    provider_refund_id=answer.refund_id,
                    provider=self.provider.name,
                    at=convert.timestamp(now),
                    intent_id=refund.intent_id,
                ),
            )
        cause = "ORDER_NOT_PAYABLE" if refund.intent_id else "BUYER_REFUND"
        self.deps.metrics.provider_refunds.labels(cause).inc()
        return IntentState.REFUNDED

    # --- the sweeper ----------------------------------------------------------------------

    async def sweep(self) -> int:
        """Resolve intents left open (time-out, crash) by asking the provider by idempotency
        key, and send refunds still pending. Returns how many intents were resolved."""
        grace = max(
            self.deps.settings.payment_resolve_after_s, self.deps.settings.payment_timeout_s
        )
        async with self.deps.db.read() as session:
            due = await store.open_intents(session, self.deps.now() - timedelta(seconds=grace))
        resolved = 0
        for intent in due:
            result = await self._ask_provider(intent)
            state = IntentState.OPEN
            if result is not None:
                state, _ = await self.complete(intent, result)
            if state == IntentState.OPEN:
                # No final answer yet: ask again one interval later, not on the next run.
                async with self.deps.db.transaction() as session:
                    await store.touch_intent(session, intent.intent_id, self.deps.now())
                continue
            resolved += 1
            self.deps.metrics.intents_resolved.labels(state.name).inc()
        async with self.deps.db.read() as session:
            pending = await store.pending_refunds(session)
        for refund in pending:
            await self.send_refund(refund)
        return resolved

    async def _ask_provider(self, intent: store.Intent) -> PaymentResult | None:
        """What happened under the intent's key: the charge attempt the provider has, or
        NOT_CHARGED once the provider cancelled the intent; None when it did not answer.

        "No such charge" from `retrieve` is not final: a request stuck in the provider's network
        may still charge afterwards. So the intent is cancelled at the provider first; a cancel
        that finds a charge (it landed between retrieve and cancel) returns that charge, which
        then ends in a paid order or a refund like any other."""
        timeout = self.deps.settings.payment_timeout_s
        key = intent.idempotency_key
        try:
            found = await asyncio.wait_for(self.provider.retrieve(idempotency_key=key), timeout)
            if found is not None:
                return found
            cancel = await asyncio.wait_for(self.provider.cancel(idempotency_key=key), timeout)
        except Exception as exc:
            log.warning(
                "payment provider did not answer the sweeper",
                extra={"order_id": intent.order_id, "error": repr(exc)},
            )
            return None
        if cancel.cancelled:
            return PaymentResult(
                PaymentStatus.NOT_CHARGED,
                "",
                "no charge at the provider; its payment intent is cancelled",
            )
        if cancel.charge is None:  # a provider breaking its contract: ask again later
            log.error("provider refused a cancel without a charge", extra={"key": key})
            return None
        self.deps.metrics.charges_found_by_cancel.inc()
        log.warning(
            "the provider charged after answering 'no such charge'; completing with the charge",
            extra={"order_id": intent.order_id, "payment_id": cancel.charge.payment_id},
        )
        return cancel.charge
