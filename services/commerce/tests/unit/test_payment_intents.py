import pytest

from shopstream_commerce.domain.payments import (
    Answer,
    IntentState,
    complete,
    holds_order,
    refunded,
)
from shopstream_platform.errors import FailedPreconditionError

S = IntentState


@pytest.mark.parametrize(
    ("answer", "payable", "end"),
    [
        (Answer.CHARGED, True, S.SUCCEEDED),
        (Answer.CHARGED, False, S.REFUND_DUE),
        (Answer.DECLINED, True, S.DECLINED),
        (Answer.DECLINED, False, S.DECLINED),
        (Answer.CANCELLED, True, S.NOT_CHARGED),
        (Answer.UNKNOWN, True, S.OPEN),
        (Answer.UNKNOWN, False, S.OPEN),
    ],
)
def test_an_open_intent_completes_by_the_providers_answer(
    answer: Answer, payable: bool, end: IntentState
) -> None:
    assert complete(S.OPEN, answer, payable) == end


@pytest.mark.parametrize("state", [s for s in S if s != S.OPEN])
def test_only_an_open_intent_completes(state: IntentState) -> None:
    with pytest.raises(FailedPreconditionError, match=state.name):
        complete(state, Answer.CHARGED, True)


def test_refund_due_becomes_refunded_and_nothing_else_does() -> None:
    assert refunded(S.REFUND_DUE) == S.REFUNDED
    for state in S:
        if state != S.REFUND_DUE:
            with pytest.raises(FailedPreconditionError):
                refunded(state)


def test_declined_and_not_charged_free_the_order_for_another_attempt() -> None:
    assert {s for s in S if not holds_order(s)} == {S.DECLINED, S.NOT_CHARGED}
