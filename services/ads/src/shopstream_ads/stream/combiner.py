"""The ads combiner process: `python -m shopstream_ads.stream.combiner`.

Started and supervised by the service (wiring.py) with the service's own settings; it can also
run as its own deployment (settings `combiner.mode=off` in the service).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from shopstream.ads.v1 import ads_events_pb2
from shopstream_ads.settings import AdsSettings
from shopstream_ads.stream.inputs import AdsInputs
from shopstream_ads.stream.topics import SOURCE_TOPICS
from shopstream_ads.topics import INPUT_BATCHES_TOPIC, TABLE_PARTITIONS
from shopstream_platform.combiner import Combiner, CombinerMetrics, combiner_main
from shopstream_platform.kafka.codec import type_name


def combiner_group(settings: AdsSettings) -> str:
    # The worker (agents.py) applies only this group's batches.
    return f"{settings.faust_app_id}.combiner"


def build(settings: AdsSettings, registry: CollectorRegistry) -> Combiner:
    c = settings.combiner
    return Combiner(
        kafka=settings.kafka,
        settings=c,
        service=settings.service_name,
        group_id=combiner_group(settings),
        sources=SOURCE_TOPICS,
        output=INPUT_BATCHES_TOPIC,
        output_type=type_name(ads_events_pb2.AdsInputBatch),
        reducer=AdsInputs(
            TABLE_PARTITIONS,
            c.max_record_bytes,
            settings.faust_app_id,
            tick_s=settings.attribution.tick_s,
        ),
        metrics=CombinerMetrics(registry, settings.service_name),
        # Before the combiner, the Faust app's own group read the source topics.
        adopt_offsets_from=settings.faust_app_id,
    )


def main() -> None:
    combiner_main(AdsSettings, build)


if __name__ == "__main__":
    main()
