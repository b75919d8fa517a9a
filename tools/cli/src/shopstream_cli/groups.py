"""`shopstream groups` and `groups lag GROUP`: consumer groups, their members and how far behind
the topics' ends their committed offsets are (lag per partition)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._listoffsets import OffsetSpec

from shopstream_cli.broker import CliError, cluster_metadata
from shopstream_cli.output import emit_table, note
from shopstream_platform.kafka.admin import admin_client
from shopstream_platform.settings import KafkaSettings

TIMEOUT_S = 10.0
# Groups the CLI itself makes for one look at a topic; hidden unless --all.
THROWAWAY_PREFIXES = ("shopstream.cli-tail.", "shopstream.dlq-reader.")


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    committed: int | None  # None: the group has no offset here
    end: int
    member: str = ""

    @property
    def lag(self) -> int | None:
        return None if self.committed is None else max(0, self.end - self.committed)


def _admin(kafka: KafkaSettings) -> AdminClient:
    admin = admin_client(kafka)
    cluster_metadata(admin, kafka)  # a clear error when the broker is away
    return admin


def _committed(admin: AdminClient, group: str) -> list[TopicPartition]:
    request = [ConsumerGroupTopicPartitions(group)]
    result = admin.list_consumer_group_offsets(request, request_timeout=TIMEOUT_S)[group].result()
    return [tp for tp in result.topic_partitions if tp.error is None]


def _ends(admin: AdminClient, partitions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int]:
    latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
    wanted = {TopicPartition(t, p): latest for t, p in set(partitions)}
    if not wanted:
        return {}
    futures = admin.list_offsets(wanted, request_timeout=TIMEOUT_S)
    ends = {}
    for tp, future in futures.items():
        try:
            ends[(tp.topic, tp.partition)] = future.result().offset
        except KafkaException:
            continue  # a topic deleted since the group read it
    return ends


def group_lag(admin: AdminClient, group: str) -> list[PartitionLag]:
    """Lag per partition the group has committed offsets for or is assigned."""
    committed = {(tp.topic, tp.partition): tp.offset for tp in _committed(admin, group)}
    members: dict[tuple[str, int], str] = {}
    description = admin.describe_consumer_groups([group], request_timeout=TIMEOUT_S)[group].result()
    for member in description.members:
        for tp in member.assignment.topic_partitions if member.assignment else []:
            members[(tp.topic, tp.partition)] = f"{member.client_id}@{member.host.lstrip('/')}"
    keys = set(committed) | set(members)
    ends = _ends(admin, keys)
    rows = []
    for topic, partition in sorted(keys):
        offset = committed.get((topic, partition))
        rows.append(
            PartitionLag(
                topic,
                partition,
                offset if offset is not None and offset >= 0 else None,
                ends.get((topic, partition), 0),
                members.get((topic, partition), ""),
            )
        )
    return rows


def list_groups(kafka: KafkaSettings, *, include_all: bool, as_json: bool) -> int:
    admin = _admin(kafka)
    listed = admin.list_consumer_groups(request_timeout=TIMEOUT_S).result()
    groups = sorted(
        (g for g in listed.valid if include_all or not g.group_id.startswith(THROWAWAY_PREFIXES)),
        key=lambda g: g.group_id,
    )
    committed = {
        g.group_id: future
        for g in groups
        for future in [
            admin.list_consumer_group_offsets(
                [ConsumerGroupTopicPartitions(g.group_id)], request_timeout=TIMEOUT_S
            )[g.group_id]
        ]
    }
    offsets = {
        group: [
            tp for tp in future.result().topic_partitions if tp.error is None and tp.offset >= 0
        ]
        for group, future in committed.items()
    }
    ends = _ends(admin, ((tp.topic, tp.partition) for tps in offsets.values() for tp in tps))
    rows = []
    for g in groups:
        tps = offsets[g.group_id]
        lag = sum(max(0, ends.get((tp.topic, tp.partition), tp.offset) - tp.offset) for tp in tps)
        rows.append(
            (
                g.group_id,
                g.state.name if g.state is not None else "",
                ", ".join(sorted({tp.topic for tp in tps})),
                len(tps),
                lag,
            )
        )
    emit_table(
        f"Consumer groups ({len(rows)})",
        ["group", "state", "topics", "partitions", "lag"],
        rows,
        as_json=as_json,
    )
    return 0


def show_lag(kafka: KafkaSettings, group: str, *, as_json: bool) -> int:
    admin = _admin(kafka)
    known = {
        g.group_id for g in admin.list_consumer_groups(request_timeout=TIMEOUT_S).result().valid
    }
    if group not in known:
        raise CliError(
            f"no consumer group {group!r} on {kafka.bootstrap_servers} (see `shopstream groups`)"
        )
    rows = group_lag(admin, group)
    emit_table(
        f"Lag of {group} (total {sum(r.lag or 0 for r in rows)})",
        ["topic", "partition", "committed", "end", "lag", "member"],
        [(r.topic, r.partition, r.committed, r.end, r.lag, r.member) for r in rows],
        as_json=as_json,
    )
    if not rows and not as_json:
        note("the group has no committed offsets and no assigned partitions")
    return 0
