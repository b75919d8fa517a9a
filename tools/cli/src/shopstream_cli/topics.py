"""`shopstream topics list`: the topic registry (records are read by tail.py)."""

from __future__ import annotations

from shopstream_cli.output import emit_table
from shopstream_platform.kafka.topics import load_registry


def list_topics(*, as_json: bool) -> int:
    rows = [
        (t.name, t.key, ", ".join(t.values), t.partitions, t.retention_ms, t.owner)
        for t in load_registry()
    ]
    emit_table(
        "Topics (protos/topics.yaml; each also has a .dlq twin)",
        ["topic", "key", "values", "partitions", "retention_ms", "owner"],
        rows,
        as_json=as_json,
    )
    return 0
