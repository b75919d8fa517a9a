"""The creator-score combiner process: `python -m shopstream_creator_score.stream.combiner`.

Started and supervised by the service (wiring.py) with the service's own settings; it can also
run as its own deployment (settings `combiner.mode=off` in the service).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, start_http_server

from shopstream.creators.v1 import creators_pb2
from shopstream_creator_score.settings import CreatorScoreSettings
from shopstream_creator_score.stream.inputs import CreatorInputs
from shopstream_creator_score.stream.topics import (
    INPUT_BATCHES_TOPIC,
    SOURCE_TOPICS,
    TABLE_PARTITIONS,
)
from shopstream_platform.child_process import child_settings, die_with_parent
from shopstream_platform.combiner import Combiner, CombinerMetrics, run_combiner_process
from shopstream_platform.kafka.codec import type_name
from shopstream_platform.logging import configure_logging


def combiner_group(settings: CreatorScoreSettings) -> str:
    return f"{settings.faust_app_id}.combiner"


def build(settings: CreatorScoreSettings, registry: CollectorRegistry) -> Combiner:
    c = settings.combiner
    return Combiner(
        kafka=settings.kafka,
        settings=c,
        service=settings.service_name,
        group_id=combiner_group(settings),
        sources=SOURCE_TOPICS,
        output=INPUT_BATCHES_TOPIC,
        output_type=type_name(creators_pb2.CreatorInputBatch),
        reducer=CreatorInputs(TABLE_PARTITIONS, c.max_record_bytes),
        metrics=CombinerMetrics(registry, settings.service_name),
        # Before the combiner, the Faust app's own group read the source topics.
        adopt_offsets_from=settings.faust_app_id,
    )


def main() -> None:
    die_with_parent()
    settings = child_settings(CreatorScoreSettings)
    configure_logging(f"{settings.service_name}-combiner", settings.log_level, settings.log_format)
    registry = CollectorRegistry()
    if settings.combiner.metrics_port:
        start_http_server(settings.combiner.metrics_port, settings.metrics_host, registry)
    run_combiner_process(build(settings, registry))


if __name__ == "__main__":
    main()
