"""Which producer errors make an outbox row dead (never retried) and which keep it for a retry."""

import pytest
from confluent_kafka import KafkaError

from shopstream_platform.db.outbox import is_permanent_delivery_error, record_size


@pytest.mark.parametrize(
    "code",
    [
        KafkaError.MSG_SIZE_TOO_LARGE,  # the client's own check, or the broker's RECORD_TOO_LARGE
        KafkaError.INVALID_MSG_SIZE,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.INVALID_RECORD,
        KafkaError.TOPIC_EXCEPTION,
    ],
)
def test_refusals_of_the_record_itself_are_permanent(code: int) -> None:
    assert is_permanent_delivery_error(KafkaError(code))


@pytest.mark.parametrize(
    "code",
    [
        KafkaError._MSG_TIMED_OUT,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError.NOT_ENOUGH_REPLICAS,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.UNKNOWN_TOPIC_OR_PART,  # may be created; not the row's fault
        KafkaError.TOPIC_AUTHORIZATION_FAILED,  # an operator can fix the ACL
    ],
)
def test_failures_that_may_heal_are_not(code: int) -> None:
    assert not is_permanent_delivery_error(KafkaError(code))


def test_a_fatal_producer_error_is_not_blamed_on_the_row() -> None:
    assert not is_permanent_delivery_error(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE, fatal=True))


def test_record_size_counts_key_value_and_headers() -> None:
    assert record_size(b"key", b"x" * 1000, [("ce_id", b"0" * 32)]) == 3 + 1000 + 5 + 32 + 100
