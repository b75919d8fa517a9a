"""The creator-score combiner process: `python -m shopstream_creator_score.stream.combiner`.

Started and supervised by the service (wiring.py) with the service's own settings; it can also
run as its own deployment (settings `combiner.mode=off` in the service).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from shopstream.creators.v1 import creators_pb2
from shopstream_creator_score.settings import CreatorScoreSettings
from shopstream_creator_score.stream.inputs import CreatorInputs
from shopstream_creator_score.stream.topics import (
    INPUT_BATCHES_TOPIC,
    SOURCE_TOPICS,
    TABLE_PARTITIONS,
)
from shopstream_platform.combiner import Combiner, CombinerMetrics, combiner_main
from shopstream_platform.kafka.codec import type_name


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
    combiner_main(CreatorScoreSettings, build)


if __name__ == "__main__":
    main()
