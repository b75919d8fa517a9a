"""After-sales requests: which step moves which type where, and when money goes back."""

from datetime import UTC, datetime, timedelta

import pytest

from shopstream_commerce.domain import after_sales as rules
from shopstream_commerce.domain.after_sales import AfterSaleType as T
from shopstream_commerce.domain.after_sales import RequestState as R
from shopstream_commerce.domain.after_sales import Step
from shopstream_platform.errors import FailedPreconditionError


def walk(kind: T, *steps: Step) -> list[R]:
    state, seen = R.REQUESTED, []
    for step in steps:
        state = rules.move(step, kind, state, "rfd-1")
        seen.append(state)
    return seen


def test_every_path_of_the_issue() -> None:
    assert walk(T.REFUND, Step.APPROVE) == [R.APPROVED]
    assert walk(T.CANCEL, Step.REJECT) == [R.REJECTED]
    assert walk(T.RETURN_AND_REFUND, Step.APPROVE, Step.SHIP_RETURN, Step.RECEIVE) == [
        R.AWAITING_BUYER_SHIPMENT,
        R.BUYER_SHIPPED,
        R.APPROVED,
    ]
    assert walk(
        T.RETURN_AND_REFUND,
        Step.APPROVE,
        Step.SHIP_RETURN,
        Step.REJECT,
        Step.ESCALATE,
        Step.ARBITRATE_REFUND,
    )[-3:] == [R.REJECTED, R.ESCALATED, R.APPROVED]
    assert walk(T.REFUND, Step.REJECT, Step.ESCALATE, Step.ARBITRATE_REJECT) == [
        R.REJECTED,
        R.ESCALATED,
        R.CLOSED,
    ]


def test_money_goes_back_only_at_approved() -> None:
    assert [s for s in R if rules.pays(s)] == [R.APPROVED]


@pytest.mark.parametrize(
    ("kind", "steps"),
    [
        (T.CANCEL, (Step.REJECT, Step.ESCALATE)),  # a cancellation is not arbitrated
        (T.REFUND, (Step.SHIP_RETURN,)),  # nothing to ship back
        (T.RETURN_AND_REFUND, (Step.RECEIVE,)),  # not approved, not shipped
        (T.REFUND, (Step.APPROVE, Step.APPROVE)),  # a retried approval
    ],
)
def test_steps_out_of_order_are_refused(kind: T, steps: tuple[Step, ...]) -> None:
    with pytest.raises(FailedPreconditionError):
        walk(kind, *steps)


def test_a_retried_approval_says_already_approved() -> None:
    with pytest.raises(FailedPreconditionError, match="already approved"):
        rules.move(Step.APPROVE, T.REFUND, R.APPROVED, "rfd-1")


def test_only_a_request_waiting_for_the_seller_past_its_deadline_is_auto_approved() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    past, future = now - timedelta(seconds=1), now + timedelta(seconds=1)
    assert rules.auto_approval_due(R.REQUESTED, past, now)
    assert rules.auto_approval_due(R.REQUESTED, now, now)
    assert not rules.auto_approval_due(R.REQUESTED, future, now)
    # Requests from before deadlines existed are never approved automatically.
    assert not rules.auto_approval_due(R.REQUESTED, None, now)
    for answered in set(R) - {R.REQUESTED}:
        assert not rules.auto_approval_due(answered, past, now)
