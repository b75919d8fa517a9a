"""After-sales: refunds, returns and cancellations after payment, and the order's completion.

A buyer asks (RequestRefund with a type); the seller approves or rejects with a reason code; a
return travels back (ShipReturn, ReceiveReturn); a rejected refund or return may be escalated to
the platform, whose admin decides. Whenever a request reaches APPROVED the money goes back in the
same transaction: the order's lines are marked refunded, `OrderRefunded` is published (its order
CANCELLED for an approved cancellation, so catalog releases the stock), commissions are reversed
in proportion and a refund at the provider is queued and sent after the commit.

`approve_unanswered` is the seller's deadline: a request still REQUESTED
`seller_response_window_s` after it was made is approved by the platform on the seller's behalf
(marked `auto_approved`, also on its `OrderRefunded`), as TikTok Shop approves requests sellers
leave unanswered.

`complete_due` closes the after-sales window: a delivered order with no request open, once
`return_window_s` has passed, becomes COMPLETED (`OrderCompleted`); its creators' commissions and
its seller's net settle (usecases/settlements.py).
States and steps: domain/after_sales.py.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta

from google.protobuf.message import Message
from sqlalchemy.ext.asyncio import AsyncSession

from shopstream.commerce.v1 import order_events_pb2 as ev
from shopstream_commerce import convert
from shopstream_commerce.domain import after_sales as rules
from shopstream_commerce.domain import limits
from shopstream_commerce.domain import orders as saga
from shopstream_commerce.domain.after_sales import AfterSaleType, RequestState, Step
from shopstream_commerce.domain.limits import bounded
from shopstream_commerce.domain.money import prorated
from shopstream_commerce.domain.packages import Disposition
from shopstream_commerce.domain.records import OrderRecord, RefundRecord
from shopstream_commerce.store import repository as repo
from shopstream_commerce.store.payments import ProviderRefund
from shopstream_commerce.usecases.commissions import Commissions
from shopstream_commerce.usecases.context import Deps
from shopstream_commerce.usecases.fulfilment import Fulfilment
from shopstream_commerce.usecases.payments import Payments
from shopstream_commerce.usecases.settlements import SellerLedger
from shopstream_commerce.usecases.transitions import OrderTransitions
from shopstream_platform.errors import (
    ConflictError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
)
from shopstream_platform.grpc.auth import Principal, ensure_acts_for
from shopstream_platform.ids import new_id

log = logging.getLogger(__name__)

# RejectReason numbers (shopstream.commerce.v1): 1..7 are defined.
_REJECT_REASONS = range(1, 8)


class AfterSales:
    def __init__(
        self,
        deps: Deps,
        transitions: OrderTransitions,
        payments: Payments,
        commissions: Commissions,
        seller_ledger: SellerLedger,
        fulfilment: Fulfilment,
    ) -> None:
        self.deps = deps
        self.fulfilment = fulfilment
        self.transitions = transitions
        self.payments = payments
        self.commissions = commissions
        self.seller_ledger = seller_ledger

    # --- the buyer asks -------------------------------------------------------------------

    async def request(
        self,
        principal: Principal,
        order_id: str,
        wanted: dict[str, int],
        reason: str,
        kind: AfterSaleType,
    ) -> RefundRecord:
        if not reason.strip():
            raise InvalidArgumentError("reason", "is required")
        bounded("reason", reason, limits.REASON)
        if kind == AfterSaleType.CANCEL and wanted:
            raise InvalidArgumentError("lines", "a cancellation is of the whole order: no lines")
        async with self.deps.db.transaction() as session:
            order = await self.transitions.load(session, order_id)
            ensure_acts_for(principal, "buyer", order.buyer_id)
            self._eligible(order, kind)
            claimed = await repo.claimed_quantities(session, order_id)
            lines = {line.line_id: line for line in order.lines}
            open_units = {
                line_id: line.quantity - line.refunded_quantity - claimed.get(line_id, 0)
                for line_id, line in lines.items()
            }
            if kind == AfterSaleType.CANCEL and any(claimed.values()):
                raise FailedPreconditionError(
                    f"order {order_id} has an open after-sales request; it must end first"
                )
            if not wanted:
                wanted = {line_id: units for line_id, units in open_units.items() if units > 0}
                if not wanted:
                    raise FailedPreconditionError(f"nothing left to refund on order {order_id}")
            amounts: dict[str, int] = {}
            for line_id, quantity in wanted.items():
                if line_id not in lines:
                    raise InvalidArgumentError(
                        "lines.line_id",
                        f"line {bounded('lines.line_id', line_id, limits.ID)!r} "
                        f"is not part of {order_id}",
                    )
                if not 1 <= quantity <= open_units[line_id]:
                    raise InvalidArgumentError(
                        f"lines[{line_id}].quantity",
                        f"must be 1..{open_units[line_id]} (units not yet refunded or asked for)",
                    )
                line = lines[line_id]
                amounts[line_id] = prorated(line.total_minor, quantity, line.quantity)
            now = self.deps.now()
            refund = RefundRecord(
                refund_id=new_id("rfd"),
                order_id=order_id,
                state=RequestState.REQUESTED,
                lines=dict(wanted),
                amount_minor=sum(amounts.values()),
                currency=order.currency,
                reason=reason.strip(),
                kind=kind,
                respond_by=now + timedelta(seconds=self.deps.settings.seller_response_window_s),
            )
            await repo.insert_refund(session, refund, now, amounts)
        self.deps.metrics.after_sales.labels(kind.name, RequestState.REQUESTED.name).inc()
        return refund

    def _eligible(self, order: OrderRecord, kind: AfterSaleType) -> None:
        """TikTok Shop's eligibility: cancel before shipping, return only what was shipped, and
        nothing after the after-sales window that follows delivery."""
        if kind == AfterSaleType.CANCEL:
            saga.transition("cancel_paid", order.state, order.order_id)
            if order.shipped_at is not None:
                raise FailedPreconditionError(
                    f"order {order.order_id} has shipped: ask for a return instead"
                )
            return
        saga.transition("request_refund", order.state, order.order_id)
        if kind == AfterSaleType.RETURN_AND_REFUND and order.shipped_at is None:
            raise FailedPreconditionError(
                f"order {order.order_id} has not shipped: nothing to return (cancel it instead)"
            )
        window = timedelta(seconds=self.deps.settings.return_window_s)
        if order.delivered_at is not None and order.delivered_at + window <= self.deps.now():
            raise FailedPreconditionError(
                f"the after-sales window of order {order.order_id} closed at "
                f"{(order.delivered_at + window).isoformat()}"
            )

    # --- the seller, the buyer and the platform answer ------------------------------------

    async def approve(
        self, principal: Principal, refund_id: str
    ) -> tuple[RefundRecord, OrderRecord]:
        """The seller approves (an admin: arbitrates an escalated request in the buyer's favour)."""
        return await self._step(principal, refund_id, Step.APPROVE, Step.ARBITRATE_REFUND)

    async def reject(
        self, principal: Principal, refund_id: str, reason: int, note: str
    ) -> tuple[RefundRecord, OrderRecord]:
        """The seller rejects with a reason code (an admin: upholds an escalated rejection)."""
        if reason not in _REJECT_REASONS:
            raise InvalidArgumentError("reason", "a RejectReason is required")
        bounded("note", note, limits.REASON)
        return await self._step(
            principal,
            refund_id,
            Step.REJECT,
            Step.ARBITRATE_REJECT,
            reject_reason=reason,
            reject_note=note.strip(),
        )

    async def ship_return(
        self, principal: Principal, refund_id: str, tracking: str
    ) -> tuple[RefundRecord, OrderRecord]:
        if not tracking:
            raise InvalidArgumentError("tracking_number", "is required")
        bounded("tracking_number", tracking, limits.TRACKING)
        return await self._step(
            principal, refund_id, Step.SHIP_RETURN, None, return_tracking=tracking
        )

    async def receive_return(
        self,
        principal: Principal,
        refund_id: str,
        disposition: Disposition = Disposition.UNSPECIFIED,
        reason: str = "",
    ) -> tuple[RefundRecord, OrderRecord]:
        """The returned package arrived; inspected (restock or write-off) at the warehouse it
        goes back to: the platform's for packages it fulfilled (usecases/fulfilment.py)."""
        self.fulfilment.check_inspection(disposition, reason)

        async def inspected(
            session: AsyncSession, order: OrderRecord, refund: RefundRecord
        ) -> None:
            await self.fulfilment.on_return_received(
                session, principal, order, refund, disposition, reason
            )

        return await self._step(principal, refund_id, Step.RECEIVE, None, inside=inspected)

    async def escalate(
        self, principal: Principal, refund_id: str, note: str
    ) -> tuple[RefundRecord, OrderRecord]:
        bounded("note", note, limits.REASON)
        return await self._step(
            principal, refund_id, Step.ESCALATE, None, escalation_note=note.strip()
        )

    async def approve_unanswered(self) -> int:
        """Approve, for the seller, every request left REQUESTED past its deadline; returns how
        many. One transaction each; a seller who answers meanwhile wins (the request is no
        longer REQUESTED, so the platform's step is refused and skipped)."""
        async with self.deps.db.read() as session:
            due = await repo.unanswered_requests(session, self.deps.now())
        approved = 0
        for refund_id in due:
            try:
                await self._step(None, refund_id, Step.APPROVE, None, auto_approved=True)
            except (FailedPreconditionError, ConflictError) as exc:
                log.info(
                    "unanswered request not approved automatically",
                    extra={"refund_id": refund_id, "error": str(exc)},
                )
                continue
            approved += 1
        return approved

    async def _step(
        self,
        principal: Principal | None,
        refund_id: str,
        step: Step,
        admin_step: Step | None,
        inside: Callable[[AsyncSession, OrderRecord, RefundRecord], Awaitable[None]] | None = None,
        **values: str | int,
    ) -> tuple[RefundRecord, OrderRecord]:
        if not refund_id:
            raise InvalidArgumentError("refund_id", "is required")
        bounded("refund_id", refund_id, limits.ID)
        owed: ProviderRefund | None = None
        async with self.deps.db.transaction() as session:
            refund = await repo.load_refund(session, refund_id)
            if refund is None:
                raise NotFoundError("refund", refund_id)
            order = await self.transitions.load(session, refund.order_id)
            now = self.deps.now()
            if principal is None:  # the platform, for a seller who let the deadline pass
                if not rules.auto_approval_due(refund.state, refund.respond_by, now):
                    raise FailedPreconditionError(
                        f"refund {refund_id} is {refund.state.name}, not an unanswered request"
                    )
            else:
                step = self._who(principal, order, refund, step, admin_step)
            target = rules.move(step, refund.kind, refund.state, refund_id)
            if not await repo.move_refund(session, refund, target, now, **values):
                raise ConflictError(f"refund {refund_id} changed concurrently; retry")
            # values are the RefundRecord fields this step sets (reject_reason, notes, tracking)
            moved = replace(refund, state=target, **values)  # type: ignore[arg-type]
            if inside is not None:
                await inside(session, order, moved)
            if rules.pays(target):
                order, owed = await self._give_back(session, order, moved)
        if owed is not None:
            # After the commit; the sweeper retries it until the provider confirms.
            await self.payments.send_refund(owed)
        metrics = self.deps.metrics
        metrics.after_sales.labels(moved.kind.name, target.name).inc()
        if principal is None:
            metrics.auto_approved.labels(moved.kind.name).inc()
        if rules.pays(target):
            metrics.refunds.inc()
            metrics.refunded.labels(moved.currency).inc(moved.amount_minor)
        return moved, order

    @staticmethod
    def _who(
        principal: Principal,
        order: OrderRecord,
        refund: RefundRecord,
        step: Step,
        admin_step: Step | None,
    ) -> Step:
        """Which step the caller takes: escalated requests are the platform's to decide."""
        if refund.state == RequestState.ESCALATED:
            if admin_step is None or not principal.is_admin:
                raise PermissionDeniedError(
                    f"refund {refund.refund_id} is escalated: the platform decides"
                )
            return admin_step
        if principal.is_admin:
            return step
        party = "buyer" if step in (Step.SHIP_RETURN, Step.ESCALATE) else "seller"
        owner = order.buyer_id if party == "buyer" else order.seller_id
        if principal.role != party or principal.id != owner:
            raise PermissionDeniedError(
                f"only the order's {party} may {step.value} refund {refund.refund_id}"
            )
        return step

    async def _give_back(
        self, session: AsyncSession, order: OrderRecord, refund: RefundRecord
    ) -> tuple[OrderRecord, ProviderRefund | None]:
        """The request's units are refunded: lines, OrderRefunded, commission reversal and the
        refund at the provider, all in the caller's transaction."""
        for line_id, quantity in refund.lines.items():
            await repo.add_refunded(session, order.order_id, line_id, quantity)
        refreshed = await self.transitions.load(session, order.order_id)
        amounts = await repo.refund_line_amounts(session, refund.refund_id)
        by_line = {line.line_id: line for line in refreshed.lines}

        def refunded_event(o: OrderRecord) -> Message:
            message = ev.OrderRefunded(
                order=convert.order_pb(o),
                refund_id=refund.refund_id,
                amount=convert.money(refund.amount_minor, refund.currency),
                reason=refund.reason,
                auto_approved=refund.auto_approved,
            )
            for line_id, quantity in sorted(refund.lines.items()):
                line = by_line[line_id]
                message.lines.add(
                    line_id=line_id,
                    sku_id=line.sku_id,
                    product_id=line.product_id,
                    seller_id=line.seller_id,
                    quantity=quantity,
                    amount=convert.money(amounts[line_id], refund.currency),
                )
            return message

        if refund.kind == AfterSaleType.CANCEL:
            if refreshed.shipped_at is not None:
                raise FailedPreconditionError(f"order {order.order_id} has shipped meanwhile")
            updated = await self.transitions.apply(
                session, refreshed, "cancel_paid", refunded_event
            )
        else:
            state = saga.refund_state(
                [line.quantity for line in refreshed.lines],
                [line.refunded_quantity for line in refreshed.lines],
            )
            updated = await self.transitions.apply(
                session, refreshed, "refund", refunded_event, state=state
            )
        returned = await self.commissions.reverse(session, updated, refund.refund_id, amounts)
        await self.seller_ledger.on_refund(
            session, updated, refund.refund_id, refund.amount_minor, returned
        )
        owed = await self.payments.queue_buyer_refund(
            session, updated, refund.refund_id, refund.amount_minor
        )
        return updated, owed

    # --- the window closes ----------------------------------------------------------------

    async def complete_due(self) -> int:
        """Delivered orders past the after-sales window with no request open: COMPLETED (a
        fully refunded one stays REFUNDED) and their commissions settle."""
        now = self.deps.now()
        before = now - timedelta(seconds=self.deps.settings.return_window_s)
        async with self.deps.db.read() as session:
            due = await repo.settle_candidates(session, before)
        completed = 0
        for order_id in due:
            async with self.deps.db.transaction() as session:
                order = await self.transitions.load(session, order_id)
                requests = await repo.open_requests(session, order_id)
                if any(state in rules.BLOCKS_COMPLETION for _, _, state in requests):
                    continue
                for refund_id, _, _ in requests:  # REJECTED, never escalated: closed now
                    refund = await repo.load_refund(session, refund_id)
                    assert refund is not None
                    await repo.move_refund(session, refund, RequestState.CLOSED, now)
                if saga.can("complete", order.state):
                    order = await self.transitions.apply(
                        session,
                        order,
                        "complete",
                        lambda o: ev.OrderCompleted(
                            order=convert.order_pb(o), completed_at=convert.timestamp(now)
                        ),
                    )
                    completed += 1
                await self.commissions.settle(session, order)
                await self.seller_ledger.settle(session, order)
        return completed
