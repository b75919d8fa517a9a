"""start_group_at_end's commit on a broker whose group coordinator is not ready yet (a freshly
started one answers NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS for a few seconds): those
groups are asked again, any other error fails at once, and a coordinator that never comes ends
in an error naming the groups. The admin client is a stand-in answering from a script."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from shopstream_platform.testing import CoordinatorNotReadyError, commit_group_offsets


@dataclass(frozen=True)
class OnPartition:
    """The request succeeds but its partition carries this error code."""

    code: int


class ScriptedAdmin:
    """alter_consumer_group_offsets answering each group from its list of outcomes in turn: an
    error code (the request fails with it), OnPartition, or None (committed)."""

    def __init__(self, script: dict[str, list[int | OnPartition | None]]) -> None:
        self.script = {group: iter(outcomes) for group, outcomes in script.items()}
        self.calls: list[str] = []

    def alter_consumer_group_offsets(self, requests: list[Any], **_: Any) -> dict[Any, Future[Any]]:
        answers: dict[Any, Future[Any]] = {}
        for request in requests:
            self.calls.append(request.group_id)
            future: Future[Any] = Future()
            code = next(self.script[request.group_id])
            if code is None or isinstance(code, OnPartition):
                # TopicPartition.error is read-only: a look-alike carries the partition's error.
                partitions = [] if code is None else [SimpleNamespace(error=KafkaError(code.code))]
                future.set_result(
                    SimpleNamespace(group_id=request.group_id, topic_partitions=partitions)
                )
            else:
                future.set_exception(KafkaException(KafkaError(code)))
            answers[request] = future
        return answers


def offsets(*groups: str) -> dict[str, list[TopicPartition]]:
    return {group: [TopicPartition("orders", 0, 42)] for group in groups}


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr("shopstream_platform.testing.time.sleep", lambda _: None)
    yield


def test_groups_whose_coordinator_is_loading_are_asked_again_until_committed() -> None:
    admin = ScriptedAdmin(
        {
            "a": [
                KafkaError.NOT_COORDINATOR,
                OnPartition(KafkaError.COORDINATOR_LOAD_IN_PROGRESS),
                None,
            ],
            "b": [None],
        }
    )
    commit_group_offsets(admin, offsets("a", "b"))
    # b committed the first time and is not asked again.
    assert admin.calls == ["a", "b", "a", "a"]


def test_another_error_fails_at_once() -> None:
    admin = ScriptedAdmin({"a": [KafkaError.GROUP_AUTHORIZATION_FAILED]})
    with pytest.raises(KafkaException):
        commit_group_offsets(admin, offsets("a"))
    on_partition = ScriptedAdmin({"a": [OnPartition(KafkaError.OFFSET_METADATA_TOO_LARGE)]})
    with pytest.raises(AssertionError, match="offsets not committed"):
        commit_group_offsets(on_partition, offsets("a"))
    assert admin.calls == on_partition.calls == ["a"]


def test_a_coordinator_that_never_comes_ends_in_an_error_naming_the_group() -> None:
    admin = ScriptedAdmin({"a": [KafkaError.NOT_COORDINATOR] * 1_000})
    with pytest.raises(CoordinatorNotReadyError, match="'a': 'NOT_COORDINATOR'"):
        commit_group_offsets(admin, offsets("a"), timeout_s=0.0)
    assert admin.calls == ["a"]
